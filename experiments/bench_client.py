"""Client throughput against the stub server at equal concurrency (not a test).

Sends the same number of exam-shaped chat requests, ``--concurrency`` in flight, through
(a) a bare ``openai.AsyncOpenAI`` client, (b) ``langchain_openai.ChatOpenAI.ainvoke``,
(c) :class:`lbt_agents.llm.ChatAgent` (a student's exam call, shared prefix included) and
(d) the M1 graph with a :class:`Classroom` (teach -> exams -> select, grading included) and prints
requests/s and the ratio to (a).  (d)'s requests are those it made (with ``n``, one teacher request per
TP; the other paths send as many requests as (d) has exams and teacher samples).  The stub runs in its own process pinned to one CPU, the client in
this one.  ``--profile PATH`` writes a cProfile of (d) and prints its top functions.
Writes ``experiments/results/bench_client.{md,json}`` (``--out`` for another name).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"

from lbt_agents.stub import StubServer

MODEL = "student"
SYSTEM = "You are a student. Solve the exam problem step by step, then give the final answer after [[Final Answer]]:."
TP = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many altogether?"
TEACHING = "She sold 48 / 2 = 24 in May, so 48 + 24 = 72 in all. [[Final Answer]]: 72"
EP = "Weng earns $12 an hour for babysitting. Yesterday, she did 50 minutes of babysitting. How much did she earn?"
REPLY = "12 / 60 = 0.2 per minute; 0.2 * 50 = 10. [[Final Answer]]: 10"
MESSAGES = [
    {"role": "system", "content": SYSTEM}, {"role": "user", "content": TP},
    {"role": "assistant", "content": TEACHING}, {"role": "user", "content": EP},
]  # fmt: skip


CPU_MS: dict[str, float] = {}
"""Client CPU milliseconds per request of the last run of each path (less sensitive to a busy machine)."""


async def _drive(n: int, concurrency: int, call: Callable[[int], Awaitable[Any]], path: str) -> float:
    """``n`` calls, ``concurrency`` in flight; requests/s."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await call(i)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    CPU_MS[path] = (time.process_time() - cpu) * 1000 / n
    return n / (time.perf_counter() - started)


async def bare_openai(url: str, n: int, c: int) -> tuple[float, int]:
    import httpx
    import openai

    http = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None, max_keepalive_connections=256))
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, http_client=http)

    async def call(i: int) -> None:
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0.0, max_tokens=256, seed=i)

    rps = await _drive(n, c, call, "a")
    await client.close()
    return rps, n


async def chat_openai(url: str, n: int, c: int) -> tuple[float, int]:
    import httpx
    from langchain_openai import ChatOpenAI

    from lbt_agents.llm import to_langchain

    http = httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None, max_keepalive_connections=256))
    chat = ChatOpenAI(model=MODEL, base_url=url, api_key="x", max_retries=0, http_async_client=http)
    messages = to_langchain(MESSAGES)

    async def call(i: int) -> None:
        await chat.ainvoke(messages, temperature=0.0, max_tokens=256, seed=i)

    rps = await _drive(n, c, call, "b")
    await http.aclose()
    return rps, n


def _agent_config(name: str, url: str, **sampling: Any) -> Any:
    from lbt_agents.config import AgentConfig, Sampling

    return AgentConfig(name=name, model=MODEL, base_url=url, sampling=Sampling(**sampling))


async def chat_agent(url: str, n: int, c: int) -> tuple[float, int]:
    from lbt_agents.llm import CallLimits, ChatAgent

    agent = ChatAgent(_agent_config("s0", url, temperature=0.0), limits=CallLimits(c))

    async def call(i: int) -> None:  # a student's exam: the first of each 9 exams of a pair streams (prefix turn)
        messages = [*MESSAGES[:2], {"role": "assistant", "content": f"{TEACHING} ({i // 9})"}, MESSAGES[3]]
        await agent.sample(messages, n=1, key=f"exam:{i}", shared_prefix=3)

    rps = await _drive(n, c, call, "c")
    await agent.aclose()
    return rps, n


def _items(tps: int) -> list[dict[str, Any]]:
    def problem(pid: str, question: str) -> dict[str, Any]:
        return {"id": pid, "question": question, "answer": "10", "kind": "math"}

    return [{"tp": problem(f"tp{t}", f"{TP} ({t})"), "eps": [problem(f"tp{t}/ep{e}", f"{EP} ({e})") for e in range(3)]}
            for t in range(tps)]


