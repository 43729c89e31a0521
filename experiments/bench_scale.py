"""Paper-scale M1 against the stub server: throughput vs a bare client, memory, checkpoints, kill -9 + resume.

Not a test.  The workload is the paper's Table 2 shape (181 TPs x 256 TR-TA pairs x 3 EPs x 3 repetitions,
one student: 417,024 exams); ``--tps/--pairs/--eps/--reps`` scale it down.  The stub (``lbt stub serve
--script``) runs in its own process; every M1 run runs in a child process (``_child``), so its peak RSS is
its own and it can be killed.  In one invocation:

1. ``main``: M1 at the given shape (TP jobs, local executor); the stub records every request body;
2. ``bare``: the same request bodies replayed by a bare ``openai.AsyncOpenAI`` client at the same
   concurrency (its own process) -> the throughput ratio;
3. ``series``: peak RSS of M1 at ``--series`` TP counts (``--series-pairs`` pairs per TP): flat in TPs?
4. ``kill``: the main shape again, SIGKILLed once half its requests are in, then ``--resume``d: the
   finished exams (records in the shards and checkpoint threads at the kill) asked again must be 0.
   What the checkpoint holds at the kill (live TP threads) gives the checkpoint bytes per exam.

Every stub reply starts with ``[key]`` (a hash of its request and choice), so a saved exam names its
request.  Writes ``experiments/results/<--name>.{json,md}``.

    PYTHONPATH=. .venv/bin/python experiments/bench_scale.py --tps 6 --pairs 64   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "experiments" / "results"

RESPONDER = '''
import hashlib, json, random

# Rationales of ~880 characters drawn at random from 2,000 made-up words (and numbers), so 256 of them
# deflate to about 0.41 of their size, a little worse than real solutions do (MATH-500's: 0.33,
# GSM8K's: 0.36): the checkpoint's compression is not flattered by repeated text.
_rng = random.Random(0)
WORDS = sorted({"".join(_rng.choice([c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"])
                        for _ in range(_rng.randint(1, 3))) for _ in range(3000)})

def rationale(key):
    rng, words, size = random.Random(key), [], 0
    while size < 880:
        word = rng.choice(WORDS) if rng.random() > 0.1 else str(rng.randint(0, 999))
        words.append(word)
        size += len(word) + 1
    return " ".join(words)

def respond(body, choice_index):
    key = hashlib.sha1(json.dumps([body.get("model"), body.get("messages"), body.get("seed"), choice_index],
                                  sort_keys=True).encode()).hexdigest()[:16]
    if body.get("model") == "teacher":
        return f"[{key}] {rationale(key)} [[Final Answer]]: 42"
    return f"[{key}] Following the example, the answer follows. [[Final Answer]]: 42"
'''


def items(tps: int, eps: int) -> list[dict[str, Any]]:
    """Synthetic math TPs with ``eps`` exam problems each (MATH-sized questions)."""
    def problem(pid: str, a: int, b: int) -> dict[str, Any]:
        question = (f"A train leaves a station at {a} km/h and a second train leaves {b} hours later on the same "
                    f"track at {a + b} km/h. After how many hours does the second train catch up with the first? "
                    f"Give the answer as a number.")
        return {"id": pid, "question": question, "answer": "42", "kind": "math"}
    return [{"tp": problem(f"tp{t}", 10 + t, 1 + t % 5),
             "eps": [problem(f"tp{t}/ep{e}", 20 + t + e, 2 + e) for e in range(eps)]} for t in range(tps)]


def run_config(args: argparse.Namespace, base_url: str, out: Path, run_id: str, tps: int, pairs: int) -> Any:
    from lbt_agents.config import RunConfig

    agent = {"base_url": base_url, "max_retries": 0}
    return RunConfig.model_validate({
        "run_id": run_id, "output_dir": str(out), "task": {"name": "gsm8k", "limit": tps},
        "classroom": {
            "teacher": {**agent, "name": "teacher", "role": "teacher", "model": "teacher",
                        "sampling": {"temperature": 0.8, "n": pairs, "seed": 0, "max_tokens": 512}},
            "students": [{**agent, "name": "student", "model": "student", "sampling": {"temperature": 0.0}}],
        },
        "m1": {"pairs_per_tp": pairs, "reps_per_ep": args.reps,
               **({"exams_per_step": args.exams_per_step or None} if args.exams_per_step >= 0 else {})},
        "cache": {"enabled": False},
        "max_concurrency": args.concurrency, "executor": {"max_tps_in_flight": args.max_tps},
    })  # fmt: skip


# ---- children ---------------------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    """One M1 run (or resume) in this process; its summary and peak RSS to ``<out>/<run_id>.child.json``."""
    import resource

    import lbt_agents.tasks
    from lbt_agents.m1 import run_m1

    data = items(args.tps, args.eps)
    lbt_agents.tasks.load_task = lambda cfg: data  # the runner loads the task through this module
    cfg = run_config(args, args.base_url, Path(args.out), args.run_id, args.tps, args.pairs)
    result = run_m1(cfg, resume=args.run_id if args.resume else None, progress=False)
    db = Path(args.out) / args.run_id / "checkpoints.sqlite"
    report = {"summary": result.summary, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "checkpoint_file_bytes": file_bytes(db.parent)}
    (Path(args.out) / f"{args.run_id}.child.json").write_text(json.dumps(report))


def bare(args: argparse.Namespace) -> None:
    """Replay request bodies (JSON lines) with a bare AsyncOpenAI client at ``--concurrency``."""
    import resource

    import openai

    bodies = iter(read_bodies(Path(args.bodies), args.first, args.count))
    failed: Counter[str] = Counter()
    sent = 0

    async def go() -> float:
        nonlocal sent
        # a bounded timeout and retries: a request lost under a loaded CPU is counted, not a 600 s stall
        client = openai.AsyncOpenAI(base_url=args.base_url, api_key="x", max_retries=2, timeout=120.0)

        async def worker() -> None:  # --concurrency workers, each one request at a time: bodies read as sent
            nonlocal sent
            for body in bodies:
                sent += 1
                try:
                    if body.get("stream"):  # M1 streams each pair's first exam (the others go at its first token)
                        async for _ in await client.chat.completions.create(**body):
                            pass  # read to the end, as M1 does: an unread stream holds its connection
                    else:
                        await client.chat.completions.create(**body)
                except openai.APIError as exc:
                    failed[type(exc).__name__] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - start
        await client.close()
        return wall

    wall = asyncio.run(go())
    # a failed request did not do the work: only the answered ones count as throughput
    report = {"requests": sent, "failed": dict(failed), "wall_s": wall,
              "requests_per_s": (sent - sum(failed.values())) / wall,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    Path(args.report).write_text(json.dumps(report))


def read_bodies(path: Path, first: int, count: int) -> Any:
    """Request bodies ``first .. first+count-1`` of the stub's JSON-lines record, one at a time."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines):
            if number >= first + count:
                return
            if number >= first:
                yield json.loads(line)


