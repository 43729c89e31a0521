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

from lbt_agents.budget import Budget, BudgetExhausted, Spent, stop_message
from lbt_agents.classroom import Lane, who_teaches_whom
from lbt_agents.config import BudgetConfig, RunConfig
from lbt_agents.errors import ConfigError
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
    ``cfg.m3.repeats`` > 1 runs :func:`arun_repeats` instead.
    """
    who_teaches_whom(cfg.classroom)  # bad edges fail before anything is written
    if resume is None and cfg.m3.repeats > 1 or resume is not None and _is_repeats(cfg.output_dir / resume):
        return await arun_repeats(cfg, resume=resume, models=models, on_round=on_round, prefix=prefix)

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
REPEATS_FILE = "repeats.json"


def _is_repeats(path: Path) -> bool:
    return (path / REPEATS_FILE).is_file()


async def arun_repeats(
    cfg: RunConfig,
    *,
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    on_round: RoundCallback | None = None,
    prefix: str = "m3",
) -> M3Result:
    """``cfg.m3.repeats`` independent M3 runs, seeds ``m3.seed + i``, each its own resumable run
    ``<run_id>/rep<i>``; ``repeats.json`` and ``summary.md`` in ``<run_id>/`` give each round's test
    metric as mean, std and standard error over the finished repeats (the official notebook plots
    mean ± standard error over its repeats), ``metric_by_round.png`` the means. Resuming ``<run_id>``
    continues the unfinished repeats."""
    from lbt_agents.graphs.m3_refinement import inputs as m3_inputs
    from lbt_agents.runs import check_run_id, lock_run, new_run_id, prepare_run

    if resume is None:
        m3_inputs(cfg)  # bad data or sizes fail before anything is written
        parent = check_run_id(cfg.run_id or new_run_id(prefix))
        if (cfg.output_dir / parent / REPEATS_FILE).exists():
            raise ConfigError(f"run {parent!r} already exists in {cfg.output_dir}; resume it with --resume {parent}")
    else:
        parent = check_run_id(resume)
    path = cfg.output_dir / parent
    path.mkdir(parents=True, exist_ok=True)
    with lock_run(path):
        cfg, run = prepare_run(cfg.model_copy(update={"run_id": parent}), resume=resume)
        results: list[M3Result] = []
        write_atomic(run.path / REPEATS_FILE, json.dumps(aggregate_repeats(cfg, results), indent=1))
        subs = [f"rep{i}" for i in range(cfg.m3.repeats)]
        for i, sub_id in enumerate(subs):
            sub = cfg.model_copy(update={
                "run_id": sub_id, "output_dir": run.path, "budget": _share_of_budget(cfg, run.path, subs, sub_id, parent),
                "m3": cfg.m3.model_copy(update={"seed": cfg.m3.seed + i, "repeats": 1}),
            })
            again = sub_id if (run.path / sub_id / "config.yaml").is_file() else None
            try:
                results.append(await arun_m3(sub, resume=again, models=models, on_round=on_round, prefix=prefix))
            except BudgetExhausted:
                raise _budget_stop(cfg, run.path, subs, parent) from None
            summary = aggregate_repeats(cfg, results)
            write_atomic(run.path / REPEATS_FILE, json.dumps(summary, indent=1))
            write_atomic(run.path / "summary.md", repeats_markdown(summary))
        if summary["by_round"]:
            from lbt_agents.plots import plot_rounds

            means = [{"lane": r["lane"], "round": r["round"], "metric": summary["metric"], "test_value": r["mean"],
                      "pooled_accuracy": None} for r in summary["by_round"]]
            plot_rounds(means, run.path / "metric_by_round.png",
                        title=f"M3 on {summary['task']}: mean over {summary['finished']} repeats")
    rows = [{**row, "repeat": i} for i, res in enumerate(results) for row in res.rows]
    return M3Result(run.path, rows, summary, results[-1].state)


def _spent(path: Path, runs: Sequence[str]) -> Spent:
    return sum((Spent.load(path / name) for name in runs), Spent())


def _share_of_budget(cfg: RunConfig, path: Path, subs: Sequence[str], sub_id: str, parent: str) -> BudgetConfig:
    """A repeat's budget: the whole run's, less what the other repeats have spent (``budget`` caps all repeats)."""
    caps = cfg.budget
    if caps.max_requests is None and caps.max_tokens is None:
        return caps
    others = _spent(path, [s for s in subs if s != sub_id])
    left_requests = None if caps.max_requests is None else caps.max_requests - others.requests
    left_tokens = None if caps.max_tokens is None else caps.max_tokens - others.tokens
    if (left_requests is not None and left_requests < 1) or (left_tokens is not None and left_tokens < 1):
        raise _budget_stop(cfg, path, subs, parent)
    return BudgetConfig(max_requests=left_requests, max_tokens=left_tokens)


def _budget_stop(cfg: RunConfig, path: Path, subs: Sequence[str], parent: str) -> BudgetExhausted:
    """The stop line of the whole run (``--resume <parent>``), with what all its repeats spent."""
    whole = Budget(cfg.budget.max_requests, cfg.budget.max_tokens, spent=_spent(path, subs))
    return BudgetExhausted(stop_message(parent, whole))


def aggregate_repeats(cfg: RunConfig, results: Sequence[M3Result]) -> dict[str, Any]:
    """Per lane and round: the test metric of every finished repeat, its mean, std (n-1) and standard error."""
    import statistics

    per: dict[tuple[str, int], list[float]] = {}
    for res in results:
        for row in res.rows:
            if row["test_value"] is not None:
                per.setdefault((row["lane"], row["round"]), []).append(row["test_value"])
    table = []
    for (lane, round_), values in sorted(per.items()):
        std = statistics.stdev(values) if len(values) > 1 else None
        table.append({"lane": lane, "round": round_, "n": len(values), "mean": statistics.fmean(values),
                      "std": std, "sem": std / len(values) ** 0.5 if std is not None else None, "values": values})
    metric = next((r["metric"] for res in results for r in res.rows if r.get("metric")), cfg.m3.metric)
    return {"run_id": cfg.run_id, "task": cfg.task.name, "repeats": cfg.m3.repeats, "finished": len(results),
            "seeds": [cfg.m3.seed + i for i in range(cfg.m3.repeats)], "metric": metric,
            "runs": [str(res.run_dir) for res in results], "by_round": table,
            "m3": cfg.m3.model_dump(mode="json")}


def repeats_markdown(summary: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    lines = [f"# M3 repeats `{summary['run_id']}`: {summary['task']}", "",
             (f"{summary['finished']} of {summary['repeats']} repeats finished (seeds {summary['seeds']}); "
              f"test {summary['metric']} per round, mean ± std (± standard error)"), "",
             "| teacher | round | n | mean | std | sem | values |", "|---|---|---|---|---|---|---|"]
    for r in summary["by_round"]:
        lines.append(f"| {r['lane']} | {r['round']} | {r['n']} | {pct(r['mean'])} | {pct(r['std'])} | "
                     f"{pct(r['sem'])} | {', '.join(pct(v) for v in r['values'])} |")
    return "\n".join(lines) + "\n"


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
    if "by_round" in summary:
        return repeats_markdown(summary)
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
