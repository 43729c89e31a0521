"""Prefix reuse: the share of student prompt tokens served from vLLM's prefix
cache during M1's exams, read from the server's ``/metrics``
(``vllm:prefix_cache_hits_total`` ÷ ``vllm:prefix_cache_queries_total``).

The run pauses after teaching (``interrupt_after=["plan"]``) so that the
counters cover the exam phase only.

    python experiments/bench_prefix.py [--base-url URL] [--tps 8 --pairs 4 --eps 3]
"""

from __future__ import annotations

import argparse
import asyncio

from _bench import ROOT, metric, report, reset_prefix_cache, run_config, server
from langgraph.checkpoint.memory import InMemorySaver

from graphs.m1_scoring import build_graph
from lbt_agents.agents import make_roster
from lbt_agents.tasks import load_task

HITS, QUERIES = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "experiments/configs/quickstart.yaml"))
    ap.add_argument("--base-url")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tps", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--eps", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    with server(args.model, args.base_url, dev_mode=True) as url:
        cfg = run_config(
            args.config, url, f"task.limit={args.tps}", f"task.eps_per_tp={args.eps}",
            f"m1.pairs_per_tp={args.pairs}", f"classroom.teacher.model={args.model}",
            f"classroom.students.0.model={args.model}",
        )
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
