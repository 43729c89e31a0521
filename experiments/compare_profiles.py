"""Side by side: M1 runs of the same TPs under different profiles (their summary.json and results).

    python experiments/compare_profiles.py RUN_DIR [RUN_DIR ...]   # prints a Markdown table

Rows: accuracy per selection mode, then what the rules change: replies with a [[Final Answer]]
line, pairs that took exams, answer groups per TP, exam accuracy, truncated replies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

MARKER = "[[Final Answer]]"
NAMES = {"greedy": "Greedy", "sc": "SC", "max": "M1-MAX", "sum": "M1-SUM", "avg": "M1-AVG"}


def _results(run: Path) -> list[dict]:
    from datasets import load_from_disk

    return [dict(row) for row in load_from_disk(str(run / "results"))]


def column(run: Path) -> dict[str, str]:
    summary = json.loads((run / "summary.json").read_text())
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    results = _results(run)
    pairs = [p for r in results for p in r["pairs"]]
    exams = [e for p in pairs for e in p["exams"]]
    groups = [len({p["answer"] for p in r["pairs"] if p["answer"] is not None}) for r in results]

    def pct(n: int, d: int) -> str:
        return f"{n}/{d} ({100 * n / d:.0f}%)" if d else "-"

    col = {"profile": cfg["profile"], "TPs": str(summary["tps"])}
    for mode, acc in summary["accuracy"].items():
        n = sum(1 for r in results for s in r["selections"] if s["mode"] == mode and s["correct"])
        col[NAMES.get(mode, mode)] = pct(n, len(results)) if acc is not None else "-"
    col["teacher pairs correct"] = pct(sum(p["correct"] for p in pairs), len(pairs))
    col["replies with a marker (pairs / exams)"] = (
        f"{sum(MARKER in p['text'] for p in pairs)}/{len(pairs)} / {sum(MARKER in e['text'] for e in exams)}/{len(exams)}")
    col["pairs that took exams"] = pct(sum(bool(p["exams"]) for p in pairs), len(pairs))
    col["answer groups per TP"] = ", ".join(map(str, groups))
    col["exam accuracy"] = pct(sum(e["correct"] for e in exams), len(exams))
    col["truncated replies"] = str(summary["truncated_replies"])
    col["wall time"] = f"{summary['wall_s']:.0f} s"
    return col


def main(runs: list[str]) -> None:
    cols = [column(Path(r)) for r in runs]
    rows = list(dict.fromkeys(k for c in cols for k in c))
    print("| | " + " | ".join(c["profile"] for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for row in rows[1:]:
        print(f"| {row} | " + " | ".join(c.get(row, "-") for c in cols) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
