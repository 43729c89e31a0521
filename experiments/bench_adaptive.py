"""Adaptive M1: student tokens ÷ full M1's, at (hopefully) equal accuracy, and
self-consistency given the same extra tokens as teacher samples instead.

Full and adaptive M1 share one call cache, so they see the very same teacher
samples and exam answers: adaptive only skips exams.

    python experiments/bench_adaptive.py --config experiments/configs/m1_gsm8k_qwen.yaml \
        --cache runs/qwen-cache.sqlite [--base-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
from pathlib import Path

from _bench import ROOT, report, run_config, server

from lbt_agents.agents import make_roster
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
        adaptive = await arun_m1(
            run_config(args.config, url, *common, "run_id=adaptive", "m1.adaptive.enabled=true"), progress=False
        )
        student = "student"
        full_tok, ad_tok = tokens(full.summary, student), tokens(adaptive.summary, student)
        teacher_calls = full.summary["tokens"]["teacher"]["calls"]
        per_sample = tokens(full.summary, "teacher") / max(1, teacher_calls)

        ratio = ad_tok / full_tok if full_tok else 0.0
        print(f"student tokens: full {full_tok}, adaptive {ad_tok}, ratio {ratio:.3f}; "
              f"accuracy full {full.summary['accuracy']}, adaptive {adaptive.summary['accuracy']}", flush=True)

        # SC at equal tokens: spend adaptive's student tokens on more teacher samples.
        cfg = run_config(args.config, url, *common)
        items = load_task(cfg.task)
        extra = math.ceil(ad_tok / len(items) / per_sample) if per_sample else 0
        cache = CallCache(args.cache)
        roster = make_roster(cfg.classroom, task=cfg.task.name, cache=cache, max_concurrency=cfg.max_concurrency)
        correct = 0
        replies = await asyncio.gather(*(roster.teacher.teach(it["tp"], cfg.m1.pairs_per_tp + extra) for it in items))
        for item, samples in zip(items, replies):
            verdicts = [await roster.examiner.grade(item["tp"], r) for r in samples]
            cands = [Candidate(i, v["answer"], v["correct"]) for i, v in enumerate(verdicts)]
            correct += select("sc", cands, roster.examiner.equivalence(item["tp"]["kind"])).correct
        cache.close()
    sc_equal = correct / len(items)
    acc_f, acc_a = full.summary["accuracy"], adaptive.summary["accuracy"]
    data = {
        "tps": len(items), "full": {"accuracy": acc_f, "student_tokens": full_tok, "exams": full.summary["exams"]},
        "adaptive": {"accuracy": acc_a, "student_tokens": ad_tok, "exams": adaptive.summary["exams"]},
        "sc_equal_tokens": {"extra_samples_per_tp": extra, "accuracy": sc_equal}, "ratio": ratio,
    }
    pct = lambda x: "-" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    table = (
        f"# Adaptive M1 ({len(items)} TPs, config {Path(args.config).name})\n\n"
        "| method | M1-MAX | M1-SUM | M1-AVG | SC | student tokens | exams |\n|---|---|---|---|---|---|---|\n"
        f"| full M1 | {pct(acc_f.get('max'))} | {pct(acc_f.get('sum'))} | {pct(acc_f.get('avg'))} | {pct(acc_f.get('sc'))} "
        f"| {full_tok} | {full.summary['exams']} |\n"
        f"| adaptive M1 | {pct(acc_a.get('max'))} | {pct(acc_a.get('sum'))} | {pct(acc_a.get('avg'))} | {pct(acc_a.get('sc'))} "
        f"| {ad_tok} | {adaptive.summary['exams']} |\n"
        f"| SC with +{extra} teacher samples per TP (same tokens as adaptive's students) | | | | {pct(sc_equal)} | 0 | 0 |\n"
        f"\nstudent tokens, adaptive ÷ full: **{ratio:.3f}** (target <= 0.40)\n"
    )
    report("bench_adaptive", data, table)


if __name__ == "__main__":
    asyncio.run(main())
