"""Run M1 end to end: ``run_m1(cfg)`` in Python, ``lbt m1`` on the command line."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from lbt_agents.config import RunConfig, TieBreak
from lbt_agents.llm import UsageMeter
from lbt_agents.progress import m1_progress
from lbt_agents.runs import RunDir, save_dataset, write_atomic
from lbt_agents.tpjobs import TABLES, ShardStore, arun_tp_jobs
from lbt_agents.types import TeachingItem


@dataclass(frozen=True)
class M1Result:
    """A finished M1 run: its folder, summary and TP ids; ``results`` reads the TPs' results from its shards."""

    run_dir: Path
    summary: dict[str, Any]
    tp_ids: list[str]

    @property
    def results(self) -> dict[str, Any]:
        """Every TP's result, ``{tp_id: TPResult}`` (all in memory: for small runs and tests)."""
        return {r["tp_id"]: r for r in ShardStore(self.run_dir).results(self.tp_ids)}


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
    """Run M1 on ``cfg``'s task and classroom: one TP job per TP (:mod:`lbt_agents.tpjobs`) on
    ``cfg.executor``, each finished TP saved as a shard, the summary computed from the shards.

    ``models`` maps agent names to chat models (offline tests, custom
    providers); other agents talk to their configured endpoints, and
    ``base_url: embedded`` agents to an embedded vLLM classroom started here.
    With ``resume=RUN_ID`` the run continues: finished TPs are skipped and, in the
    others, exams that finished are not requested again.
    """
    from lbt_agents.graphs.m1_scoring import from_config

    run = await arun_tp_jobs(
        from_config, cfg, stats=stats_of, inputs=m1_inputs, resume=resume, models=models, prefix="m1",
        progress=lambda c, items: m1_progress(c, items, enabled=progress, per_sample=bool(models)),
    )
    tp_ids = [it["tp"]["id"] for it in run.items]
    summary = summary_from_stats(run.store.stats(tp_ids), run.items, run.requests, run.cfg, wall_s=run.wall_s)
    if summary["calls"] and not summary["answered"]:  # the summary says what happened; no tables of nothing
        from lbt_agents.errors import EndpointError

        write_atomic(run.run_dir / "summary.json", json.dumps(summary, indent=2))
        write_atomic(run.run_dir / "summary.md", summary_table(summary))
        raise EndpointError(
            f"every model call of run {run.cfg.run_id!r} failed: no teacher sample or exam gave an answer "
            f"({summary['exams']} exams); are the endpoints serving chat models? see {run.run_dir / 'summary.md'}"
        )
    write_outputs(RunDir(run.run_dir), run.store, tp_ids, summary)
    return M1Result(run.run_dir, summary, tp_ids)


def m1_inputs(cfg: RunConfig) -> dict[str, Any]:
    """The task's teaching items, checked (unique TP ids, EPs) before any model call."""
    from lbt_agents.exams import check_items
    from lbt_agents.runner import default_inputs

    data = default_inputs(cfg)
    check_items(data["items"])
    return data


M1_GRAPH = "lbt_agents.graphs.m1_scoring:from_config"


def stats_of(cfg: RunConfig) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """The function that turns a finished TP's result into its shard's summary record."""
    return functools.partial(tp_stats, teacher=cfg.classroom.teacher.name, tie_break=cfg.m1.tie_break)


