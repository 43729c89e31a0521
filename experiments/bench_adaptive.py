"""Adaptive M1: student tokens ÷ full M1's, at (hopefully) equal accuracy, and
self-consistency given the same extra tokens as teacher samples instead.

Full and adaptive M1 share one call cache, so they see the very same teacher
samples and exam answers: adaptive only skips exams.  Adaptive runs twice: with
all its rules (the ratio), and with unanimity skips and halving only.

    python experiments/bench_adaptive.py --config experiments/configs/m1_gsm8k_qwen.yaml \
        --cache runs/qwen-cache.sqlite [--base-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
from pathlib import Path

from _bench import ROOT, report, run_config, server

from lbt_agents import Classroom
from lbt_agents.cache import CallCache
from lbt_agents.m1 import arun_m1
from lbt_agents.scoring import Candidate, select
from lbt_agents.tasks import load_task


def tokens(summary: dict, name: str) -> int:
    t = summary["tokens"].get(name, {"prompt_tokens": 0, "completion_tokens": 0})
    return t["prompt_tokens"] + t["completion_tokens"]


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default=str(ROOT / "experiments/configs/m1_gsm8k_qwen.yaml"))
    ap.add_argument("--cache", required=True, help="Call cache shared by both runs (e.g. the full run's).")
    ap.add_argument("--base-url")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench-adaptive-"))
    with server("qwen2.5-coder-0.5b", args.base_url) as url:
        common = [f"cache.path={args.cache}", f"output_dir={out}", *args.overrides]
        full = await arun_m1(run_config(args.config, url, *common, "run_id=full"), progress=False)
        runs = {}
        for name, rules in VARIANTS.items():
            cfg = run_config(args.config, url, *common, f"run_id={name}", "m1.adaptive.enabled=true", *rules)
            runs[name] = await arun_m1(cfg, progress=False)
        student = "student"
        full_tok = tokens(full.summary, student)
        ad_tok = tokens(runs["adaptive"].summary, student)
        teacher_calls = full.summary["tokens"]["teacher"]["calls"]
        per_sample = tokens(full.summary, "teacher") / max(1, teacher_calls)

        ratio = ad_tok / full_tok if full_tok else 0.0
        for name, run in runs.items():
            t = tokens(run.summary, student)
            print(f"{name}: student tokens {t} of full M1's {full_tok}, ratio {t / full_tok:.3f}; "
                  f"accuracy {run.summary['accuracy']} (full M1: {full.summary['accuracy']})", flush=True)

        # SC at equal tokens: spend adaptive's student tokens on more teacher samples.
        cfg = run_config(args.config, url, *common)
        items = load_task(cfg.task)
        extra = math.ceil(ad_tok / len(items) / per_sample) if per_sample else 0
        cache = CallCache(args.cache)
        roster = Classroom.from_config(cfg.classroom, task=cfg.task.name, cache=cache, max_concurrency=cfg.max_concurrency)
        correct = 0
        replies = await asyncio.gather(*(roster.teacher.teach(it["tp"], cfg.m1.pairs_per_tp + extra) for it in items))
        for item, samples in zip(items, replies):
            verdicts = [await roster.examiner.grade(item["tp"], r) for r in samples]
            cands = [Candidate(i, v["answer"], v["correct"]) for i, v in enumerate(verdicts)]
            correct += select("sc", cands, roster.examiner.equivalence(item["tp"]["kind"])).correct
        cache.close()
    sc_equal = correct / len(items)
    print(f"SC with {cfg.m1.pairs_per_tp} + {extra} teacher samples per TP: accuracy {sc_equal}", flush=True)
    rows = {"full M1": full, **{LABELS[name]: run for name, run in runs.items()}}
    data = {
        "tps": len(items),
        **{
            name: {"accuracy": run.summary["accuracy"], "student_tokens": tokens(run.summary, student),
                   "exams": run.summary["exams"]}
            for name, run in {"full": full, **runs}.items()
        },
        "sc_equal_tokens": {"extra_samples_per_tp": extra, "accuracy": sc_equal}, "ratio": ratio,
    }
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    table = (
        f"# Adaptive M1 ({len(items)} TPs, config {Path(args.config).name})\n\n"
        f"    python experiments/bench_adaptive.py {' '.join(sys.argv[1:])}\n\n"
        "| method | M1-MAX | M1-SUM | M1-AVG | SC | student tokens | exams |\n|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {label} | {pct(a.get('max'))} | {pct(a.get('sum'))} | {pct(a.get('avg'))} | {pct(a.get('sc'))} "
            f"| {tokens(run.summary, student)} | {run.summary['exams']} |\n"
            for label, run in rows.items()
            for a in [run.summary["accuracy"]]
        )
        + f"| SC with +{extra} teacher samples per TP (same tokens as adaptive's students) | | | | {pct(sc_equal)} | 0 | 0 |\n"
        f"\nstudent tokens, adaptive ÷ full: **{ratio:.3f}** (target <= 0.40)\n"
    )
    report("bench_adaptive", data, table)


VARIANTS = {
    "adaptive": [],
    "halving_only": ["m1.adaptive.one_pair_per_answer=false", "m1.adaptive.stop_without_signal=false"],
}
LABELS = {
    "adaptive": "adaptive M1 (all rules)",
    "halving_only": "adaptive M1, unanimity + halving only",
}


if __name__ == "__main__":
    asyncio.run(main())