# ---- the parent --------------------------------------------------------------------------------------------


class Stub:
    """``lbt stub serve --script`` in its own process, recording request bodies to ``work/bodies.jsonl``."""

    def __init__(self, work: Path) -> None:
        script = work / "responder.py"
        script.write_text(RESPONDER)
        self.record = work / "bodies.jsonl"
        self.proc = subprocess.Popen([sys.executable, "-m", "lbt_agents", "stub", "serve", "--port", "0", "--script",
                                      str(script), "--record-to", str(self.record), "--model", "teacher",
                                      "--model", "student"], stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        self.base_url = line.split()[-1] if line else ""
        if not self.base_url.startswith("http"):
            raise SystemExit(f"the stub did not start: {line!r}")
        self.root = self.base_url.removesuffix("/v1")

    def requests(self) -> int:
        return int(httpx.get(f"{self.root}/stub/stats", timeout=30).json()["requests"])

    def bodies(self, first: int, count: int) -> Any:
        """Bodies ``first .. first+count-1`` (0 = the first request the stub saw), one at a time."""
        self.requests()  # flushes the record
        return read_bodies(self.record, first, count)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def key_of(body: dict[str, Any], choice: int = 0) -> str:
    import hashlib

    return hashlib.sha1(json.dumps([body.get("model"), body.get("messages"), body.get("seed"), choice],
                                   sort_keys=True).encode()).hexdigest()[:16]


def file_bytes(run_dir: Path) -> int:
    """The checkpoint file's size with its WAL (SQLite deletes the WAL as the child closes it)."""
    total = 0
    for path in run_dir.glob("checkpoints.sqlite*"):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def start_child(args: argparse.Namespace, base_url: str, out: Path, run_id: str, tps: int, pairs: int,
                resume: bool = False) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "_child", "--base-url", base_url, "--out", str(out), "--run-id", run_id,
           "--tps", str(tps), "--pairs", str(pairs), "--eps", str(args.eps), "--reps", str(args.reps),
           "--concurrency", str(args.concurrency), "--max-tps", str(args.max_tps),
           "--exams-per-step", str(args.exams_per_step), *(["--resume"] if resume else [])]
    # stderr to a file: a pipe nobody reads while the parent polls would block a chatty child
    with (out / f"{run_id}.stderr").open("a") as err:
        return subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=err, text=True)


