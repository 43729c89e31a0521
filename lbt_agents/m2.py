"""M2 end to end: preference data from LbT scores, and the held-out evaluation.

``lbt m2 prefs`` builds the data (M1 exams on training TPs), ``lbt m2 train``
tunes the teacher with DPO (:mod:`lbt_agents.training`), ``lbt m2 eval`` serves
each model and compares them greedily on held-out problems (the paper's Tab. 4).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from langchain_core.language_models import BaseChatModel

from lbt_agents.config import RunConfig, TaskConfig
from lbt_agents.errors import DataError
from lbt_agents.progress import m1_progress
from lbt_agents.runner import arun_graph
from lbt_agents.runs import write_atomic
from lbt_agents.tasks import load_task


@dataclass(frozen=True)
class PreferenceResult:
    run_dir: Path
    summary: dict[str, Any]
    paths: dict[str, Path]


def run_m2_prefs(cfg: RunConfig, **kwargs: Any) -> PreferenceResult:
    return asyncio.run(arun_m2_prefs(cfg, **kwargs))


async def arun_m2_prefs(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    models: Mapping[str, Sequence[BaseChatModel]] | None = None,
    progress: bool = True,
) -> PreferenceResult:
    """Score the teacher's samples on training TPs and save M2 and
    correctness-only preference datasets in the run folder."""
    from lbt_agents.m1 import summarize
    from lbt_agents.preferences import save_pairs

    run = await arun_graph(
        M2_GRAPH, cfg, resume=resume, models=models, prefix="m2",
        progress=lambda c, inputs: m1_progress(c, inputs["items"], enabled=progress, greedy=False, per_sample=bool(models)),
    )
    final, items = run.state, run.inputs["items"]
    rows = final.get("preferences", {})
    m1_summary = summarize(final, items, run.classroom.meter, run.cfg, wall_s=run.wall_s)
    summary = {
        "run_id": run.cfg.run_id,
        "tps": len(items),
        "pairs": {mode: len(r) for mode, r in rows.items()},
        "tps_with_pairs": {mode: len({row["tp_id"] for row in r}) for mode, r in rows.items()},
        "m1": m1_summary,
    }
    write_atomic(run.run_dir / "summary.json", json.dumps(summary, indent=2))
    if not rows.get("m2"):
        raise DataError(
            f"no M2 preference pairs: no TP had two samples whose scores differ by more than {run.cfg.m2.min_gap}; "
            f"nothing was written (sample more pairs per TP, use more TPs, or lower m2.min_gap)"
        )
    paths = {"m2": save_pairs(rows["m2"], run.run_dir / "preferences_m2")}
    if rows.get("correctness"):
        paths["correctness"] = save_pairs(rows["correctness"], run.run_dir / "preferences_correctness")
    return PreferenceResult(run.run_dir, summary, paths)


M2_GRAPH = "lbt_agents.graphs.m2_preferences:from_config"


def eval_task(cfg: RunConfig) -> TaskConfig:
    """The held-out problems: ``m2.eval_task``, else the task's next ``limit`` problems."""
    if cfg.m2.eval_task is not None:
        return cfg.m2.eval_task
    return cfg.task.model_copy(update={"offset": cfg.task.offset + (cfg.task.limit or 0)})


def evaluate(cfg: RunConfig, models: Mapping[str, str | Path], **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(aevaluate(cfg, models, **kwargs))


async def aevaluate(
    cfg: RunConfig, models: Mapping[str, str | Path], *, log_dir: Path | None = None
) -> dict[str, Any]:
    """Serve each model in turn (a registry name or an HF folder) and grade its
    greedy answers on the held-out problems; returns accuracy per model."""
    from lbt_agents.agents import Teacher
    from lbt_agents.llm import CallLimits, ChatAgent
    from lbt_agents.runner import examiner_for
    from lbt_agents.serving import VllmServer

    items = load_task(eval_task(cfg))
    problems = [item["tp"] for item in items]
    examiner = examiner_for(cfg)
    out: dict[str, Any] = {"task": eval_task(cfg).model_dump(mode="json"), "problems": len(problems), "models": {}}
    for label, model in models.items():
        served = label if not isinstance(model, str) or "/" in model or Path(model).is_dir() else model
        with VllmServer(
            model, served_name=served, kv_cache_gib=cfg.serve.kv_cache_gib, max_model_len=cfg.serve.max_model_len,
            startup_timeout_s=cfg.serve.startup_timeout_s, cache_dir=cfg.serve.cache_dir, log_dir=log_dir,
            block_size=cfg.serve.block_size,
        ) as endpoint:
            agent = cfg.classroom.teacher.model_copy(update={"base_url": endpoint.base_url, "model": served})
            teacher = Teacher(ChatAgent(agent, limits=CallLimits(cfg.max_concurrency)), task=cfg.task.name,
                              prompts=cfg.classroom.prompts)
            replies = await asyncio.gather(*(teacher.greedy(p) for p in problems))
            verdicts = await asyncio.gather(*(examiner.grade(p, r) for p, r in zip(problems, replies)))
        correct = sum(v["correct"] for v in verdicts)
        out["models"][label] = {
            "model": str(model),
            "accuracy": correct / len(problems),
            "correct": correct,
            "truncated": sum(r.truncated for r in replies),
        }
    return out


def eval_table(result: dict[str, Any]) -> str:
    lines = [
        f"# M2 evaluation: greedy accuracy on {result['problems']} held-out problems ({result['task']['name']})",
        "",
        "| model | accuracy | correct | truncated |",
        "|---|---|---|---|",
    ]
    for label, r in result["models"].items():
        lines.append(f"| {label} | {100 * r['accuracy']:.1f}% | {r['correct']} | {r['truncated']} |")
    return "\n".join(lines) + "\n"
