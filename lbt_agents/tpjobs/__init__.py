"""TP jobs: a run as a set of per-TP graph invocations, on a local or a Ray executor.

Each TP's M1 (teach → exams → select) is one invocation of the graph on its own checkpoint
thread (``<run_id>/<tp_id>``); at most ``executor.max_tps_in_flight`` run at once (and the
classroom bounds the requests); a finished TP's results become its shard
(:class:`ShardStore`), its thread is deleted and its state leaves memory.  A resumed run
skips finished TPs (their shards) and, inside an unfinished TP, finished exams (its thread).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from lbt_agents.config import RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.tpjobs._job import (
    JobCounter,
    StatsFn,
    keep_latest_checkpoint,
    run_local,
    run_tp_job,
    thread_id,
)
from lbt_agents.tpjobs._shards import TABLES, ShardStore, shard_key
from lbt_agents.types import TeachingItem


EXAM_NODE = "exam"
"""The graph node of one exam: a finished TP's shard record counts its ``exams`` under it."""


@dataclass(frozen=True)
class TPJobsRun:
    """A finished set of TP jobs: the run's folder, live config, items, shards and usage."""

    run_dir: Path
    cfg: RunConfig
    items: list[TeachingItem]
    store: ShardStore
    requests: dict[str, dict[str, Any]]
    wall_s: float
    peak_tps_in_flight: int
    skipped: int


async def arun_tp_jobs(
    builder: Callable[[RunConfig], Any],
    cfg: RunConfig,
    *,
    stats: Callable[[RunConfig], StatsFn],
    inputs: Callable[[RunConfig], dict[str, Any]],
    resume: str | None = None,
    models: Mapping[str, BaseChatModel | Sequence[BaseChatModel]] | None = None,
    prefix: str = "run",
    progress: Callable[[RunConfig, list[TeachingItem]], Any] | None = None,
) -> TPJobsRun:
    """Run (or resume) ``builder(cfg)``'s graph once per TP of ``inputs(cfg)["items"]`` on
    ``cfg.executor``; ``stats(cfg)`` turns a TP's result into its shard's summary record."""
    from lbt_agents.budget import BudgetExhausted
    from lbt_agents.runner import open_session
    from lbt_agents.runs import checkpointer

    def preflight(live: RunConfig) -> None:
        if live.executor.kind == "ray":
            from lbt_agents.tpjobs._ray import check_ray

            if models:
                raise ConfigError("the Ray executor runs agents at their endpoints; models= needs executor.kind=local")
            if live.budget.max_requests is not None or live.budget.max_tokens is not None:
                raise ConfigError("budget.max_requests/max_tokens need executor.kind=local (each Ray worker would "
                                  "count its own)")
            check_ray(live.executor)

    async with open_session(cfg, load=inputs, resume=resume, models=models, prefix=prefix,
                            preflight=preflight) as session:
        live, run = session.cfg, session.run
        ray = live.executor.kind == "ray"
        items = list(session.data["items"])
        store = ShardStore(run.path)
        todo = [it for it in items if not store.finished(it["tp"]["id"])]
        done = [it["tp"]["id"] for it in items if store.finished(it["tp"]["id"])]
        tracker = progress(live, items) if progress is not None else None
        if tracker is not None and hasattr(tracker, "watch"):
            tracker.watch(session.budget)  # requests against the plan: the ETA
        counter = JobCounter()
        summarize = stats(live)
        with tracker if tracker is not None else contextlib.nullcontext():
            for record in store.stats(done):
                if tracker is not None:
                    tracker.advance(tps=1, exams=record.get("exams", 0))
            if ray:
                from lbt_agents.tpjobs._ray import run_ray

                on_done = (lambda r: tracker.advance(tps=1, exams=r.get("exams", 0))) if tracker is not None else None
                _, meters = run_ray(live, run.path, todo, builder=builder, stats=summarize, on_done=on_done,
                                    counter=counter)
            else:
                graph = builder(live)
                async with checkpointer(live.checkpoint, run) as saver:
                    if saver is not None:
                        for tp_id in done:  # a crash between a shard and its thread's deletion
                            await saver.adelete_thread(thread_id(str(live.run_id), tp_id))
                    saver = keep_latest_checkpoint(saver) if saver is not None else None
                    runnable = graph.copy(update={"checkpointer": saver}) if saver is not None else graph
                    try:
                        await run_local(runnable, todo, saver=saver, classroom=session.classroom, store=store,
                                        run_id=str(live.run_id), stats=summarize,
                                        max_tps_in_flight=live.executor.max_tps_in_flight,
                                        max_concurrency=live.max_concurrency,
                                        on_updates=tracker.update if tracker is not None else None, counter=counter,
                                        each_update=session.usage.save_soon)
                    except BudgetExhausted:
                        await _stopped_at_budget(session, runnable if saver is not None else None, items, store,
                                                 getattr(graph, "name", None))
                meters = [session.classroom.meter.as_dict()]
    return TPJobsRun(run.path, live, items, store, merge_meters(meters), session.clock.seconds, counter.peak,
                     len(done))


