"""Selection replayed on a run's saved pairs: fewer pairs per TP, or one student's scores alone.

It calls :func:`lbt_agents.scoring.select` (the run's own rule, ties included) on the
``pairs`` table; answers are grouped by the run's saved answer groups (``group``),
or by the answer text for runs written before that column existed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lbt_agents.report._stats import mean_ci
from lbt_agents.scoring import Candidate, Selection, select


def _same(a: str, b: str) -> bool:
    return a == b


def _token(pair: Mapping[str, Any]) -> str | None:
    if pair["answer"] is None:
        return None
    return f"group {pair['group']}" if pair.get("group") is not None else str(pair["answer"]).strip()


def choose(
    mode: str, pairs: Sequence[Mapping[str, Any]], scores: Sequence[float] | None = None, *,
    tie_break: str = "first_seen",
) -> Selection:
    """The answer ``mode`` selects among ``pairs`` (rows of the pairs table of one TP, in index order),
    scored by ``scores`` (default: each pair's LbT score), ties broken as the run's ``m1.tie_break``."""
    scores = [p["lbt"] for p in pairs] if scores is None else scores
    cands = [Candidate(p["index"], _token(p), bool(p["correct"]), float(s)) for p, s in zip(pairs, scores)]
    return select(mode, cands, _same, tie_break=tie_break)  # type: ignore[arg-type]


def by_tp(pairs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Pairs table rows grouped by TP, each TP's pairs in index order."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for p in sorted(pairs, key=lambda p: (p["tp_id"], p["index"])):
        out.setdefault(p["tp_id"], []).append(p)
    return out


SELECTIONS = 60_000
"""About how many selections one curve makes: fewer draws per subset size for big runs, so a report takes seconds."""


def curve_sizes(largest: int) -> list[int]:
    """Subset sizes: every n up to 8, then about two per doubling, and always ``largest``."""
    steps = [n for k in range(3, 12) for n in (2**k, 3 * 2 ** (k - 1))]
    return sorted({n for n in range(1, min(largest, 8) + 1)} | {n for n in steps if n < largest} | {largest} - {0})


def curve_draws(tps: int, sizes: int, modes: int, most: int = 200) -> int:
    """Draws per TP and size: ``most``, or fewer (at least 20) to keep to about :data:`SELECTIONS`."""
    return max(20, min(most, SELECTIONS // max(1, tps * sizes * modes)))


def pairs_curve(
    tps: Mapping[str, Sequence[Mapping[str, Any]]],
    modes: Sequence[str] = ("sc", "max", "sum"),
    *,
    draws: int = 200,
    seed: int = 0,
    tie_break: str = "first_seen",
) -> dict[str, list[dict[str, Any]]]:
    """Accuracy against the number of TR-TA pairs per TP (the paper's Fig. 4), by drawing ``n`` of each
    TP's pairs without replacement (no model calls): ``draws`` times, fewer for big runs
    (:func:`curve_draws`).  Per ``n``: the mean accuracy over draws and TPs, with a 95% bootstrap
    interval over TPs of each TP's accuracy averaged over draws."""
    rng = np.random.default_rng(seed)
    largest = max((len(p) for p in tps.values()), default=0)
    sizes = curve_sizes(largest)
    draws = curve_draws(len(tps), len(sizes), len(modes), draws)
    out: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for n in sizes:
        per_tp = {m: [] for m in modes}
        for pairs in tps.values():
            k = min(n, len(pairs))
            times = 1 if k == len(pairs) else draws
            hits = dict.fromkeys(modes, 0)
            for _ in range(times):
                take = sorted(rng.choice(len(pairs), size=k, replace=False)) if times > 1 else range(k)
                sub = [pairs[i] for i in take]
                for m in modes:
                    hits[m] += choose(m, sub, tie_break=tie_break).correct
            for m in modes:
                per_tp[m].append(hits[m] / times)
        for m in modes:
            est = mean_ci(per_tp[m], seed=seed)
            out[m].append({"n": n, "value": est.value, "low": est.low, "high": est.high, "tps": est.n,
                           "draws": draws})
    return out


def per_student(
    tps: Mapping[str, Sequence[Mapping[str, Any]]], students: Sequence[str], modes: Sequence[str] = ("max", "sum"),
    *, tie_break: str = "first_seen",
) -> dict[str, dict[str, list[bool]]]:
    """Per student and mode: for each TP, whether selecting with that student's scores alone is right."""
    out: dict[str, dict[str, list[bool]]] = {}
    for s in students:
        out[s] = {m: [] for m in modes}
        for pairs in tps.values():
            scores = [next((x["score"] for x in p["per_student"] if x["student"] == s), 0.0) for p in pairs]
            for m in modes:
                out[s][m].append(choose(m, pairs, scores, tie_break=tie_break).correct)
    return out
