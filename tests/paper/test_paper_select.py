"""MAJ/SC, MAX, SUM and AVG selection with the official tie rule.

The expected winners were checked by running the selection loop of the
official ``scripts/math/search_rationale.py`` (``sorted(all_answers.items(),
key=(value, votes))[-1]``) on the same answers and scores in a scratch folder
outside this repo; a fuzz of 100k random cases agreed for all four modes.
"""

from fractions import Fraction

import pytest

from lbt_agents.errors import ConfigError, DataError
from lbt_agents.paper import Pair, extract_answer, group_pairs, select, select_all


def pairs(*items):
    return [Pair(answer, passed) for answer, passed in items]


def test_full_ties_go_to_the_answer_first_seen_latest():
    cands = pairs(("a", 3), ("b", 3), ("c", 3))
    for mode in ("sc", "maj", "max", "sum", "avg"):
        assert select(mode, cands).answer == "c"


def test_votes_break_ties_of_the_mode_value():
    cands = pairs(("a", 9), ("b", 9), ("b", 0))  # MAX ties at 9; b has 2 votes
    assert select("max", cands).answer == "b"
    assert select("sum", cands).answer == "b"  # 9 == 9 + 0: b has more votes
    assert select("avg", cands).answer == "a"  # 9 > 9/2


def test_sum_ties_are_exact_and_decided_by_votes():
    # counts: a sums 9 + 9, b sums 9 + 6 + 3: equal, b has more votes
    assert select("sum", pairs(("a", 9), ("a", 9), ("b", 9), ("b", 6), ("b", 3))).answer == "b"
    # exact rationals where floats would not tie: 1 + 1 == 1 + 2/3 + 1/3 (in floats 2.0 > 1.9999999999999998)
    fractions = [
        Pair("a", 1),
        Pair("a", 1),
        Pair("b", 1),
        Pair("b", Fraction(2, 3)),
        Pair("b", Fraction(1, 3)),
    ]
    assert 1.0 + 1.0 != 1.0 + 2 / 3 + 1 / 3
    assert select("sum", fractions).answer == "b"


def test_avg_is_an_exact_fraction():
    cands = pairs(("a", 1), ("a", 2), ("b", 3), ("b", 0), ("b", 1), ("b", 2))  # 3/2 each; b more votes
    chosen = select("avg", cands)
    assert chosen.answer == "b" and chosen.value == Fraction(3, 2) and chosen.votes == 4


def test_modes_rank_by_their_own_value():
    cands = pairs(("a", 0), ("a", 0), ("a", 1), ("b", 5), ("c", 3), ("c", 3))
    chosen = select_all(["sc", "max", "sum", "avg"], cands)
    assert {m: s.answer for m, s in chosen.items()} == {
        "sc": "a",
        "max": "b",
        "sum": "c",
        "avg": "b",
    }
    assert chosen["sum"].value == 6 and chosen["sc"].value == 3


def test_pairs_without_a_marker_vote_with_their_last_line():
    texts = [
        "blah\n[[Final Answer]]:\n$4$\n",
        "I think it is\n4",
        "no idea\n4",
        "[[Final Answer]]:\n$\\frac{1}{2}$\n",
    ]
    cands = [Pair(extract_answer(t), 0) for t in texts]
    assert [c.answer for c in cands] == ["4", "4", "4", "\\frac{1}{2}"]
    assert select("sc", cands).votes == 3


def test_equivalent_spellings_are_separate_groups():
    cands = pairs(("0.5", 1), ("\\frac{1}{2}", 1), ("\\frac{1}{2}", 0))
    groups = group_pairs(cands)
    assert [(g.answer, g.votes, g.total) for g in groups] == [
        ("0.5", 1, 1),
        ("\\frac{1}{2}", 2, 1),
    ]
    assert select("sc", cands).answer == "\\frac{1}{2}"
    assert select("avg", cands).answer == "0.5"


def test_the_chosen_pair_is_the_first_giving_the_answer():
    chosen = select("max", pairs(("a", 1), ("b", 2), ("a", 7), ("b", 1)))
    assert (chosen.answer, chosen.index, chosen.value) == ("a", 0, 7)


@pytest.mark.parametrize("score", [0.5, 1.0, True, -1])
def test_non_exact_or_negative_scores_are_refused(score):
    with pytest.raises(DataError, match="pair 1"):
        select("sum", [Pair("a", 1), Pair("b", score)])


def test_bad_mode_and_no_pairs():
    with pytest.raises(ConfigError, match="greedy"):
        select("greedy", pairs(("a", 1)))
    with pytest.raises(DataError, match="no TR-TA pairs"):
        select("max", [])
