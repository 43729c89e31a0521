"""Run M3 and classroom simulations: ``run_m3(cfg)`` / ``run_classroom(cfg)``, ``lbt m3`` / ``lbt classroom``.

Both run the graph of :mod:`lbt_agents.graphs.m3_refinement` over the lanes of
``cfg.classroom`` (default: the teacher teaches every student).  Results go to
the run dir: ``results.json`` (every round's sets, scores, failures, reasons),
``rounds/`` (HF dataset, one row per lane and round), ``summary.md`` and
``metric_by_round.png``.  Rows are also appended to ``rounds.jsonl`` as rounds
finish; the SQLite checkpointer lets ``--resume RUN_ID`` continue a run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from langchain_core.language_models import BaseChatModel

from lbt_agents.classroom import Lane, who_teaches_whom
from lbt_agents.config import RunConfig
from lbt_agents.llm import UsageMeter
from lbt_agents.runner import arun_graph
from lbt_agents.runs import RunDir, save_dataset, write_atomic

RoundCallback = Callable[[list[dict[str, Any]]], None]
"""Called with the rows (one per lane) of each finished round."""


@dataclass(frozen=True)
class M3Result:
    run_dir: Path
    rows: list[dict[str, Any]]
    """One row per lane and round (see ``lbt_agents.graphs.m3_refinement.round_row``)."""
    summary: dict[str, Any]
    state: dict[str, Any]


def run_m3(cfg: RunConfig, **kwargs: Any) -> M3Result:
    """Run (or resume) M3; see :func:`arun_m3`."""
    return asyncio.run(arun_m3(cfg, **kwargs))


def run_classroom(cfg: RunConfig, **kwargs: Any) -> M3Result:
    """Run (or resume) a classroom simulation: M3 over every teaching node of the roster graph."""
    return asyncio.run(arun_m3(cfg, prefix="classroom", **kwargs))


async def arun_m3(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    on_round: RoundCallback | None = None,
    prefix: str = "m3",
) -> M3Result:
    """Run M3 over ``cfg.classroom``'s who-teaches-whom on ``cfg.task`` (the generic runner with M3's outputs).

    ``models`` maps agent names to chat models (offline tests); other agents use
    their endpoints (``base_url: embedded`` starts the embedded classroom).
    Bad sizes (K larger than the training set) fail before any server starts.
    """
    who_teaches_whom(cfg.classroom)  # bad edges fail before anything is written

    def on_update(update: dict[str, Any], run_dir: Path) -> None:
        if "record" not in update:
            return
        rows = sorted((update["record"] or {}).get("rounds", {}).values(), key=lambda r: r["lane"])
        with (run_dir / "rounds.jsonl").open("a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
        if on_round is not None:
            on_round(rows)

    run = await arun_graph(M3_GRAPH, cfg, resume=resume, models=models, prefix=prefix,
                           on_update=on_update)
    final = run.state
    graph_lanes = [Lane(lane["teacher"], tuple(lane["students"])) for lane in final.get("lanes", [])]
    rows = sorted(final.get("rounds", {}).values(), key=lambda r: (r["lane"], r["round"]))
    summary = summarize(run.cfg, graph_lanes, rows, final, run.classroom.meter, wall_s=run.wall_s)
    write_outputs(RunDir(run.run_dir), final, rows, summary)
    if _all_failed(final):
        from lbt_agents.errors import EndpointError

        raise EndpointError(f"every model call of run {run.cfg.run_id!r} failed; see {run.run_dir / 'summary.md'}")
    return M3Result(run.run_dir, rows, summary, final)




M3_GRAPH = "lbt_agents.graphs.m3_refinement:from_config"


def _all_failed(state: dict[str, Any]) -> bool:
    answers = list(state.get("answers", {}).values())
    preds = [p for e in state.get("evals", {}).values() for p in e.get("predictions", [])]
    calls = answers + preds
    return bool(calls) and all(c.get("status") != "ok" for c in calls)


def summarize(
    cfg: RunConfig, graph_lanes: Sequence[Lane], rows: Sequence[dict[str, Any]], state: dict[str, Any],
    meter: UsageMeter, *, wall_s: float,
) -> dict[str, Any]:
    """First and last test metric per lane, events, tokens and wall time."""
    agents = {a.name: a for a in cfg.classroom.agents()}
    per_lane = {}
    for lane in graph_lanes:
        mine = [r for r in rows if r["lane"] == lane.teacher]
        if not mine:
            continue
        per_lane[lane.teacher] = {
            "label": describe_lane(lane, agents),
            "metric": mine[0]["metric"],
            "first": mine[0]["test_value"],
            "last": mine[-1]["test_value"],
            "best": max((r["test_value"] for r in mine if r["test_value"] is not None), default=None),
            "rounds": len(mine) - 1,
        }
    return {
        "run_id": cfg.run_id,
        "task": cfg.task.name,
        "m3": cfg.m3.model_dump(mode="json"),
        "train": len(state.get("train", [])),
        "test": len(state.get("test", [])),
        "lanes": per_lane,
        "events": state.get("log", []),
        "usage": meter.as_dict(),
        "wall_s": round(wall_s, 1),
    }


def describe_lane(lane: Lane, agents: Mapping[str, Any]) -> str:
    def who(name: str) -> str:
        a = agents.get(name)
        if a is None:
            return name
        persona = f", {a.persona}" if a.persona and len(a.persona) <= 20 else (", persona" if a.persona else "")
        return f"{name} ({a.model}{persona}, T={a.sampling.temperature:g})"

    return f"{who(lane.teacher)} → {'; '.join(who(s) for s in lane.students)}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def rows_table(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Header plus one list of cells per row (for Markdown and rich tables)."""
    header = ["round", "teacher", "best set score", "test metric", "test acc",
              "minibatch acc per student", "pooled", "new/dup/kept", "down"]
    out = [header]
    for r in rows:
        per = ", ".join(f"{s} {_pct(v)}" for s, v in r["minibatch_accuracy"].items()) if r["round"] else "-"
        metric = f"{r['metric']} {_pct(r['test_value'])}" if r["metric"] else "-"
        out.append([
            str(r["round"]), r["lane"], _pct(r["best_score"]), metric, _pct(r["test_accuracy"]), per,
            _pct(r["pooled_accuracy"]), f"{r['candidates']}/{r['duplicates']}/{r['kept_previous']}",
            ", ".join(r["down"]) or "-",
        ])
    return out