async def m1_graph(url: str, tps: int, pairs: int, c: int, profile: str | None = None) -> tuple[float, int]:
    from lbt_agents import Classroom, m1_graph
    from lbt_agents.config import ClassroomConfig, M1Config

    cfg = ClassroomConfig(
        teacher=_agent_config("teacher", url, temperature=0.8, n=pairs, seed=0),
        students=[_agent_config("s0", url, temperature=0.0)],
    )
    room = Classroom.from_config(cfg, max_concurrency=c)
    graph = m1_graph(M1Config(pairs_per_tp=pairs, reps_per_ep=3))
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    out = await graph.ainvoke({"items": _items(tps)}, {"max_concurrency": c, "recursion_limit": 10_000}, context=room)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    await room.aclose()
    requests = sum(u["requests"] for u in room.meter.as_dict().values())  # the teacher's n samples: one request
    exams = sum(len(p["exams"]) for r in out["results"].values() for p in r["pairs"])
    assert exams == tps * pairs * 9, exams
    CPU_MS["d"] = cpu * 1000 / requests
    return requests / wall, requests


def _top(profile: str, limit: int = 25) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(limit)
    return out.getvalue()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    n = args.tps * (args.pairs + 1) + args.tps * args.pairs * 9
    rows: dict[str, list[float]] = {}
    cpu_ms: dict[str, list[float]] = {}
    with StubServer(text=REPLY, process=True, cpus=[args.server_cpu]) as stub:
        url = stub.base_url
        paths: dict[str, Callable[[], Awaitable[tuple[float, int]]]] = {
            "(a) bare AsyncOpenAI": lambda: bare_openai(url, n, args.concurrency),
            "(b) ChatOpenAI.ainvoke": lambda: chat_openai(url, n, args.concurrency),
            "(c) ChatAgent (exam calls)": lambda: chat_agent(url, n, args.concurrency),
            "(d) M1 graph + Classroom": lambda: m1_graph(url, args.tps, args.pairs, args.concurrency),
        }
        for _ in range(args.repeats):
            for name, run in paths.items():
                if args.only and not any(o in name for o in args.only):
                    continue
                rps, _count = await run()
                rows.setdefault(name, []).append(rps)
                cpu_ms.setdefault(name, []).append(CPU_MS[name[1]])
                print(f"{name}: {rps:,.0f} req/s, {CPU_MS[name[1]]:.2f} ms client CPU per request", flush=True)
        if args.profile:
            await m1_graph(url, args.tps, args.pairs, args.concurrency, profile=args.profile)
            print(_top(args.profile))
    bare = statistics.median(rows["(a) bare AsyncOpenAI"]) if "(a) bare AsyncOpenAI" in rows else None
    bare_cpu = statistics.median(cpu_ms["(a) bare AsyncOpenAI"]) if bare else None
    return {
        "requests": n, "concurrency": args.concurrency, "repeats": args.repeats, "tps": args.tps, "pairs": args.pairs,
        "load_avg": os.getloadavg()[0],
        "rows": {name: {"median_rps": statistics.median(v), "runs": v,
                        "ratio": statistics.median(v) / bare if bare else None,
                        "cpu_ms_per_request": statistics.median(cpu_ms[name]),
                        "cpu_ratio": bare_cpu / statistics.median(cpu_ms[name]) if bare_cpu else None}
                 for name, v in rows.items()},
    }  # fmt: skip


def report(result: dict[str, Any], command: str, label: str) -> str:
    lines = [
        f"## {label}", "", f"Command: `{command}`  ",
        (f"{result['requests']:,} requests per path, {result['concurrency']} in flight, median of {result['repeats']}; "
        f"stub in its own process on one CPU; load average (1 min) at the end: {result['load_avg']:.2f} (2 shared CPUs)."),
        "", "| path | requests/s (median) | runs | ratio to (a) | client CPU ms per request | (a)'s CPU ÷ this |",
        "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in result["rows"].items():
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        runs = ", ".join(f"{r:,.0f}" for r in row["runs"])
        cpu = f"{row['cpu_ms_per_request']:.2f}" if row.get("cpu_ms_per_request") else "-"
        cpu_ratio = f"{row['cpu_ratio']:.2f}x" if row.get("cpu_ratio") else "-"
        lines.append(f"| {name} | **{row['median_rps']:,.0f}** | {runs} | {ratio} | {cpu} | {cpu_ratio} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tps", type=int, default=8, help="M1 graph: teaching problems (requests per path follow from it)")
    ap.add_argument("--pairs", type=int, default=32, help="M1 graph: TR-TA pairs per TP (3 EPs x 3 reps x 1 student)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="run only the paths whose name contains one of these")
    ap.add_argument("--profile", help="write a cProfile of the M1 graph path here and print its top functions")
    ap.add_argument("--label", default="after", help="the heading of this run in the report")
    ap.add_argument("--out", default="bench_client", help="the report's name under experiments/results")
    args = ap.parse_args()
    result = asyncio.run(main(args))
    command = "python experiments/bench_client.py " + " ".join(sys.argv[1:])
    md = report(result, command.strip(), args.label)
    print(md)
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / f"{args.out}.json"
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    previous[args.label] = {**result, "command": command.strip()}
    json_path.write_text(json.dumps(previous, indent=2))
    md_path = RESULTS / f"{args.out}.md"
    sections = {label: report(r, r["command"], label) for label, r in previous.items()}
    md_path.write_text("# Client throughput against the stub (64 in flight, 2 shared CPUs)\n\n" + "\n".join(sections.values()))
