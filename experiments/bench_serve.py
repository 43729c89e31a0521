"""Serving benchmark of the embedded classroom: start-up time, then completion tokens/s at 1, 16 and 64
concurrent requests (greedy, fixed prompts, completion tokens counted from ``usage``).

    python experiments/bench_serve.py [--run smollm2-135m:eager --run smollm2-135m:compiled ...]
                                      [--concurrency 1 16 64] [--max-tokens 128] [--extra-arg=...]

Each run is MODEL:MODE, MODE = compiled (vLLM's torch.compile, the default) or eager (``--enforce-eager``).
Default runs: both embedded-classroom models compiled, plus smollm2-135m eager for comparison.

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


async def sample(base_url: str, model: str) -> str:
    """The greedy answer to a fixed question (to compare modes for correctness)."""
    async with AsyncOpenAI(base_url=base_url, api_key="EMPTY", timeout=600, max_retries=0) as client:
        resp = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=16, temperature=0
        )
    return resp.choices[0].message.content or ""


def bench_model(model: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    server = VllmServer(
        model, kv_cache_gib=args.kv_cache_gib, extra_args=args.extra_arg, torch_compile=(mode == "compiled")
    )
    server.prepare()  # pull outside the timed start-up
    t0 = time.perf_counter()
    endpoint = server.start()
    startup = time.perf_counter() - t0
    print(f"{model} [{mode}]: ready in {startup:.1f}s at {endpoint.base_url} (log {endpoint.log_path})", flush=True)
    try:
        answer = asyncio.run(sample(endpoint.base_url, model))
        print(f"  sample: {answer!r}", flush=True)
        rows = []
        for c in args.concurrency:
            try:
                row = asyncio.run(throughput(endpoint.base_url, model, c, args.max_tokens, 2 if c == 1 else 1))
            except Exception as exc:  # noqa: BLE001 - a failed level is recorded, the others still run
                row = {"concurrency": c, "tokens_per_s": None, "error": f"{type(exc).__name__}: {exc}"[:300]}
                print(f"  c={c:>3}: failed: {row['error']}", flush=True)
                rows.append(row)
                break
            print(f"  c={c:>3}: {row['tokens_per_s']:>7.1f} tok/s ({row['completion_tokens']} tokens in {row['wall_s']}s)", flush=True)
            rows.append(row)
    finally:
        server.stop()
    return {
        "model": model, "mode": mode, "startup_s": round(startup, 1), "cmdline": server.cmdline[2:],
        "sample_answer": answer, "throughput": rows, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }  # fmt: skip


def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    conc = meta["concurrency"]
    lines = [
        f"# Serving benchmark ({meta['when']})",
        "",
        f"{meta['machine']}; vLLM args: {' '.join(meta['extra_args']) or '(defaults)'}; "
        f"{meta['max_tokens']} max tokens, temperature 0, completion tokens from `usage`; "
        f"load average at start {meta['loadavg_start']}.",
        "",
        "| model | mode | start-up (s) | " + " | ".join(f"tok/s @ {c}" for c in conc) + " | load avg after | greedy sample |",
        "|---|---|---:|" + "---:|" * len(conc) + "---|---|",
    ]
    for r in results:
        by_c = {t["concurrency"]: t for t in r["throughput"]}
        tps = " | ".join(
            "failed" if c in by_c and by_c[c].get("error") else str(by_c[c]["tokens_per_s"]) if c in by_c else "-"
            for c in conc
        )
        sample_text = r["sample_answer"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {r['model']} | {r['mode']} | {r['startup_s']} | {tps} | {r['loadavg_after'][0]} | {sample_text!r} |")
    lines += [
        "",
        "The machine's 2 cores are shared with other jobs: compare rows by their load average, not only by speed.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", help="MODEL:MODE, MODE eager or compiled (repeatable)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--kv-cache-gib", type=float, default=2.0)
    ap.add_argument("--extra-arg", action="append", default=[], help="extra vLLM argument (repeatable)")
    ap.add_argument("--suffix", default="", help="results file suffix (bench_serve-SUFFIX.json)")
    args = ap.parse_args()
    runs = [r.split(":", 1) for r in (args.run or [f"{m}:compiled" for m in EMBEDDED_CLASSROOM] + ["smollm2-135m:eager"])]
    for model, mode in runs:
        if mode not in ("eager", "compiled"):
            raise SystemExit(f"error: mode must be eager or compiled, got {mode!r} for {model}")
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "max_tokens": args.max_tokens,
        "concurrency": args.concurrency,
        "extra_args": args.extra_arg,
    }
    name = "bench_serve" + (f"-{args.suffix}" if args.suffix else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for model, mode in runs:  # results are written after every run, so a cut-short benchmark keeps what it measured
        results.append(bench_model(model, mode, args))
        meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        (RESULTS / f"{name}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        table = markdown(results, meta)
        (RESULTS / f"{name}.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