async def _stopped_at_budget(session: Any, graph: Any, items: Sequence[TeachingItem], store: ShardStore,
                             name: str | None) -> None:
    """The stop summary of a run that reached its budget, then the one-line BudgetExhausted.

    Its ``finished_in_last_step`` is the finished work a resume skips, over all the run's TPs: in a live
    TP thread, the finished tasks of the step it stopped at and the exams of its earlier steps
    (``m1.exams_per_step``); a finished TP (its shard, written in this
    session or an earlier one) counts its exams, all finished.  Which TP reaches its end before the
    budget does is down to scheduling (the admitted exams may all be one TP's), so counting only the
    live threads would report a different number for the same saved work."""
    from lbt_agents.budget import BudgetExhausted, stop_message, write_stop_summary

    finished: dict[str, int] = {}
    shards = [it["tp"]["id"] for it in items if store.finished(it["tp"]["id"])]
    done = set(shards)
    for record in store.stats(shards):
        if record.get("exams"):
            finished[EXAM_NODE] = finished.get(EXAM_NODE, 0) + int(record["exams"])
    for item in items if graph is not None else ():
        tp_id = item["tp"]["id"]
        if tp_id in done:
            continue
        config = {"configurable": {"thread_id": thread_id(str(session.cfg.run_id), tp_id)}}
        snapshot = await graph.aget_state(config)
        exams = set(snapshot.values.get("exams") or {})  # exams of the steps before (and saved ones of this)
        for task in snapshot.tasks:
            if task.result is None or task.error:
                continue
            if task.name == EXAM_NODE and isinstance(task.result, Mapping):
                exams.update(task.result.get("exams") or {})
            else:
                finished[task.name] = finished.get(task.name, 0) + 1
        if exams:
            finished[EXAM_NODE] = finished.get(EXAM_NODE, 0) + len(exams)
    session.usage.save()
    write_stop_summary(session.run.path, name, session.budget, session.classroom.meter.as_dict(), finished,
                       session.clock.seconds)
    raise BudgetExhausted(stop_message(session.run.run_id, session.budget)) from None


def merge_meters(meters: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Usage meters (``UsageMeter.as_dict``) of several workers added up per agent."""
    out: dict[str, dict[str, Any]] = {}
    for meter in meters:
        for agent, usage in meter.items():
            into = out.setdefault(agent, {})
            for key, value in usage.items():
                into[key] = into.get(key, 0) + value
    return dict(sorted(out.items()))


__all__ = ["TABLES", "JobCounter", "ShardStore", "TPJobsRun", "arun_tp_jobs", "merge_meters", "run_local",
           "run_tp_job", "shard_key", "thread_id"]
