"""Overhead of the M1 graph: its wall time ÷ replaying exactly its requests with a
bare ``AsyncOpenAI`` client at the same concurrency on the same server.

The replay keeps the graph's one dependency (all teacher calls, then all
exams) and nothing else: no checkpoints, cache, grading or LangChain.  Each
replayed request generates exactly as many tokens as the graph's did.  The
prefix cache is reset before each timed phase when the server allows it.

    python experiments/bench_overhead.py [--base-url URL] [--tps 8 --pairs 4 --eps 3]
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from _bench import exam_calls, m1_arguments, report, reset_prefix_cache, run_config, server, size_overrides
from openai import AsyncOpenAI

from lbt_agents.agents import Student, Teacher
from lbt_agents.llm import ChatAgent
from lbt_agents.m1 import arun_m1
from lbt_agents.tasks import load_task


async def replay(base_url: str, cfg, items, results, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    t_cfg = cfg.classroom.teacher
    s_cfg = cfg.classroom.students[0]
    client = AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=600)
    sem = asyncio.Semaphore(concurrency)
    fake = _NoModel()
    teacher = Teacher(ChatAgent(t_cfg, models=[fake]), task=cfg.task.name)
    student = Student(ChatAgent(s_cfg, models=[fake]), task=cfg.task.name)

    async def call(model: str, messages, sampling, record) -> None:  # type: ignore[no-untyped-def]
        # Exactly as many tokens as the graph's call generated, so both sides do the same work.
        n = max(1, record["completion_tokens"])
        async with sem:
            await client.chat.completions.create(
                model=model, messages=messages, temperature=sampling.temperature, top_p=sampling.top_p,
                max_tokens=n, extra_body={"min_tokens": n, "ignore_eos": True},
            )

    by_id = {item["tp"]["id"]: item for item in items}
    teach_calls = []
    for tp_id, res in results.items():
        msgs = teacher.messages(by_id[tp_id]["tp"])
        teach_calls += [call(t_cfg.model, msgs, t_cfg.sampling, pair) for pair in res["pairs"]]
        if res.get("greedy"):
            teach_calls.append(call(t_cfg.model, msgs, t_cfg.sampling.model_copy(update={"temperature": 0.0}), res["greedy"]))
    exams = [call(s_cfg.model, msgs, s_cfg.sampling, exam) for msgs, exam in exam_calls(student, items, results)]
    start = time.perf_counter()
    await asyncio.gather(*teach_calls)
    await asyncio.gather(*exams)
    return time.perf_counter() - start


class _NoModel:
    """Stands in for a chat model: the replay builds messages only."""


async def main() -> None:
    ap = m1_arguments(__doc__)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    with server(args.model, args.base_url, dev_mode=True) as url:
        graph_s, replay_s = [], []
        out = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
        for r in range(args.repeats):
            cfg = run_config(
                args.config, url, *size_overrides(args), "cache.enabled=false", f"output_dir={out}", f"run_id=r{r}"
            )
            items = load_task(cfg.task)
            reset_prefix_cache(url)
            start = time.perf_counter()
            result = await arun_m1(cfg, progress=False)
            graph_s.append(time.perf_counter() - start)
            reset_prefix_cache(url)
            replay_s.append(await replay(url, cfg, items, result.results, args.concurrency))
            print(f"repeat {r}: graph {graph_s[-1]:.1f} s, bare replay {replay_s[-1]:.1f} s", flush=True)
        ratio = statistics.median(g / b for g, b in zip(graph_s, replay_s))
        exams = result.summary["exams"]
    data = {
        "model": args.model, "tps": args.tps, "pairs": args.pairs, "eps": args.eps, "exams": exams,
        "concurrency": args.concurrency, "graph_s": graph_s, "replay_s": replay_s, "ratio": ratio,
        "prefix_cache_reset": True,
    }
    table = (
        f"# M1 graph overhead ({args.model}, {args.tps} TPs x {args.pairs} pairs x {args.eps} EPs = {exams} exams, "
        f"concurrency {args.concurrency})\n\n| repeat | M1 graph (s) | bare AsyncOpenAI replay (s) | ratio |\n|---|---|---|---|\n"
        + "".join(f"| {i} | {g:.1f} | {b:.1f} | {g / b:.3f} |\n" for i, (g, b) in enumerate(zip(graph_s, replay_s)))
        + f"\noverhead ratio (median): **{ratio:.3f}** (target <= 1.03)\n"
    )
    report("bench_overhead", data, table)


if __name__ == "__main__":
    asyncio.run(main())