def finish_child(proc: subprocess.Popen[str], out: Path, run_id: str) -> dict[str, Any]:
    proc.wait()
    if proc.returncode != 0:
        err = (out / f"{run_id}.stderr").read_text()
        raise SystemExit(f"M1 child {run_id} failed:\n{err[-3000:]}")
    return json.loads((out / f"{run_id}.child.json").read_text())


def saved_exam_keys(run_dir: Path, tp_ids: list[str]) -> tuple[Counter[str], dict[str, Any]]:
    """The request keys of the exams a run has saved (shards + checkpoint threads), and what the live
    threads take in the checkpoint (bytes by part, exams they hold)."""
    import re

    from datasets import load_from_disk

    from lbt_agents.tpjobs import ShardStore, thread_id

    keys: Counter[str] = Counter()
    store = ShardStore(run_dir)
    for tp_id in tp_ids:
        path = store.shard(tp_id) / "exams"
        if path.is_dir():
            keys.update(re.match(r"\[(\w+)\]", t).group(1) for t in load_from_disk(str(path))["text"])  # type: ignore[union-attr]
    live: dict[str, Any] = {"checkpoint_blobs": 0, "writes": {}, "exams": 0, "threads": 0}
    db = run_dir / "checkpoints.sqlite"
    if not db.exists():
        return keys, live
    from langgraph.checkpoint.sqlite import SqliteSaver

    from lbt_agents._serde import compressed_serde

    conn = sqlite3.connect(str(db), timeout=60)
    saver = SqliteSaver(conn, serde=compressed_serde())
    saver.is_setup = True
    live["checkpoint_blobs"] = conn.execute("SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) "
                                            "FROM checkpoints").fetchone()[0]
    for channel, size in conn.execute("SELECT channel, SUM(LENGTH(value)) FROM writes GROUP BY channel"):
        live["writes"][channel] = size
    for tp_id in tp_ids:
        if store.finished(tp_id):
            continue
        found = saver.get_tuple({"configurable": {"thread_id": thread_id(run_dir.name, tp_id), "checkpoint_ns": ""}})
        if found is None:
            continue
        live["threads"] += 1
        exams = dict(found.checkpoint["channel_values"].get("exams") or {})
        for _task, name, value in found.pending_writes or []:
            if name == "exams" and isinstance(value, dict):
                exams.update(value)
        live["exams"] += len(exams)
        keys.update(re.match(r"\[(\w+)\]", e["text"]).group(1) for e in exams.values())  # type: ignore[union-attr]
    conn.close()
    return keys, live


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tps", type=int, default=181)
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--eps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64, help="requests in flight (M1 and the bare client)")
    ap.add_argument("--max-tps", type=int, default=4, help="executor.max_tps_in_flight")
    ap.add_argument("--series", default="20,60,181", help="TP counts for the RSS series ('' to skip)")
    ap.add_argument("--series-pairs", type=int, default=8, help="pairs per TP in the RSS series")
    ap.add_argument("--no-bare", action="store_true")
    ap.add_argument("--no-kill", action="store_true")
    ap.add_argument("--kill-tps", type=int, default=0, help="TPs of the kill -9 + resume run (default: --tps)")
    ap.add_argument("--exams-per-step", type=int, default=-1,
                    help="m1.exams_per_step (0: all in one step; default: the config's default)")
    ap.add_argument("--name", default="bench_scale")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (runs, request bodies) for a look")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lbt-bench-scale-"))
    stub = Stub(work)
    exams = args.tps * args.pairs * args.eps * args.reps
    report: dict[str, Any] = {"shape": {"tps": args.tps, "pairs": args.pairs, "eps": args.eps, "reps": args.reps,
                                        "students": 1, "exams": exams}, "concurrency": args.concurrency,
                              "max_tps_in_flight": args.max_tps, "cpus": os.cpu_count(),
                              "load_avg_at_start": os.getloadavg()}
    try:
        print(f"main: {args.tps} TPs x {args.pairs} pairs x {args.eps} EPs x {args.reps} reps = {exams} exams",
              flush=True)
        before = stub.requests()
        proc = start_child(args, stub.base_url, work, "main", args.tps, args.pairs)
        peak_file = 0
        while proc.poll() is None:  # the checkpoint file's high-water mark while TPs are in flight
            peak_file = max(peak_file, file_bytes(work / "main"))
            time.sleep(0.5)
        main_run = finish_child(proc, work, "main")
        requests = stub.requests() - before
        s = main_run["summary"]
        live_exams = min(args.tps, args.max_tps) * args.pairs * args.eps * args.reps
        report["main"] = {"exams": s["exams"], "requests": requests, "wall_s": s["wall_s"],
                          "exams_per_s": s["exams"] / s["wall_s"], "requests_per_s": requests / s["wall_s"],
                          "peak_rss_mb": main_run["peak_rss_mb"],
                          "checkpoint_file_bytes": main_run["checkpoint_file_bytes"],
                          "checkpoint_file_bytes_per_exam": main_run["checkpoint_file_bytes"] / max(1, s["exams"]),
                          "checkpoint_file_peak_bytes": peak_file,
                          "checkpoint_file_peak_bytes_per_live_exam": peak_file / live_exams}
        print(json.dumps(report["main"]), flush=True)
        reference = Counter(key_of(b, i) for b in stub.bodies(before, requests) for i in range(int(b.get("n") or 1))
                            if b.get("model") == "student")
        if not args.no_bare:
            cmd = [sys.executable, __file__, "_bare", "--base-url", stub.base_url, "--bodies", str(stub.record),
                   "--first", str(before), "--count", str(requests), "--concurrency", str(args.concurrency),
                   "--report", str(work / "bare.json")]
            subprocess.run(cmd, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            report["bare"] = json.loads((work / "bare.json").read_text())
            report["ratio"] = report["main"]["requests_per_s"] / report["bare"]["requests_per_s"]
            print(json.dumps({"bare": report["bare"], "ratio": report["ratio"]}), flush=True)
        report["series"] = []
        for n in [int(x) for x in args.series.split(",") if x]:
            run_id = f"series{n}"
            got = finish_child(start_child(args, stub.base_url, work, run_id, n, args.series_pairs), work, run_id)
            row = {"tps": n, "pairs": args.series_pairs, "exams": got["summary"]["exams"],
                   "wall_s": got["summary"]["wall_s"], "peak_rss_mb": got["peak_rss_mb"]}
            report["series"].append(row)
            print(json.dumps(row), flush=True)
        if not args.no_kill:
            kill_tps = min(args.kill_tps or args.tps, args.tps)
            report["kill"] = kill_and_resume(args, stub, work, kill_tps, reference, requests * kill_tps // args.tps)
            print(json.dumps(report["kill"]), flush=True)
    finally:
        stub.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)  # the bodies and the runs: GBs at the paper's shape
    report["command"] = "PYTHONPATH=. .venv/bin/python experiments/bench_scale.py " + " ".join(sys.argv[1:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{args.name}.md").write_text(markdown(report))
    print(f"wrote {RESULTS / args.name}.json and .md", flush=True)


def markdown(r: dict[str, Any]) -> str:
    """The report as Markdown (``experiments/results/<--name>.md``)."""
    shape, m = r["shape"], r["main"]
    lines = [f"# bench_scale: {shape['tps']} TPs x {shape['pairs']} pairs x {shape['eps']} EPs x {shape['reps']} reps "
             f"= {shape['exams']} exams (1 student), stub server", "", f"`{r.get('command', '')}`", "",
             f"{r['cpus']} CPUs (shared; load average at start {r['load_avg_at_start'][0]:.1f}); "
             f"concurrency {r['concurrency']}; executor.max_tps_in_flight {r['max_tps_in_flight']}; cache off", "",
             "| measure | value |", "|---|---|",
             f"| M1 exams/s | {m['exams_per_s']:.1f} ({m['exams']} exams, {m['requests']} requests, {m['wall_s']} s) |",
             f"| M1 requests/s | {m['requests_per_s']:.1f} |"]
    if "bare" in r:
        failed = r["bare"].get("failed") or {}
        lines += [f"| bare AsyncOpenAI requests/s (same requests, same concurrency) | {r['bare']['requests_per_s']:.1f}"
                  + (f" ({sum(failed.values())} failed: {failed})" if failed else "") + " |",
                  f"| ratio M1 / bare | **{r['ratio']:.2f}** |"]
    lines += [f"| M1 peak RSS | {m['peak_rss_mb']:.0f} MB |",
              f"| checkpoint file at the end / exams | {m['checkpoint_file_bytes_per_exam']:.0f} B |"]
    if "checkpoint_file_peak_bytes" in m:
        lines += [f"| checkpoint file's peak / exams of the TPs in flight (max_tps_in_flight TPs) | "
                  f"{m['checkpoint_file_peak_bytes_per_live_exam']:.0f} B ({m['checkpoint_file_peak_bytes']} B) |"]
    if "kill" in r:
        k = r["kill"]
        lines += [f"| kill -9 at 50% ({k.get('tps', shape['tps'])} TPs): requests before the kill | {k['requests_at_kill']} ({k['exams_saved_at_kill']} "
                  "exams saved) |",
                  f"| after `--resume`: requests | {k['requests_after_resume']} |",
                  f"| finished exams requested again | **{k['finished_exams_asked_again']}** |",
                  f"| live TP threads at the kill: checkpoint bytes / exam they hold | "
                  f"{k['live_checkpoint_bytes_per_exam']:.0f} B ({k['live_threads_at_kill']} threads, "
                  f"{k['live_thread_exams']} exams; parts: {k['live_checkpoint_parts']}) |"]
    if r.get("series"):
        lines += ["", "Peak RSS by number of TPs:", "", "| TPs | pairs/TP | exams | wall s | peak RSS MB |",
                  "|---|---|---|---|---|"]
        lines += [f"| {x['tps']} | {x['pairs']} | {x['exams']} | {x['wall_s']} | {x['peak_rss_mb']:.0f} |"
                  for x in r["series"]]
    return "\n".join(lines) + "\n"


def kill_and_resume(args: argparse.Namespace, stub: Stub, work: Path, tps: int,
                    reference: Counter[str], total: int) -> dict[str, Any]:
    """The main shape's first ``tps`` TPs (``total`` requests), SIGKILLed halfway, then resumed."""
    tp_ids = [f"tp{t}" for t in range(tps)]
    before = stub.requests()
    proc = start_child(args, stub.base_url, work, "kill", tps, args.pairs)
    while stub.requests() - before < total // 2 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = stub.requests() - before
    finished, live = saved_exam_keys(work / "kill", tp_ids)
    resumed = finish_child(start_child(args, stub.base_url, work, "kill", tps, args.pairs, resume=True), work, "kill")
    after = list(stub.bodies(before + at_kill, stub.requests() - before - at_kill)) if at_kill else []
    asked_again = Counter(key_of(b, i) for b in after for i in range(int(b.get("n") or 1)) if b.get("model") == "student")
    # a finished exam asked again: its key asked more often than the run needs it
    repeated = sum(max(0, finished[k] + asked_again[k] - reference[k]) for k in asked_again)
    live_bytes = live["checkpoint_blobs"] + sum(live["writes"].values())
    return {"tps": tps, "requests_at_kill": at_kill, "exams_saved_at_kill": sum(finished.values()),
            "requests_after_resume": len(after), "finished_exams_asked_again": repeated,
            "resumed_exams": resumed["summary"]["exams"], "resumed_accuracy": resumed["summary"]["accuracy"],
            "live_threads_at_kill": live["threads"], "live_thread_exams": live["exams"],
            "live_checkpoint_bytes": live_bytes, "live_checkpoint_parts": {"checkpoints": live["checkpoint_blobs"],
                                                                          **live["writes"]},
            "live_checkpoint_bytes_per_exam": live_bytes / max(1, live["exams"])}


def _sub(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--base-url", required=True)
    for flag in ("--out", "--run-id", "--bodies", "--report"):
        ap.add_argument(flag)
    for flag in ("--tps", "--pairs", "--eps", "--reps", "--concurrency", "--max-tps", "--first", "--count"):
        ap.add_argument(flag, type=int, default=0)
    ap.add_argument("--exams-per-step", type=int, default=-1)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args(argv)
    child(args) if args.mode == "_child" else bare(args)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_child", "_bare"):
        _sub(sys.argv[1:])
    elif len(sys.argv) > 2 and sys.argv[1] == "--md-from":  # rewrite the .md of a saved report
        saved = json.loads(Path(sys.argv[2]).read_text())
        Path(sys.argv[2]).with_suffix(".md").write_text(markdown(saved))
    else:
        main()
