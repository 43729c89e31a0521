"""Run M3 and classroom simulations: ``run_m3(cfg)`` / ``run_classroom(cfg)``, ``lbt m3`` / ``lbt classroom``.

Both run the graph of :mod:`graphs.m3_refinement` over the roster graph of
``cfg.classroom`` (default: the teacher teaches every student).  Results go to
the run dir: ``results.json`` (every round's sets, scores, failures, reasons),
``rounds/`` (HF dataset, one row per lane and round), ``summary.md`` and
``metric_by_round.png``.  Rows are also appended to ``rounds.jsonl`` as rounds
finish; the SQLite checkpointer lets ``--resume RUN_ID`` continue a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any, Callable, Mapping, Sequence

from langchain_core.language_models import BaseChatModel

from lbt_agents.config import RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.llm import ChatAgent, UsageMeter, check_endpoints
from lbt_agents.roster_graph import Lane, lanes, roster_graph
from lbt_agents.runs import (
    RunDir,
    Stopwatch,
    call_cache,
    checkpointer,
    embedded_endpoints,
    prepare_run,
    save_dataset,
    write_atomic,
)
from lbt_agents.types import Problem

RoundCallback = Callable[[list[dict[str, Any]]], None]
"""Called with the rows (one per lane) of each finished round."""


@dataclass(frozen=True)
class M3Result:
    run_dir: Path
    rows: list[dict[str, Any]]
    """One row per lane and round (see ``graphs.m3_refinement.round_row``)."""
    summary: dict[str, Any]
    state: dict[str, Any]


def load_splits(cfg: RunConfig) -> tuple[list[Problem], list[Problem]]:
    """Training problems (``task.offset``/``task.limit`` apply) and test problems (``m3.test_limit``).

    A task with one split only (e.g. ``gsm8k_functional``) is cut in two seeded halves.
    """
    from lbt_agents.tasks import load_problems

    task = cfg.task
    try:
        train = load_problems(task.model_copy(update={"split": "train"}))
        test = load_problems(task.model_copy(update={"split": "test", "offset": 0, "limit": cfg.m3.test_limit}))
        return train, test
    except ConfigError as exc:
        if "split" not in str(exc):
            raise
    everything = load_problems(task.model_copy(update={"offset": 0, "limit": None}))
    order = list(range(len(everything)))
    Random(f"{cfg.m3.seed}:halves").shuffle(order)
    half = len(order) // 2
    test = [everything[i] for i in order[:half]][: cfg.m3.test_limit]
    train = [everything[i] for i in order[half:]][task.offset :]
    if task.limit is not None:
        train = train[: task.limit]
    return train, test


def build_agents(
    cfg: RunConfig,
    *,
    models: Mapping[str, Sequence[BaseChatModel]] | None = None,
    cache: Any = None,
    meter: UsageMeter | None = None,
) -> dict[str, ChatAgent]:
    """A :class:`ChatAgent` per classroom agent, sharing one cache, meter and concurrency limit."""
    models = models or {}
    meter = meter or UsageMeter()
    limiter = asyncio.Semaphore(cfg.max_concurrency)
    return {
        a.name: ChatAgent(a, models=models.get(a.name), cache=cache, meter=meter, limiter=limiter)
        for a in cfg.classroom.agents()
    }


def check_sizes(cfg: RunConfig, train: Sequence[Problem], test: Sequence[Problem]) -> None:
    from graphs.m3_refinement import make_plan

    make_plan(len(train), cfg.m3)  # K larger than the training set: ConfigError
    if not test:
        raise ConfigError(f"task {cfg.task.name!r} has no test problems for M3's per-round metric")


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
    models: Mapping[str, Sequence[BaseChatModel]] | None = None,
    on_round: RoundCallback | None = None,
    prefix: str = "m3",
) -> M3Result:
    """Run M3 over ``cfg.classroom``'s roster graph on ``cfg.task``.

    ``models`` maps agent names to chat models (offline tests); other agents use
    their endpoints (``base_url: embedded`` starts the embedded classroom).
    Bad sizes (K larger than the training set) fail before any run dir or server.
    """
    from graphs.m3_refinement import build_graph

    graph_lanes = lanes(roster_graph(cfg.classroom))
    if resume is None:
        train, test = load_splits(cfg)
        check_sizes(cfg, train, test)
    cfg, run = prepare_run(cfg, resume=resume, prefix=prefix)
    if resume is not None:
        train, test = load_splits(cfg)
        graph_lanes = lanes(roster_graph(cfg.classroom))
    clock = Stopwatch()
    meter = UsageMeter()
    rows_file = run.path / "rounds.jsonl"
    with embedded_endpoints(cfg, run.logs) if not models else contextlib.nullcontext(cfg) as live:
        if not models:
            await check_endpoints(live.classroom.agents())
        cache = call_cache(live, run)
        agents = build_agents(live, models=models, cache=cache, meter=meter)
        try:
            async with checkpointer(live.checkpoint, run) as saver:
                graph = build_graph(agents, graph_lanes, live.m3, task=live.task.name, checkpointer=saver)
                config = {"configurable": {"thread_id": run.run_id}, "max_concurrency": live.max_concurrency,
                          "recursion_limit": 100 + 20 * live.m3.rounds}
                started = saver is not None and bool((await graph.aget_state(config)).values)
                inputs = None if (resume and started) else {"train": train, "test": test}
                final: dict[str, Any] = {}
                async for mode, data in graph.astream(inputs, config, stream_mode=["updates", "values"]):
                    if mode == "values":
                        final = data
                    elif "record" in data:
                        rows = sorted((data["record"] or {}).get("rounds", {}).values(), key=lambda r: r["lane"])
                        with rows_file.open("a") as fh:
                            for row in rows:
                                fh.write(json.dumps(row) + "\n")
                        if on_round is not None:
                            on_round(rows)
                if saver is not None:
                    final = (await graph.aget_state(config)).values
        finally:
            if cache is not None:
                cache.close()
    rows = sorted(final.get("rounds", {}).values(), key=lambda r: (r["lane"], r["round"]))
    summary = summarize(live, graph_lanes, rows, final, meter, wall_s=clock.seconds)
    write_outputs(run, final, rows, summary)
    return M3Result(run.path, rows, summary, final)


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
