"""Run M1 end to end: ``run_m1(cfg)`` in Python, ``lbt m1`` on the command line."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from langchain_core.language_models import BaseChatModel

from lbt_agents.config import RunConfig, TieBreak
from lbt_agents.llm import UsageMeter
from lbt_agents.progress import m1_progress
from lbt_agents.runner import arun_graph
from lbt_agents.runs import RunDir, save_dataset, write_atomic
from lbt_agents.types import TeachingItem


@dataclass(frozen=True)
class M1Result:
    run_dir: Path
    summary: dict[str, Any]
    results: dict[str, Any]


def run_m1(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    progress: bool = True,
) -> M1Result:
    """Run (or resume) M1 and write its results; see :func:`arun_m1`."""
    return asyncio.run(arun_m1(cfg, resume=resume, models=models, progress=progress))


async def arun_m1(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    progress: bool = True,
) -> M1Result:
    """Run M1 on ``cfg``'s task and classroom (the generic runner with M1's outputs).

    ``models`` maps agent names to chat models (offline tests, custom
    providers); other agents talk to their configured endpoints, and
    ``base_url: embedded`` agents to an embedded vLLM classroom started here.
    With ``resume=RUN_ID`` the run continues from its last checkpoint: exams
    that finished are not requested again.
    """
    run = await arun_graph(
        M1_GRAPH, cfg, resume=resume, models=models, prefix="m1",
        progress=lambda c, inputs: m1_progress(c, inputs["items"], enabled=progress),
    )
    items = run.inputs["items"]
    summary = summarize(run.state, items, run.classroom.meter, run.cfg, wall_s=run.wall_s)
    if _all_failed(run.state):  # the summary says what happened; results of nothing are not written
        from lbt_agents.errors import EndpointError

        write_atomic(run.run_dir / "summary.json", json.dumps(summary, indent=2))
        write_atomic(run.run_dir / "summary.md", summary_table(summary))
        raise EndpointError(
            f"every model call of run {run.cfg.run_id!r} failed: no teacher sample or exam gave an answer "
            f"({summary['exams']} exams); are the endpoints serving chat models? see {run.run_dir / 'summary.md'}"
        )
    write_outputs(RunDir(run.run_dir), run.state, summary)
    return M1Result(run.run_dir, summary, run.state.get("results", {}))


def _all_failed(state: dict[str, Any]) -> bool:
    """Every teacher sample and exam came back with no answer (empty or garbage replies)."""
    calls = [*state.get("pairs", {}).values(), *state.get("greedy", {}).values(), *state.get("exams", {}).values()]
    return bool(calls) and all(c.get("answer") is None for c in calls)


M1_GRAPH = "lbt_agents.graphs.m1_scoring:from_config"


def _accuracy(results: Sequence[dict[str, Any]], mode: str) -> float | None:
    got = [r["selections"][mode]["correct"] for r in results if mode in r["selections"]]
    return sum(got) / len(got) if got else None


def _accuracy_ci(results: Sequence[dict[str, Any]], mode: str) -> dict[str, Any]:
    from lbt_agents.report import mean_ci

    return mean_ci([float(r["selections"][mode]["correct"]) for r in results if mode in r["selections"]]).as_dict()


def summarize(
    state: dict[str, Any], items: list[TeachingItem], meter: UsageMeter, cfg: RunConfig, *, wall_s: float
) -> dict[str, Any]:
    """Accuracy per selection mode, the AUROC of LbT scores (right vs wrong pairs, with a 95% interval
    over TPs), work done, and tokens per agent."""
    from lbt_agents.report import tp_auroc

    results = [state["results"][it["tp"]["id"]] for it in items if it["tp"]["id"] in state.get("results", {})]
    pairs = list(state.get("pairs", {}).values())
    greedy = list(state.get("greedy", {}).values())
    exams = list(state.get("exams", {}).values())
    tokens: dict[str, dict[str, int]] = {}

    def add(name: str, record: dict[str, Any]) -> None:
        t = tokens.setdefault(name, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
        t["prompt_tokens"] += record["prompt_tokens"]
        t["completion_tokens"] += record["completion_tokens"]
        t["calls"] += 1

    for record in pairs + greedy:
        add(cfg.classroom.teacher.name, record)
    for record in exams:
        add(record["student"], record)
    return {
        "run_id": cfg.run_id,
        "task": cfg.task.name,
        "teacher": cfg.classroom.teacher.model,
        "students": [s.model for s in cfg.classroom.students],
        "tps": len(results),
        "pairs_per_tp": cfg.m1.pairs_per_tp,
        "eps_per_tp": len(items[0]["eps"]) if items else 0,
        "accuracy": {mode: _accuracy(results, mode) for mode in cfg.m1.modes},
        "accuracy_ci": {mode: _accuracy_ci(results, mode) for mode in cfg.m1.modes},
        "auroc": tp_auroc({r["tp_id"]: r for r in results}),
        "teacher_pair_accuracy": sum(p["correct"] for p in pairs) / len(pairs) if pairs else None,
        "exams": len(exams),
        "student_accuracy": sum(e["score"] for e in exams) / len(exams) if exams else None,
        "truncated_replies": sum(r["truncated"] for r in pairs + greedy + exams),
        "tokens": tokens,
        "requests": meter.as_dict(),
        "wall_s": round(wall_s, 1),
        "adaptive": cfg.m1.adaptive.enabled,
        "sandbox": _sandbox_record(),
        **({"code": code_table(results, tie_break=cfg.m1.tie_break)} if items and items[0]["tp"]["kind"] == "code" else {}),
    }


def _sandbox_record() -> dict[str, Any]:
    from lbt_agents.sandbox import isolation_used

    used = isolation_used()
    return {"isolation": list(used), "unconfined": "bare" in used}


def code_table(results: Sequence[dict[str, Any]], *, tie_break: TieBreak = "first_seen") -> dict[str, float | None]:
    """The paper's Tab. 3 columns, averaged over TPs: hidden-test pass rate
    (S-score) of the average pair, of M1-MAX's pair, and of both among pairs
    that pass the visible tests (V=1).  M1-MAX's pair is the run's own MAX
    selection; among the V=1 pairs it is chosen by the same rule (ties go to
    the program more pairs wrote, i.e. votes, then ``tie_break``), never by pair index."""
    from lbt_agents.grading.code import CodeGrader
    from lbt_agents.scoring import Candidate, select

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    equivalent = CodeGrader().equivalent

    def m1_max(pairs: list[dict[str, Any]]) -> float:
        cands = [Candidate(p["index"], p["answer"], p["correct"], p["lbt"]) for p in pairs]
        index = select("max", cands, equivalent, tie_break=tie_break).index
        return next((p["hidden_score"] for p in pairs if p["index"] == index), 0.0)

    avg, chosen, avg_v1, chosen_v1 = [], [], [], []
    for r in results:
        pairs = [p for p in r["pairs"] if p.get("hidden_score") is not None]
        v1 = [p for p in pairs if p["correct"]]
        if pairs:
            avg.append(mean([p["hidden_score"] for p in pairs]))
            index = r.get("selections", {}).get("max", {}).get("pair_index")
            by_index = {p["index"]: p["hidden_score"] for p in pairs}
            chosen.append(by_index[index] if index in by_index else m1_max(pairs))
        if v1:
            avg_v1.append(mean([p["hidden_score"] for p in v1]))
            chosen_v1.append(m1_max(v1))
    return {"avg": mean(avg), "m1_max": mean(chosen), "avg_v1": mean(avg_v1), "m1_max_v1": mean(chosen_v1),
            "tps_with_v1": len(avg_v1)}


def _dataset_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for result in results.values():
        row = json.loads(json.dumps(result))  # plain types only
        for pair in row["pairs"]:
            pair["per_student"] = [{"student": k, "score": v} for k, v in pair["per_student"].items()]
            for exam in pair["exams"]:
                exam.setdefault("hidden_score", None)
                exam.setdefault("detail", None)
        row["selections"] = [{"mode": k, **v} for k, v in row["selections"].items()]
        rows.append(row)
    return rows


def write_outputs(run: RunDir, state: dict[str, Any], summary: dict[str, Any]) -> None:
    from lbt_agents.tables import write_tables

    results = state.get("results", {})
    if results:
        save_dataset(_dataset_rows(results), run.path / "results")
        write_tables(run.path, results, summary["run_id"] or run.run_id)
    write_atomic(run.path / "summary.json", json.dumps(summary, indent=2))
    write_atomic(run.path / "summary.md", summary_table(summary))


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as a Markdown table (accuracy per mode, tokens per agent)."""
    lines = [
        f"# M1 run `{summary['run_id']}`: {summary['task']}, {summary['tps']} TPs × "
        f"{summary['pairs_per_tp']} TR-TA pairs × {summary['eps_per_tp']} EPs",
        "",
        f"teacher: `{summary['teacher']}`; students: {', '.join(f'`{s}`' for s in summary['students'])}; "
        f"wall time {summary['wall_s']} s; exams {summary['exams']}",
        "",
        "| method | accuracy | 95% CI over TPs |",
        "|---|---|---|",
    ]
    names = {"greedy": "Greedy", "sc": "SC", "max": "M1-MAX", "sum": "M1-SUM", "avg": "M1-AVG"}
    for mode, acc in summary["accuracy"].items():
        est = summary.get("accuracy_ci", {}).get(mode) or {}
        interval = "-" if est.get("low") is None else f"{100 * est['low']:.1f} - {100 * est['high']:.1f}"
        lines.append(f"| {names.get(mode, mode)} | {'-' if acc is None else f'{100 * acc:.1f}%'} | {interval} |")
    if "auroc" in summary:
        from lbt_agents.report import format_auroc

        lines += ["", f"AUROC of LbT scores, right vs wrong pairs: {format_auroc(summary['auroc'])}"]
    if code := summary.get("code"):
        pct = lambda x: "-" if x is None else f"{100 * x:.1f}"  # noqa: E731
        lines += [
            "",
            "Hidden-test pass rate (S-score, %), as in the paper's Tab. 3:",
            "",
            "| Avg | M1-MAX | Avg (V=1) | M1-MAX (V=1) |",
            "|---|---|---|---|",
            f"| {pct(code['avg'])} | {pct(code['m1_max'])} | {pct(code['avg_v1'])} | {pct(code['m1_max_v1'])} |",
        ]
    lines += ["", "| agent | calls | prompt tokens | completion tokens |", "|---|---|---|---|"]
    for name, t in summary["tokens"].items():
        lines.append(f"| {name} | {t['calls']} | {t['prompt_tokens']} | {t['completion_tokens']} |")
    return "\n".join(lines) + "\n"