def summary_markdown(summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    m3 = summary["m3"]
    lines = [
        f"# M3 run `{summary['run_id']}`: {summary['task']}",
        "",
        f"{m3['rounds']} rounds, k={m3['k']}, beam={m3['beam']}, minibatch={m3['minibatch']}, "
        f"reasons={m3['reasons']}, score_sample={m3['score_sample']}, test problems={summary['test']}, "
        f"training problems={summary['train']}, init={m3['init']}; wall time {summary['wall_s']} s",
        "",
        "| teacher | who teaches whom | metric | round 0 | last round | best |",
        "|---|---|---|---|---|---|",
    ]
    for name, lane in summary["lanes"].items():
        lines.append(f"| {name} | {lane['label']} | {lane['metric']} | {_pct(lane['first'])} | "
                     f"{_pct(lane['last'])} | {_pct(lane['best'])} |")
    table = rows_table(rows)
    lines += ["", "| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(cells) + " |" for cells in table[1:]]
    if summary["events"]:
        lines += ["", "Events:", ""] + [f"- round {e['round']}, {e['lane']}: {e['event']}: {e['detail']}"
                                       for e in summary["events"]]
    return "\n".join(lines) + "\n"


def _dataset_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        row = json.loads(json.dumps(r))
        row["minibatch_accuracy"] = [{"student": k, "accuracy": v} for k, v in row["minibatch_accuracy"].items()]
        out.append(row)
    return out


def write_outputs(run: RunDir, state: dict[str, Any], rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> None:
    from lbt_agents.plots import plot_rounds

    results = {k: v for k, v in state.items() if k not in ("train", "test")}
    write_atomic(run.path / "results.json", json.dumps({"summary": summary, **results}, indent=1, default=str))
    write_atomic(run.path / "summary.json", json.dumps(summary, indent=2, default=str))
    write_atomic(run.path / "summary.md", summary_markdown(summary, rows))
    if rows:
        save_dataset(_dataset_rows(rows), run.path / "rounds")
        labels = {name: lane["label"] for name, lane in summary["lanes"].items()}
        plot_rounds(rows, run.path / "metric_by_round.png", labels=labels, title=f"M3 on {summary['task']}")
