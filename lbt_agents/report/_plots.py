"""The report's PNGs (matplotlib, Agg: no display needed).  Each function writes one file and returns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path


def _err(est: Mapping[str, Any]) -> tuple[float, float]:
    v = est["value"] or 0.0
    if est.get("low") is None:
        return 0.0, 0.0
    return 100 * (v - est["low"]), 100 * (est["high"] - v)


def accuracy(per_run: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path, *, title: str) -> Path:
    """Grouped bars: accuracy per method (x) and run (colour), 95% intervals as error bars."""
    plt = _plt()
    methods = list(dict.fromkeys(m for r in per_run.values() for m in r))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(methods) * max(1, len(per_run))), 3.8))
    width = 0.8 / max(1, len(per_run))
    for j, (label, ests) in enumerate(per_run.items()):
        xs = [i + (j - (len(per_run) - 1) / 2) * width for i, m in enumerate(methods) if m in ests]
        ys = [100 * (ests[m]["value"] or 0.0) for m in methods if m in ests]
        errs = list(zip(*[_err(ests[m]) for m in methods if m in ests])) or [[], []]
        ax.bar(xs, ys, width=width * 0.9, yerr=errs, capsize=4, label=label)
    ax.set_xticks(range(len(methods)), methods)
    ax.set(ylabel="accuracy over TPs (%)", ylim=(0, 105), title=title)
    ax.grid(axis="y", alpha=0.3)
    if len(per_run) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)


def differences(diffs: Mapping[str, Mapping[str, Any]], path: Path, *, title: str) -> Path:
    """Each method's paired difference to a baseline (points with 95% intervals), in points."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 0.6 * len(diffs) + 1.6))
    names = list(diffs)
    for i, name in enumerate(names):
        d = diffs[name]
        lo, hi = _err(d)
        ax.errorbar([100 * (d["value"] or 0.0)], [i], xerr=[[lo], [hi]], fmt="o", capsize=4)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="difference in accuracy (points)", title=title)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def pairs_curve(curve: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, *, title: str) -> Path:
    """Accuracy against TR-TA pairs per TP, one line per method with a 95% band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curve.items():
        ns = [p["n"] for p in points]
        ax.plot(ns, [100 * p["value"] for p in points], marker="o", label=name)
        if all(p["low"] is not None for p in points):
            ax.fill_between(ns, [100 * p["low"] for p in points], [100 * p["high"] for p in points], alpha=0.15)
    ax.set(xlabel="TR-TA pairs per TP", ylabel="accuracy (%)", title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def score_histogram(right: Sequence[float], wrong: Sequence[float], path: Path, *, title: str) -> Path:
    """LbT scores of right and wrong pairs, overlaid."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bins = [i / 10 for i in range(11)]
    ax.hist([list(right), list(wrong)], bins=bins, label=["right pairs", "wrong pairs"], color=["tab:green", "tab:red"])
    ax.set(xlabel="LbT score (students' exam accuracy)", ylabel="TR-TA pairs", title=title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def bars(values: Mapping[str, Mapping[str, float]], path: Path, *, title: str, ylabel: str) -> Path:
    """Grouped bars: one group per key, one bar per inner key (no intervals)."""
    plt = _plt()
    groups = list(values)
    series = list(dict.fromkeys(k for v in values.values() for k in v))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(groups) * max(1, len(series)) / 1.5), 3.8))
    width = 0.8 / max(1, len(series))
    for j, s in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [values[g].get(s, 0.0) for g in groups], width=width * 0.9, label=s)
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return _save(fig, path)
