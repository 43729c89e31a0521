"""Intervals and tests: exact McNemar, AUROC with ties, seeded bootstrap."""

from __future__ import annotations

import math

import pytest

from lbt_agents.report import auroc, mcnemar_exact, mean_ci, paired_diff_ci
from lbt_agents.report._stats import auroc_value, binom_two_sided, exact_interval


@pytest.mark.parametrize(("k", "n", "p"), [(1, 10, 0.021484375), (0, 5, 0.0625), (3, 6, 1.0), (2, 12, 0.0385742188),
                                           (0, 0, 1.0)])
def test_exact_binomial_matches_scipy_binomtest(k: int, n: int, p: float) -> None:
    assert binom_two_sided(k, n) == pytest.approx(p, rel=1e-8)  # values of scipy.stats.binomtest(k, n).pvalue


def test_mcnemar_counts_only_discordant_tps() -> None:
    a = [True] * 7 + [False] * 3 + [True] * 5
    b = [False] * 7 + [True] * 1 + [False] * 2 + [True] * 5
    got = mcnemar_exact(a, b)
    assert (got["only_a"], got["only_b"]) == (7, 1)
    assert got["p"] == pytest.approx(2 * sum(math.comb(8, i) for i in range(2)) / 2**8)


def test_auroc_counts_ties_half_and_needs_both_kinds() -> None:
    assert auroc_value([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert auroc_value([0.3, 0.4], [True, True]) is None
    got = auroc([1, 1, 0, 0, 1, 0], [True, False, False, False, True, False], ["a", "a", "a", "b", "b", "b"])
    assert got["value"] == pytest.approx(0.875) and got["low"] <= got["value"] <= got["high"] and got["tps"] == 2


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    x = [1.0] * 12 + [0.0] * 8
    first, again = mean_ci(x, seed=3), mean_ci(x, seed=3)
    assert first == again and first.value == pytest.approx(0.6)
    assert 0.35 < first.low < 0.6 < first.high < 0.85  # about +-0.21 at n=20
    same = paired_diff_ci(x, x)
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0)
    assert mean_ci([]).value is None


def test_all_right_or_all_wrong_gets_the_exact_interval_not_a_point() -> None:
    none, every, five = mean_ci([0.0] * 20), mean_ci([1.0] * 20), exact_interval(5, 20)
    assert (none.low, none.high) == (0.0, pytest.approx(0.16843, abs=1e-5))  # scipy: binomtest(0, 20).proportion_ci()
    assert (every.low, every.high) == (pytest.approx(0.83157, abs=1e-5), 1.0)
    assert five == (pytest.approx(0.08657, abs=1e-5), pytest.approx(0.49105, abs=1e-5))
