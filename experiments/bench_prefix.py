"""Prefix reuse: the share of student prompt tokens served from vLLM's prefix
cache during M1's exams, read from the server's ``/metrics``
(``vllm:prefix_cache_hits_total`` ÷ ``vllm:prefix_cache_queries_total``).

The run pauses after teaching (``interrupt_after=["plan"]``) so that the
counters cover the exam phase only.

    python experiments/bench_prefix.py [--base-url URL] [--tps 8 --pairs 4 --eps 3]
"""

from __future__ import annotations

import asyncio

from _bench import m1_arguments, metric, report, reset_prefix_cache, run_config, server, size_overrides
from langgraph.checkpoint.memory import InMemorySaver

from graphs.m1_scoring import build_graph
from lbt_agents.agents import make_roster
from lbt_agents.tasks import load_task

HITS, QUERIES = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"


async def main() -> None:
    args = m1_arguments(__doc__).parse_args()
    with server(args.model, args.base_url, dev_mode=True) as url:
        cfg = run_config(args.config, url, *size_overrides(args))
        items = load_task(cfg.task)
        roster = make_roster(cfg.classroom, task=cfg.task.name, max_concurrency=args.concurrency)
        graph = build_graph(roster, cfg.m1, checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "prefix"}, "max_concurrency": args.concurrency}
        reset_prefix_cache(url)
        await graph.ainvoke({"items": items}, config, interrupt_after=["plan"])
        hits0, queries0 = metric(url, HITS), metric(url, QUERIES)
        out = await graph.ainvoke(None, config)
        hits, queries = metric(url, HITS) - hits0, metric(url, QUERIES) - queries0
    exams = sum(len(p["exams"]) for r in out["results"].values() for p in r["pairs"])
    ratio = hits / queries if queries else 0.0
    data = {"model": args.model, "tps": args.tps, "pairs": args.pairs, "eps": args.eps, "exams": exams,
            "prefix_cache_hit_tokens": hits, "prefix_cache_query_tokens": queries, "ratio": ratio}
    table = (
        f"# Prefix reuse in M1 exams ({args.model}, {exams} exams)\n\n"
        f"student prompt tokens: {int(queries)}; served from the prefix cache: {int(hits)}\n\n"
        f"prefix reuse ratio: **{ratio:.3f}** (target >= 0.80)\n"
    )
    report("bench_prefix", data, table)


if __name__ == "__main__":
    asyncio.run(main())
