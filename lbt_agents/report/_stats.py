"""Intervals and tests for M1 results: bootstrap over TPs, exact McNemar, AUROC, pair subsampling.

Every bootstrap is seeded (``seed``), so a report made twice is the same report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DRAWS = 2000
"""Bootstrap resamples per interval."""


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95% bootstrap interval (``low``/``high`` are None when it has none)."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _interval(samples: np.ndarray) -> tuple[float | None, float | None]:
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return None, None
    low, high = np.percentile(samples, [2.5, 97.5])
    return float(low), float(high)


def mean_ci(values: Sequence[float], *, draws: int = DRAWS, seed: int = 0) -> Estimate:
    """Mean of ``values`` (one per TP) and its percentile bootstrap 95% interval.  Where every value
    is 0 (or every one 1) the bootstrap has nothing to resample and the exact (Clopper-Pearson)
    interval is given instead: 0 of 20 TPs is [0, 16.8%], not [0, 0]."""
    x = np.asarray(values, dtype=float)
    if not len(x):
        return Estimate(None, None, None, 0)
    if np.all(x == 0) or np.all(x == 1):
        return Estimate(float(x.mean()), *exact_interval(int(x.sum()), len(x)), len(x))
    return _bootstrap_mean(x, draws=draws, seed=seed)


def _bootstrap_mean(x: np.ndarray, *, draws: int, seed: int) -> Estimate:
    if not len(x):
        return Estimate(None, None, None, 0)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(draws, len(x)))].mean(axis=1)
    return Estimate(float(x.mean()), *_interval(means), len(x))


def _binom_cdf(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1))


def exact_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of ``k`` successes in ``n`` trials (bisection on the binomial tails)."""
    alpha = (1 - level) / 2

    def solve(f: Any) -> float:  # f increasing in p on [0, 1], root by bisection
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
        return (lo + hi) / 2

    low = 0.0 if k == 0 else solve(lambda p: (1 - _binom_cdf(k - 1, n, p)) - alpha)
    high = 1.0 if k == n else solve(lambda p: alpha - _binom_cdf(k, n, p))
    return low, high


def paired_diff_ci(a: Sequence[float], b: Sequence[float], *, draws: int = DRAWS, seed: int = 0) -> Estimate:
    """Mean of ``a - b`` over the same TPs, with a paired bootstrap 95% interval (TPs resampled together)."""
    if len(a) != len(b):
        raise ValueError("paired samples need the same TPs")
    return _bootstrap_mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), draws=draws, seed=seed)


def binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided binomial p of ``k`` successes in ``n`` fair trials (as scipy's binomtest, p=0.5)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict[str, Any]:
    """Exact McNemar test of paired right/wrong outcomes: discordant counts and the two-sided p."""
    only_a = sum(bool(x) and not bool(y) for x, y in zip(a, b, strict=True))
    only_b = sum(bool(y) and not bool(x) for x, y in zip(a, b, strict=True))
    return {"only_a": only_a, "only_b": only_b, "p": binom_two_sided(only_a, only_a + only_b)}


def auroc_value(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """P(score of a right pair > score of a wrong one), ties counting half; None without both kinds."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    order = np.argsort(s, kind="mergesort")  # Mann-Whitney U from average ranks: O(n log n)
    _, first, counts = np.unique(s[order], return_index=True, return_counts=True)
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auroc(
    scores: Sequence[float], labels: Sequence[bool], clusters: Sequence[str], *, draws: int = DRAWS, seed: int = 0
) -> dict[str, Any]:
    """AUROC of LbT scores for right vs wrong pairs, with a 95% interval from resampling whole TPs
    (``clusters``: each pair's TP; pairs of one TP are not independent)."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    value = auroc_value(s, y)
    out = {"value": value, "low": None, "high": None, "right": int(y.sum()), "wrong": int((~y).sum()),
           "tps": len(set(clusters))}
    if value is None:
        return out
    ids = sorted(set(clusters))
    members = [np.flatnonzero(np.asarray(clusters) == c) for c in ids]
    rng = np.random.default_rng(seed)
    boot = np.full(draws, np.nan)
    for d in range(draws):
        take = np.concatenate([members[i] for i in rng.integers(0, len(ids), size=len(ids))])
        v = auroc_value(s[take], y[take])
        if v is not None:
            boot[d] = v
    out["low"], out["high"] = _interval(boot)
    return out


def tp_auroc(results: Mapping[str, Mapping[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """:func:`auroc` over the scored pairs of M1 results (``TPResult`` s by TP id): pairs with an answer
    that took exams or stand in for one that did (adaptive M1 leaves some unexamined)."""
    rows = [(p["lbt"], p["correct"], tp) for tp, r in results.items() for p in r["pairs"]
            if p["answer"] is not None and (p["exams"] or p.get("scored_as"))]
    if not rows:
        return {"value": None, "low": None, "high": None, "right": 0, "wrong": 0, "tps": 0}
    scores, labels, tps = zip(*rows)
    return auroc(scores, labels, tps, seed=seed)


def format_auroc(a: Mapping[str, Any]) -> str:
    """``0.81 [0.70, 0.91] (12 right, 30 wrong pairs, 20 TPs)``, or why there is none."""
    if a.get("value") is None:
        return f"- (needs right and wrong pairs: {a.get('right', 0)} right, {a.get('wrong', 0)} wrong)"
    ci = f" [{a['low']:.2f}, {a['high']:.2f}]" if a.get("low") is not None else ""
    return f"{a['value']:.2f}{ci} ({a['right']} right, {a['wrong']} wrong pairs, {a['tps']} TPs)"
