"""Serving benchmark of the embedded classroom: start-up time, then completion tokens/s at 1, 16 and 64
concurrent requests (greedy, fixed prompts, completion tokens counted from ``usage``).

    python experiments/bench_serve.py [--model smollm2-135m --model qwen2.5-coder-0.5b]
                                      [--concurrency 1 16 64] [--max-tokens 128] [--extra-arg=--enforce-eager]

Writes experiments/results/bench_serve{-SUFFIX}.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil
from openai import AsyncOpenAI

from lbt_agents.serving import EMBEDDED_CLASSROOM, VllmServer

RESULTS = Path(__file__).resolve().parent / "results"
TOPICS = [
    "why the sky is blue", "how a bicycle stays upright", "what a prime number is", "how vaccines work",
    "why leaves change colour", "how a refrigerator cools", "what inflation means", "how tides happen",
    "why ice floats", "how a compass works", "what photosynthesis does", "how rainbows form",
    "why bread rises", "how a battery stores energy", "what gravity is", "how bees make honey",
]  # fmt: skip


def prompts(n: int) -> list[str]:
    return [f"Explain {TOPICS[i % len(TOPICS)]} in a short paragraph (variant {i})." for i in range(n)]


async def _one(client: AsyncOpenAI, model: str, prompt: str, max_tokens: int) -> int:
    resp = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0
    )
    return resp.usage.completion_tokens if resp.usage else 0


async def throughput(base_url: str, model: str, concurrency: int, max_tokens: int, rounds: int) -> dict[str, Any]:
    """``rounds`` waves of ``concurrency`` simultaneous requests; tokens/s over the whole wall time."""
    async with AsyncOpenAI(base_url=base_url, api_key="EMPTY", timeout=1800, max_retries=0) as client:
        await _one(client, model, "Say hi.", 4)  # warm the path (not timed)
        batch = prompts(concurrency * rounds)
        t0 = time.perf_counter()
        tokens = 0
        for r in range(rounds):
            wave = batch[r * concurrency : (r + 1) * concurrency]
            tokens += sum(await asyncio.gather(*(_one(client, model, p, max_tokens) for p in wave)))
        wall = time.perf_counter() - t0
    n = concurrency * rounds
    return {
        "concurrency": concurrency,
        "requests": n,
        "completion_tokens": tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(tokens / wall, 1),
        "latency_s_per_request": round(wall / rounds, 2),
    }


def bench_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    server = VllmServer(model, kv_cache_gib=args.kv_cache_gib, extra_args=args.extra_arg)
    server.prepare()  # pull outside the timed start-up
    t0 = time.perf_counter()
    endpoint = server.start()
    startup = time.perf_counter() - t0
    print(f"{model}: ready in {startup:.1f}s at {endpoint.base_url} (log {endpoint.log_path})", flush=True)
    try:
        rows = []
        for c in args.concurrency:
            row = asyncio.run(throughput(endpoint.base_url, model, c, args.max_tokens, 2 if c == 1 else 1))
            print(f"  c={c:>3}: {row['tokens_per_s']:>7.1f} tok/s ({row['completion_tokens']} tokens in {row['wall_s']}s)", flush=True)
            rows.append(row)
    finally:
        server.stop()
    return {"model": model, "startup_s": round(startup, 1), "extra_args": list(args.extra_arg), "throughput": rows}


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    conc = [r["concurrency"] for r in results[0]["throughput"]] if results else []
    lines = [
        f"# Serving benchmark ({meta['when']})",
        "",
        f"{meta['machine']}; vLLM args: {' '.join(meta['extra_args']) or '(defaults)'}; "
        f"{meta['max_tokens']} max tokens, temperature 0, completion tokens from `usage`; "
        f"load average at start {meta['loadavg_start']}.",
        "",
        "| model | start-up (s) | " + " | ".join(f"tok/s @ {c}" for c in conc) + " |",
        "|---|---:|" + "---:|" * len(conc),
    ]
    for r in results:
        lines.append(f"| {r['model']} | {r['startup_s']} | " + " | ".join(str(t["tokens_per_s"]) for t in r["throughput"]) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="registry name (repeatable)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--kv-cache-gib", type=float, default=2.0)
    ap.add_argument("--extra-arg", action="append", default=[], help="extra vLLM argument (repeatable)")
    ap.add_argument("--suffix", default="", help="results file suffix (bench_serve-SUFFIX.json)")
    args = ap.parse_args()
    models = args.model or list(EMBEDDED_CLASSROOM)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "max_tokens": args.max_tokens,
        "extra_args": args.extra_arg,
    }
    results = [bench_model(m, args) for m in models]
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    name = "bench_serve" + (f"-{args.suffix}" if args.suffix else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    table = markdown(results, meta)
    (RESULTS / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
