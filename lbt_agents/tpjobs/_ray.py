"""The Ray executor: TP jobs as Ray tasks; workers share the checkpointer and the run's shards.

A worker builds its own classroom (the agents' endpoints), opens the run's checkpointer
(Postgres across machines; the run folder's SQLite file on one machine or a shared disk)
and runs its TP job (:func:`run_tp_job`).  A worker that dies mid-TP: Ray retries the task
(``executor.max_retries``) on another worker, which continues the TP's thread (finished
exams are not asked again) and writes the TP's shard once.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lbt_agents.config import ExecutorConfig, RunConfig
from lbt_agents.errors import ConfigError
from lbt_agents.tpjobs._job import (
    JobCounter,
    StatsFn,
    keep_latest_checkpoint,
    run_tp_job,
)
from lbt_agents.types import TeachingItem


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray executor needs Ray: pip install 'lbt-agents[ray]'") from None
    return ray


def check_ray(executor: ExecutorConfig) -> None:
    """Ray is installed and ``executor.address`` answers, or one ConfigError line (before any model call)."""
    ray = _ray()
    address = executor.address
    if not address or address == "auto" or ray.is_initialized():
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"executor.address {address!r} is not host:port, ray://host:port or 'auto'")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def ray_cluster(executor: ExecutorConfig) -> Iterator[Any]:
    """Ray, connected: the cluster already initialized in this process, the one at ``address``, or a
    local one started here (``workers`` CPUs) and stopped on exit."""
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if executor.address:
        kwargs["address"] = executor.address
    elif executor.workers:
        kwargs["num_cpus"] = executor.workers
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at {executor.address or 'a new local one'}: "
                          f"{' '.join(str(exc).split())[:300]}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def task_slots(cfg: RunConfig, tps: int) -> int:
    """How many TP tasks run at once: ``executor.max_tps_in_flight``, no more than the TPs to run and
    than ``max_concurrency`` (each task keeps at least one request in flight)."""
    return max(1, min(cfg.executor.max_tps_in_flight, tps, cfg.max_concurrency))


def worker_config(cfg: RunConfig, slots: int) -> RunConfig:
    """The config each Ray task runs with: ``max_concurrency`` is the run's total, so each of the
    ``slots`` tasks in flight (each with its own classroom) gets an equal share of it."""
    return cfg.model_copy(update={"max_concurrency": max(1, cfg.max_concurrency // slots)})


def run_ray(
    cfg: RunConfig,
    run_path: Path,
    items: Sequence[TeachingItem],
    *,
    builder: Callable[[RunConfig], Any],
    stats: StatsFn,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    counter: JobCounter | None = None,
) -> tuple[JobCounter, list[dict[str, Any]]]:
    """Run the TP jobs of ``items`` as Ray tasks, at most ``executor.max_tps_in_flight`` at once;
    the counter and each job's usage meter (``UsageMeter.as_dict``)."""
    counter = counter or JobCounter()
    meters: list[dict[str, Any]] = []
    if not items:
        return counter, meters
    with ray_cluster(cfg.executor) as ray:
        task = ray.remote(num_cpus=1, max_retries=cfg.executor.max_retries)(_tp_task)
        slots = task_slots(cfg, len(items))
        cfg_json = worker_config(cfg, slots).model_dump_json()
        todo = list(items)
        pending: list[Any] = []
        while todo or pending:
            while todo and len(pending) < slots:
                pending.append(task.remote(cfg_json, str(run_path), todo.pop(0), builder, stats))
                counter.enter()
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                record, meter = ray.get(ref)  # a job that failed for good raises here
                counter.leave()
                counter.finished.append(record)
                meters.append(meter)
                if on_done is not None:
                    on_done(record)
    return counter, meters


def _tp_task(cfg_json: str, run_path: str, item: TeachingItem, builder: Callable[[RunConfig], Any],
             stats: StatsFn) -> tuple[dict[str, Any], dict[str, Any]]:
    return asyncio.run(_tp_worker(RunConfig.model_validate_json(cfg_json), Path(run_path), item, builder, stats))


async def _tp_worker(cfg: RunConfig, run_path: Path, item: TeachingItem, builder: Callable[[RunConfig], Any],
                     stats: StatsFn) -> tuple[dict[str, Any], dict[str, Any]]:
    from lbt_agents.classroom import Classroom
    from lbt_agents.runs import RunDir, call_cache, checkpointer
    from lbt_agents.sandbox import set_default_isolation
    from lbt_agents.tpjobs._shards import ShardStore

    set_default_isolation(cfg.sandbox.isolation)
    run = RunDir(run_path)
    cache = call_cache(cfg, run)
    classroom = Classroom.from_config(cfg, cache=cache)  # the profile's examiner too
    try:
        graph = builder(cfg)
        async with checkpointer(cfg.checkpoint, run) as saver:
            saver = keep_latest_checkpoint(saver) if saver is not None else None
            runnable = graph.copy(update={"checkpointer": saver}) if saver is not None else graph
            record = await run_tp_job(runnable, item, saver=saver, classroom=classroom, store=ShardStore(run.path),
                                      run_id=str(cfg.run_id), stats=stats, max_concurrency=cfg.max_concurrency)
    finally:
        await classroom.aclose()
        if cache is not None:
            cache.close()
    return record, classroom.meter.as_dict()
