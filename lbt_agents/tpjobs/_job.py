"""One TP job (a graph invocation on the TP's own checkpoint thread) and the local executor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbt_agents.classroom import Classroom
from lbt_agents.runner import drive
from lbt_agents.tpjobs._shards import ShardStore
from lbt_agents.types import TeachingItem

StatsFn = Callable[[Mapping[str, Any]], dict[str, Any]]
"""A finished TP's result → the small record its summary needs (saved in its shard)."""


def thread_id(run_id: str, tp_id: str) -> str:
    """The checkpoint thread of one TP job."""
    return f"{run_id}/{tp_id}"


@dataclass
class JobCounter:
    """TP jobs running now, the most at once, and the finished ones' stats (as they land)."""

    running: int = 0
    peak: int = 0
    finished: list[dict[str, Any]] = field(default_factory=list)

    def enter(self) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)

    def leave(self) -> None:
        self.running -= 1


def keep_latest_checkpoint(saver: Any) -> Any:
    """``saver`` (SQLite) deleting a thread's older checkpoints and their writes as each new one is saved.

    A TP job resumes from its thread's latest checkpoint and that checkpoint's writes only, so the
    superseded ones (each a full copy of the TP's state, one holding every exam's ``Send``) are dead
    weight: without them a live TP thread takes about a third of the space.  Other savers are returned
    as they are (their finished threads are deleted whole)."""
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    if not isinstance(saver, AsyncSqliteSaver):
        return saver
    put = saver.aput

    async def aput(config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        saved = await put(config, checkpoint, metadata, new_versions)
        conf = saved["configurable"]
        key = (str(conf["thread_id"]), str(conf.get("checkpoint_ns", "")), str(conf["checkpoint_id"]))
        async with saver.lock:
            for table in ("writes", "checkpoints"):
                await saver.conn.execute(f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? "
                                         "AND checkpoint_id < ?", key)
            await saver.conn.commit()
        return saved

    saver.aput = aput
    return saver


async def run_tp_job(
    graph: Any,
    item: TeachingItem,
    *,
    saver: Any,
    classroom: Classroom,
    store: ShardStore,
    run_id: str,
    stats: StatsFn,
    max_concurrency: int,
    output_key: str = "results",
    on_updates: Callable[[dict[str, Any]], None] | None = None,
    each_update: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Run (or continue, from its thread) one TP's graph, save its shard, drop its thread; its stats."""
    tp_id = item["tp"]["id"]
    config = {"configurable": {"thread_id": thread_id(run_id, tp_id)}, "max_concurrency": max_concurrency,
              "recursion_limit": 10_000}
    started = saver is not None and bool((await graph.aget_state(config)).values)
    final = await drive(graph, None if started else {"items": [item]}, config, classroom, on_updates,
                        each_update=each_update)
    if saver is not None:
        final = (await graph.aget_state(config)).values
    result = final[output_key][tp_id]
    record = stats(result)
    await asyncio.to_thread(store.write, result, record, run_id)  # a retried job's second write is a no-op
    if saver is not None:
        await saver.adelete_thread(config["configurable"]["thread_id"])  # its work lives in the shard now
    return {"tp_id": tp_id, **record}


async def run_local(
    graph: Any,
    items: Sequence[TeachingItem],
    *,
    saver: Any,
    classroom: Classroom,
    store: ShardStore,
    run_id: str,
    stats: StatsFn,
    max_tps_in_flight: int,
    max_concurrency: int,
    on_updates: Callable[[dict[str, Any]], None] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    counter: JobCounter | None = None,
    each_update: Callable[[], None] = lambda: None,
) -> JobCounter:
    """Run the TP jobs of ``items`` in this process, at most ``max_tps_in_flight`` at once; the first
    failure stops the others (their finished exams stay in their threads).  A spent budget stops each
    job at its next request instead, so the requests it admitted finish and are saved."""
    from lbt_agents.budget import BudgetExhausted

    counter = counter or JobCounter()
    queue: Iterable[TeachingItem] = iter(items)
    spent: list[BudgetExhausted] = []

    async def worker() -> None:
        for item in queue:  # shared: each item goes to one worker
            if spent:
                return
            counter.enter()
            try:
                record = await run_tp_job(graph, item, saver=saver, classroom=classroom, store=store, run_id=run_id,
                                          stats=stats, max_concurrency=max_concurrency, on_updates=on_updates,
                                          each_update=each_update)
            except BudgetExhausted as exc:
                spent.append(exc)
                return
            finally:
                counter.leave()
            counter.finished.append(record)
            if on_done is not None:
                on_done(record)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max_tps_in_flight, len(items))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:  # the first failure, as itself
        raise failed.exceptions[0] from None
    if spent:
        raise spent[0]
    return counter