def tp_stats(result: Mapping[str, Any], *, teacher: str, tie_break: TieBreak = "first_seen") -> dict[str, Any]:
    """What a run's summary needs of one TP (counts and sums, so summaries stream over shards)."""
    pairs = list(result["pairs"])
    greedy = [result["greedy"]] if result.get("greedy") else []
    exams = [e for p in pairs for e in p["exams"]]
    tokens: dict[str, dict[str, int]] = {}
    for name, record in [*((teacher, r) for r in pairs + greedy), *((e["student"], e) for e in exams)]:
        t = tokens.setdefault(name, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
        t["prompt_tokens"] += record["prompt_tokens"]
        t["completion_tokens"] += record["completion_tokens"]
        t["calls"] += 1
    calls = pairs + greedy + exams
    return {
        "selections": {mode: bool(sel["correct"]) for mode, sel in result["selections"].items()},
        "pairs": len(pairs), "pairs_correct": sum(bool(p["correct"]) for p in pairs),
        "exams": len(exams), "exam_score": float(sum(e["score"] for e in exams)),
        "truncated": sum(bool(r["truncated"]) for r in calls),
        "calls": len(calls), "answered": sum(r.get("answer") is not None for r in calls),
        "tokens": tokens, "code": code_parts(result, tie_break=tie_break),
        # the pairs the AUROC of LbT scores counts (see lbt_agents.report.tp_auroc): (lbt, correct)
        "scored_pairs": [(p["lbt"], bool(p["correct"])) for p in pairs
                         if p["answer"] is not None and (p["exams"] or p.get("scored_as"))],
    }  # fmt: skip


def summarize(
    state: dict[str, Any], items: list[TeachingItem], meter: UsageMeter, cfg: RunConfig, *, wall_s: float
) -> dict[str, Any]:
    """The summary of a graph's final state (``state["results"]``); see :func:`summary_from_stats`."""
    results = state.get("results", {})
    stats = ({"tp_id": it["tp"]["id"], **stats_of(cfg)(results[it["tp"]["id"]])} for it in items
             if it["tp"]["id"] in results)
    return summary_from_stats(stats, items, meter.as_dict(), cfg, wall_s=wall_s)


def summary_from_stats(
    stats: Iterable[Mapping[str, Any]], items: list[TeachingItem], requests: dict[str, Any], cfg: RunConfig, *,
    wall_s: float,
) -> dict[str, Any]:
    """Accuracy per selection mode (with a 95% interval over TPs), the AUROC of LbT scores (right vs wrong
    pairs, with a 95% interval over TPs), work done, and tokens per agent, from the TPs' records (one at a time)."""
    from lbt_agents.report import auroc, mean_ci

    per_tp: dict[str, list[float]] = {mode: [] for mode in cfg.m1.modes}
    scored: list[tuple[float, bool, str]] = []
    right = {mode: 0 for mode in cfg.m1.modes}
    chosen = {mode: 0 for mode in cfg.m1.modes}
    totals = {"tps": 0, "pairs": 0, "pairs_correct": 0, "exams": 0, "exam_score": 0.0, "truncated": 0, "calls": 0,
              "answered": 0}
    tokens: dict[str, dict[str, int]] = {}
    code: dict[str, list[float]] = {k: [] for k in CODE_COLUMNS}
    for record in stats:
        totals["tps"] += 1
        for key in totals.keys() - {"tps"}:
            totals[key] += record[key]
        for mode, correct in record["selections"].items():
            if mode in right:
                chosen[mode] += 1
                right[mode] += correct
                per_tp[mode].append(float(correct))
        scored += [(lbt, correct, record["tp_id"]) for lbt, correct in record.get("scored_pairs", [])]
        for name, t in record["tokens"].items():
            into = tokens.setdefault(name, {"prompt_tokens": 0, "completion_tokens": 0, "calls": 0})
            for key in into:
                into[key] += t[key]
        for key, value in (record.get("code") or {}).items():
            if value is not None:
                code[key].append(value)
    return {
        "run_id": cfg.run_id,
        "task": cfg.task.name,
        "teacher": cfg.classroom.teacher.model,
        "students": [s.model for s in cfg.classroom.students],
        "tps": totals["tps"],
        "pairs_per_tp": cfg.m1.pairs_per_tp,
        "eps_per_tp": len(items[0]["eps"]) if items else 0,
        "accuracy": {mode: right[mode] / chosen[mode] if chosen[mode] else None for mode in cfg.m1.modes},
        "accuracy_ci": {mode: mean_ci(per_tp[mode]).as_dict() for mode in cfg.m1.modes},
        "auroc": auroc(*zip(*scored)) if scored else {"value": None, "low": None, "high": None, "right": 0,
                                                      "wrong": 0, "tps": 0},
        "teacher_pair_accuracy": totals["pairs_correct"] / totals["pairs"] if totals["pairs"] else None,
        "exams": totals["exams"],
        "student_accuracy": totals["exam_score"] / totals["exams"] if totals["exams"] else None,
        "truncated_replies": totals["truncated"],
        "calls": totals["calls"],
        "answered": totals["answered"],
        "tokens": tokens,
        "requests": requests,
        "wall_s": round(wall_s, 1),
        "adaptive": cfg.m1.adaptive.enabled,
        "sandbox": _sandbox_record(),
        **({"code": _code_table(code)} if items and items[0]["tp"]["kind"] == "code" else {}),
    }


def _sandbox_record() -> dict[str, Any]:
    from lbt_agents.sandbox import isolation_used

    used = isolation_used()
    return {"isolation": list(used), "unconfined": "bare" in used}


CODE_COLUMNS = ("avg", "m1_max", "avg_v1", "m1_max_v1")


def code_parts(result: Mapping[str, Any], *, tie_break: TieBreak = "first_seen") -> dict[str, float | None]:
    """One TP's share of the paper's Tab. 3 columns: the hidden-test pass rate (S-score) of its
    average pair, of M1-MAX's pair, and of both among pairs that pass the visible tests (V=1).
    M1-MAX's pair is the run's own MAX selection; among the V=1 pairs it is chosen by the same rule
    (ties go to the program more pairs wrote, i.e. votes, then ``tie_break``), never by pair index."""
    from lbt_agents.grading.code import CodeGrader
    from lbt_agents.scoring import Candidate, select

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    equivalent = CodeGrader().equivalent

    def m1_max(pairs: list[dict[str, Any]]) -> float:
        cands = [Candidate(p["index"], p["answer"], p["correct"], p["lbt"]) for p in pairs]
        index = select("max", cands, equivalent, tie_break=tie_break).index
        return next((p["hidden_score"] for p in pairs if p["index"] == index), 0.0)

    pairs = [p for p in result["pairs"] if p.get("hidden_score") is not None]
    v1 = [p for p in pairs if p["correct"]]
    out: dict[str, float | None] = dict.fromkeys(CODE_COLUMNS)
    if pairs:
        out["avg"] = mean([p["hidden_score"] for p in pairs])
        index = (result.get("selections") or {}).get("max", {}).get("pair_index")
        by_index = {p["index"]: p["hidden_score"] for p in pairs}
        out["m1_max"] = by_index[index] if index in by_index else m1_max(pairs)
    if v1:
        out["avg_v1"], out["m1_max_v1"] = mean([p["hidden_score"] for p in v1]), m1_max(v1)
    return out


def code_table(results: Iterable[Mapping[str, Any]], *, tie_break: TieBreak = "first_seen") -> dict[str, Any]:
    """The paper's Tab. 3 columns averaged over TPs (see :func:`code_parts`)."""
    columns: dict[str, list[float]] = {k: [] for k in CODE_COLUMNS}
    for result in results:
        for key, value in code_parts(result, tie_break=tie_break).items():
            if value is not None:
                columns[key].append(value)
    return _code_table(columns)


def _code_table(columns: Mapping[str, list[float]]) -> dict[str, Any]:
    out: dict[str, Any] = {k: sum(v) / len(v) if v else None for k, v in columns.items()}
    return {**out, "tps_with_v1": len(columns["avg_v1"])}


def write_outputs(run: RunDir, store: ShardStore, tp_ids: Sequence[str], summary: dict[str, Any]) -> None:
    """The run's tables (``tps/``, ``pairs/``, ``exams/``: its shards concatenated, in TP order) and summary."""
    from lbt_agents.tables import features

    for name in TABLES:
        table = store.table(name, tp_ids)
        if table is not None:
            save_dataset(table, run.path / name, features=features(name))
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
