"""Prefix reuse: the share of student prompt tokens served from vLLM's prefix
cache during M1's exams, read from the server's ``/metrics``
(``vllm:prefix_cache_hits_total`` ÷ ``vllm:prefix_cache_queries_total``).

The run pauses after teaching (``interrupt_after=["plan"]``) so that the
counters cover the exam phase only.

The attainable share is printed beside it: the server caches whole blocks
(128 tokens on vLLM-CPU), and each exam's own problem and the first sight of
each TR-TA must be computed, so even a perfect cache misses those.  It is
computed from the exact exam prompts, tokenized by the server.

    python experiments/bench_prefix.py [--base-url URL] [--tps 8 --pairs 4 --eps 3]
"""

from __future__ import annotations

import asyncio
import re

import httpx
from _bench import (
    exam_messages,
    m1_arguments,
    metric,
    report,
    reset_prefix_cache,
    run_config,
    server,
    size_overrides,
)
from langgraph.checkpoint.memory import InMemorySaver

from lbt_agents import Classroom, m1_graph
from lbt_agents.tasks import load_task

HITS, QUERIES = "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total"


def block_size(base_url: str) -> int:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    found = re.search(r'vllm:cache_config_info\{[^}]*\bblock_size="(\d+)"', text)
    return int(found.group(1)) if found else 16


def attainable(prompts: list[list[int]], block: int) -> float:
    """Best share of prompt tokens a prefix cache of ``block``-token blocks can serve:
    every full block whose whole prefix an earlier prompt already had."""
    seen: set[int] = set()
    hits = 0
    for tokens in prompts:
        h = 0
        for end in range(block, len(tokens) + 1, block):
            h = hash((h, tuple(tokens[end - block : end])))
            hits += block if h in seen else 0
            seen.add(h)
    total = sum(map(len, prompts))
    return hits / total if total else 0.0


def tokenize(base_url: str, model: str, messages: list[dict[str, str]]) -> list[int]:
    body = {"model": model, "messages": messages, "add_generation_prompt": True}
    return httpx.post(base_url.removesuffix("/v1") + "/tokenize", json=body, timeout=60).json()["tokens"]


async def main() -> None:
    args = m1_arguments(__doc__).parse_args()
    with server(args.model, args.base_url, dev_mode=True) as url:
        cfg = run_config(args.config, url, *size_overrides(args))
        items = load_task(cfg.task)
        room = Classroom.from_config(cfg.classroom, task=cfg.task.name, max_concurrency=args.concurrency)
        graph = m1_graph(cfg.m1, checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "prefix"}, "max_concurrency": args.concurrency}
        reset_prefix_cache(url)
        await graph.ainvoke({"items": items}, config, interrupt_after=["plan"], context=room)
        hits0, queries0 = metric(url, HITS), metric(url, QUERIES)
        out = await graph.ainvoke(None, config, context=room)
        hits, queries = metric(url, HITS) - hits0, metric(url, QUERIES) - queries0
        model = cfg.classroom.students[0].model
        prompts = [tokenize(url, model, m) for m in exam_messages(roster.students[0], items, out["results"])]
        block = block_size(url)
    exams = len(prompts)
    ratio = hits / queries if queries else 0.0
    best = attainable(prompts, block)
    data = {"model": args.model, "tps": args.tps, "pairs": args.pairs, "eps": args.eps, "exams": exams,
            "prefix_cache_hit_tokens": hits, "prefix_cache_query_tokens": queries, "ratio": ratio,
            "block_size": block, "attainable_ratio": best, "share_of_attainable": ratio / best if best else None,
            "attainable_by_block_size": {b: attainable(prompts, b) for b in (1, 16, 32, 64, 128)}}
    table = (
        f"# Prefix reuse in M1 exams ({args.model}, {exams} exams)\n\n"
        f"student prompt tokens: {int(queries)}; served from the prefix cache: {int(hits)}\n\n"
        f"prefix reuse ratio: **{ratio:.3f}** (target >= 0.80)\n\n"
        f"attainable with {block}-token cache blocks and these prompts: {best:.3f} "
        f"(reached: {100 * ratio / best if best else 0:.0f}%); with other block sizes: "
        + ", ".join(f"{b}: {r:.3f}" for b, r in data["attainable_by_block_size"].items())
        + "\n"
    )
    report("bench_prefix", data, table)


if __name__ == "__main__":
    asyncio.run(main())
