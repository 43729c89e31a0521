"""Throughput of the stub server (``lbt stub serve``) on one core: requests/s it answers (not a test).

The server runs pinned to one core (``taskset -c 0``); the load generator runs pinned to another: a
hand-written asyncio client holding many keep-alive connections, each sending its next request as soon
as the last answer is complete.  Its own CPU is reported, so a saturated client would show.  With
``wrk`` installed (Debian: ``apt-get install wrk``) the same requests are also sent by ``wrk`` as a
cross-check, and a bare ``openai.AsyncOpenAI`` client on one core shows how far a real client is from
the stub's limit.  Target: >= 2,000 requests/s.  Writes ``experiments/results/bench_stub.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
TARGET = 2000.0

SYSTEM = "You are a student. Solve the exam problem step by step, then give the final answer after 'The answer is'."
EXAM = (
    "Here is how a teacher solved a similar problem: Natalia sold clips to 48 of her friends in April, and then she "
    "sold half as many clips in May. How many clips did Natalia sell altogether? She sold 48 / 2 = 24 in May, so "
    "48 + 24 = 72. The answer is 72. Now solve: Weng earns $12 an hour for babysitting. Yesterday, she just did 50 "
    "minutes of babysitting. How much did she earn?"
)

SCENARIOS = {
    "chat": {},
    "chat, stream + usage": {"stream": True, "stream_options": {"include_usage": True}},
    "chat, n=4": {"n": 4},
}


def request_body(extra: dict[str, Any]) -> dict[str, Any]:
    """An exam-shaped chat request (the stub echoes the ~70-word exam back)."""
    return {
        "model": "student", "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": EXAM}],
        "max_tokens": 256, "temperature": 0.8, "seed": 1, **extra,
    }  # fmt: skip


def http_request(port: int, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (port, len(data), data)
    )


class _Load(asyncio.Protocol):
    """One keep-alive connection: send, read one whole response (Content-Length framing), send again."""

    def __init__(self, request: bytes, stats: dict[str, Any]) -> None:
        self.request, self.stats = request, stats
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buf[:end]).lower()
            length = int(re.search(rb"content-length: *(\d+)", head).group(1))
            total = end + 4 + length
            if len(self.buf) < total:
                return
            del self.buf[:total]
            self.stats["ok" if head.startswith(b"http/1.1 200") else "errors"] += 1
            if self.stats["running"]:
                self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats["lost"] += 1


async def raw_load(port: int, body: dict[str, Any], server: psutil.Process, args: argparse.Namespace) -> dict[str, float]:
    """Requests/s over ``args.duration`` seconds after a warm-up, with server and client CPU use."""
    stats: dict[str, Any] = {"ok": 0, "errors": 0, "lost": 0, "running": True}
    loop = asyncio.get_running_loop()
    request = http_request(port, body)
    conns = [await loop.create_connection(lambda: _Load(request, stats), "127.0.0.1", port) for _ in range(args.connections)]
    await asyncio.sleep(args.warmup)
    ok0, cpu0, mine0, t0 = stats["ok"], sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
    await asyncio.sleep(args.duration)
    ok1, cpu1, mine1, t1 = stats["ok"], sum(server.cpu_times()[:2]), time.process_time(), time.perf_counter()
    stats["running"] = False
    await asyncio.sleep(0.2)
    for transport, _ in conns:
        transport.close()
    if stats["errors"]:
        raise SystemExit(f"the stub answered {stats['errors']} request(s) with an error")
    wall = t1 - t0
    return {
        "rps": (ok1 - ok0) / wall, "server_cpu": (cpu1 - cpu0) / wall, "client_cpu": (mine1 - mine0) / wall,
        "rps_per_cpu_s": (ok1 - ok0) / max(cpu1 - cpu0, 1e-9),
    }  # fmt: skip


def wrk_load(url: str, body: dict[str, Any], args: argparse.Namespace) -> tuple[float, str] | None:
    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {json.dumps(json.dumps(body))}\n')
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration:g}s", "-s", f.name, url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise SystemExit(f"wrk saw {non_2xx.group(1)} error responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), shlex.join(cmd[:-3] + ["POST.lua", url])


async def openai_load(base_url: str, body: dict[str, Any], args: argparse.Namespace) -> float:
    """Requests/s a bare ``AsyncOpenAI`` client on one core drives at the same concurrency."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    done, running = [0], [True]

    async def worker() -> None:
        while running[0]:
            await client.chat.completions.create(**body)
            done[0] += 1

    tasks = [asyncio.create_task(worker()) for _ in range(args.connections)]
    await asyncio.sleep(args.warmup)
    n0, t0 = done[0], time.perf_counter()
    await asyncio.sleep(args.duration)
    rps = (done[0] - n0) / (time.perf_counter() - t0)
    running[0] = False
    await asyncio.gather(*tasks)
    await client.close()
    return rps


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str, list[str]]:
    cmd = ["taskset", "-c", str(args.server_cpu), sys.executable, "-m", "lbt_agents", "stub", "serve", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit(f"the stub did not start: {url!r}")
    return proc, url, cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0, help="Seconds measured per repeat.")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64, help="Keep-alive connections (requests in flight).")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--no-wrk", action="store_true")
    ap.add_argument("--no-openai", action="store_true")
    args = ap.parse_args()
    command = shlex.join(["python", "experiments/bench_stub.py", *sys.argv[1:]])
    os.sched_setaffinity(0, {args.client_cpu})
    load_before = os.getloadavg()[0]
    proc, url, server_cmd = start_server(args)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    server = psutil.Process(proc.pid)
    rows, wrk_rows = [], []
    try:
        for name, extra in SCENARIOS.items():
            body = request_body(extra)
            runs = [asyncio.run(raw_load(port, body, server, args)) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((name, [r["rps"] for r in runs], med))
            print(f"{name}: {med['rps']:,.0f} requests/s (server CPU {med['server_cpu']:.2f}, client CPU {med['client_cpu']:.2f})", flush=True)
        if not args.no_wrk:
            for name in ("chat", "chat, stream + usage"):
                result = wrk_load(url + "/chat/completions", request_body(SCENARIOS[name]), args)
                if result is not None:
                    wrk_rows.append((name, *result))
                    print(f"wrk, {name}: {result[0]:,.0f} requests/s", flush=True)
        sdk = None if args.no_openai else asyncio.run(openai_load(url, request_body({}), args))
        if sdk is not None:
            print(f"bare AsyncOpenAI client (one core), chat: {sdk:,.0f} requests/s", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)
    args.load = (load_before, os.getloadavg()[0])
    table = report(command, server_cmd, args, rows, wrk_rows, sdk)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_stub.md").write_text(table)
    print(table)


def report(command: str, server_cmd: list[str], args: argparse.Namespace, rows: list, wrk_rows: list, sdk: float | None) -> str:
    server = shlex.join(["taskset", "-c", str(args.server_cpu), "python", *server_cmd[4:]])
    lines = [
        f"# Stub server throughput (one core, {args.connections} keep-alive connections, {os.cpu_count()} CPUs)",
        "",
        f"Command: `{command}`  ",
        f"Server: `{server}`; client: hand-written asyncio load generator pinned to CPU {args.client_cpu}.  ",
        f"Request: an exam-shaped chat request (system + ~70-word user message, echoed back); {args.repeats} repeats of {args.duration:g} s after {args.warmup:g} s warm-up.  ",
        (
            f"Load average (1 min) before / after: {args.load[0]:.2f} / {args.load[1]:.2f} (a shared machine). "
            "Server and client CPU: the share of a core each process used (user + sys) while measured."
        ),
        "",
        "| request | requests/s (median) | repeats | server CPU | client CPU | requests per server CPU-second |",
        "|---|---|---|---|---|---|",
    ]
    for name, rps, med in rows:
        lines.append(
            f"| {name} | **{med['rps']:,.0f}** | {', '.join(f'{r:,.0f}' for r in rps)} | {med['server_cpu']:.2f} "
            f"| {med['client_cpu']:.2f} | {med['rps_per_cpu_s']:,.0f} |"
        )
    lines += ["", f"Target: >= {TARGET:,.0f} requests/s on one core: **{'met' if min(m['rps'] for *_, m in rows) >= TARGET else 'missed'}** (slowest row)."]
    if wrk_rows:
        lines += ["", "Cross-check with wrk (same server, same request; POST.lua sets the method, a JSON header and the body):", ""]
        lines += [f"- {name}: {rps:,.0f} requests/s (`{cmd}`)" for name, rps, cmd in wrk_rows]
    if sdk is not None:
        lines += [
            "",
            (
                f"A bare `openai.AsyncOpenAI` client on one core, same concurrency, drives {sdk:,.0f} requests/s "
                f"against it: the stub has {rows[0][2]['rps'] / sdk:.1f}x headroom over a real client."
            ),
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
