"""Overhead of the M1 graph: its wall time ÷ replaying exactly its requests with a
bare ``AsyncOpenAI`` client at the same concurrency on the same server.

The graph's requests are recorded as it sends them (messages, sampling, and
how many tokens came back).  The replay sends the same requests in the same
order, each generating exactly as many tokens, and keeps the graph's one
dependency (all teacher calls, then all exams) and nothing else: no
checkpoints, cache, grading or LangChain.  The prefix cache is reset before
each timed phase when the server allows it.  One-time imports happen before
timing starts.  Client CPU seconds are printed
beside each wall time: on a small CPU machine the client and the server share
the cores.

    python experiments/bench_overhead.py [--base-url URL] [--tps 8 --pairs 4 --eps 3] [--repeats 3]
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _bench import m1_arguments, report, reset_prefix_cache, run_config, server, size_overrides
from openai import AsyncOpenAI

from lbt_agents.grading import get_grader
from lbt_agents.llm import ChatAgent
from lbt_agents.m1 import arun_m1
from lbt_agents.tasks import load_task

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


@dataclass
class Request:
    seq: int
    agent: str
    model: str
    messages: list[dict[str, str]]
    params: dict[str, Any]
    completion_tokens: int = 0


class Recorder:
    """Wraps ``ChatAgent._request`` to log every request the graph sends, in order."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._seq = itertools.count()
        self._original = ChatAgent._request

    def __enter__(self) -> Recorder:
        original, log = self._original, self

        async def recorded(agent: ChatAgent, messages, params, seed, on_first_token=None):  # type: ignore[no-untyped-def]
            req = Request(
                next(log._seq), agent.name, agent.cfg.model,
                [{"role": _ROLES[m.type], "content": str(m.content)} for m in messages], dict(params),
            )
            reply = await original(agent, messages, params, seed, on_first_token)
            req.completion_tokens = reply.completion_tokens
            log.requests.append(req)
            return reply

        ChatAgent._request = recorded  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        ChatAgent._request = self._original  # type: ignore[method-assign]


async def replay(client: AsyncOpenAI, requests: list[Request], teacher: str, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def call(req: Request) -> None:
        n = max(1, req.completion_tokens)  # exactly the graph's token count: the same work
        async with sem:
            await client.chat.completions.create(
                model=req.model, messages=req.messages, temperature=req.params["temperature"],
                top_p=req.params["top_p"], max_tokens=n, extra_body={"min_tokens": n, "ignore_eos": True},
            )

    ordered = sorted(requests, key=lambda r: r.seq)
    start = time.perf_counter()
    await asyncio.gather(*(call(r) for r in ordered if r.agent == teacher))
    await asyncio.gather(*(call(r) for r in ordered if r.agent != teacher))
    return time.perf_counter() - start


@contextlib.contextmanager
def timed(wall: list[float], cpu: list[float]) -> Iterator[None]:
    """Append the block's wall time and this process's CPU time."""
    w, c = time.perf_counter(), time.process_time()
    yield
    wall.append(time.perf_counter() - w)
    cpu.append(time.process_time() - c)


async def main() -> None:
    ap = m1_arguments(__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    with server(args.model, args.base_url, dev_mode=True) as url:
        # One-time costs (importing the task's generators and the grader) are not the graph's overhead.
        first = run_config(args.config, url, *size_overrides(args))
        tp = load_task(first.task)[0]["tp"]
        get_grader(tp["kind"]).grade_sync(tp, "[[Final Answer]]: 1")
        client = AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0, timeout=300)
        graph_s, replay_s, graph_cpu, replay_cpu, exams = [], [], [], [], []
        out = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
        for r in range(args.repeats):
            cfg = run_config(
                args.config, url, *size_overrides(args), "cache.enabled=false", f"output_dir={out}", f"run_id=r{r}"
            )
            reset_prefix_cache(url)
            with Recorder() as rec, timed(graph_s, graph_cpu):
                result = await arun_m1(cfg, progress=False)
            reset_prefix_cache(url)
            with timed(replay_s, replay_cpu):
                await replay(client, rec.requests, cfg.classroom.teacher.name, args.concurrency)
            exams.append(result.summary["exams"])
            print(
                f"repeat {r}: {len(rec.requests)} requests; graph {graph_s[-1]:.1f} s (client CPU {graph_cpu[-1]:.1f} s), "
                f"bare replay {replay_s[-1]:.1f} s (client CPU {replay_cpu[-1]:.1f} s)",
                flush=True,
            )
        await client.close()
        ratios = [g / b for g, b in zip(graph_s, replay_s)]
        ratio = statistics.median(ratios)
        total = sum(graph_s) / sum(replay_s)
    data = {
        "model": args.model, "tps": args.tps, "pairs": args.pairs, "eps": args.eps, "exams": exams,
        "concurrency": args.concurrency, "graph_s": graph_s, "replay_s": replay_s, "graph_client_cpu_s": graph_cpu,
        "replay_client_cpu_s": replay_cpu, "ratio": ratio, "ratio_of_totals": total, "prefix_cache_reset": True,
    }
    table = (
        f"# M1 graph overhead ({args.model}, {args.tps} TPs x {args.pairs} pairs x {args.eps} EPs, "
        f"concurrency {args.concurrency})\n\n"
        "| repeat | exams | M1 graph (s) | client CPU (s) | bare AsyncOpenAI replay (s) | client CPU (s) | ratio |\n"
        "|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {i} | {e} | {g:.1f} | {gc:.1f} | {b:.1f} | {bc:.1f} | {g / b:.3f} |\n"
            for i, (e, g, gc, b, bc) in enumerate(zip(exams, graph_s, graph_cpu, replay_s, replay_cpu))
        )
        + f"\noverhead ratio (median): **{ratio:.3f}** (target <= 1.03); total graph time ÷ total replay time: {total:.3f}\n"
    )
    report("bench_overhead", data, table)


if __name__ == "__main__":
    asyncio.run(main())
