"""M2 preference pairs: the gap rule, the cap, determinism, the correctness baseline, saving."""

from __future__ import annotations

import random

import pytest

from lbt_agents.errors import DataError
from lbt_agents.preferences import (
    PAIR_COLUMNS,
    PreferenceSettings,
    load_pairs,
    make_pairs,
    pairs_for_tp,
    save_pairs,
    score,
)

PROMPT = [{"role": "system", "content": "Teach."}, {"role": "user", "content": "What is 2+2?"}]


def _tp(samples, tp_id="tp1"):
    return {"tp_id": tp_id, "prompt": PROMPT, "samples": samples}


def _s(i, correct, lbt, text=None):
    return {"id": f"s{i}", "text": text if text is not None else f"reply {i}", "correct": correct, "lbt": lbt}


def test_score_mixes_correctness_and_lbt():
    s = _s(0, True, 0.4)
    assert score(s, PreferenceSettings()) == pytest.approx(0.7)
    assert score(s, PreferenceSettings(weight=0.2)) == pytest.approx(0.2 + 0.8 * 0.4)
    assert score(s, PreferenceSettings(mode="correctness")) == 1.0


def test_gap_must_be_strictly_greater_than_min_gap():
    # both correct: scores 1.0 and 0.7 -> gap exactly 0.3 (1.0 - 0.7 is 0.30000000000000004 in floats)
    assert pairs_for_tp(_tp([_s(0, 1, 1.0), _s(1, 1, 0.4)])) == []
    rows = pairs_for_tp(_tp([_s(0, 1, 1.0), _s(1, 1, 1 / 3)]))  # gap 1/3 > 0.3
    assert len(rows) == 1
    assert rows[0]["gap"] == pytest.approx(1 / 3, abs=1e-9)


def test_pair_row_format_is_trl_conversational():
    rows = pairs_for_tp(_tp([_s(0, 0, 0.0, "bad"), _s(1, 1, 1.0, "good")]))
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == set(PAIR_COLUMNS)
    assert row["prompt"] == PROMPT
    assert row["chosen"] == [{"role": "assistant", "content": "good"}]
    assert row["rejected"] == [{"role": "assistant", "content": "bad"}]
    assert (row["chosen_id"], row["rejected_id"], row["tp_id"]) == ("s1", "s0", "tp1")
    assert (row["chosen_score"], row["rejected_score"], row["gap"], row["mode"]) == (1.0, 0.0, 1.0, "m2")


def test_cap_keeps_the_largest_gaps_with_ties_broken_by_ids():
    # 8 samples with lbt 0/7 .. 7/7, all incorrect: score = 0.5 * lbt, 28 possible pairs
    samples = [_s(i, 0, i / 7) for i in range(8)]
    rows = pairs_for_tp(_tp(samples), PreferenceSettings(min_gap=0.0, max_pairs_per_tp=8))
    assert len(rows) == 8
    gaps = [r["gap"] for r in rows]
    assert gaps == sorted(gaps, reverse=True)
    all_rows = pairs_for_tp(_tp(samples), PreferenceSettings(min_gap=0.0, max_pairs_per_tp=100))
    assert len(all_rows) == 28
    assert rows == all_rows[:8]
    # ties (equal gaps) come in (chosen_id, rejected_id) order
    keys = [(r["gap"], r["chosen_id"], r["rejected_id"]) for r in all_rows]
    assert keys == sorted(keys, key=lambda k: (-k[0], k[1], k[2]))
    assert rows[0]["chosen_id"] == "s7" and rows[0]["rejected_id"] == "s0"


def test_default_cap_is_eight_per_tp():
    samples = [_s(i, i % 2, (i % 2) * 0.9) for i in range(16)]  # 8 good, 8 bad: 64 qualifying pairs
    rows = pairs_for_tp(_tp(samples))
    assert len(rows) == 8


def test_deterministic_under_sample_order():
    samples = [_s(i, i % 2, random.Random(i).random()) for i in range(10)]
    shuffled = samples[:]
    random.Random(7).shuffle(shuffled)
    assert pairs_for_tp(_tp(samples)) == pairs_for_tp(_tp(shuffled))


def test_no_pair_of_identical_texts():
    samples = [_s(0, 1, 1.0, "same answer"), _s(1, 0, 0.0, "same answer "), _s(2, 0, 0.0, "other")]
    rows = pairs_for_tp(_tp(samples))
    assert [(r["chosen_id"], r["rejected_id"]) for r in rows] == [("s0", "s2")]
    assert all(r["chosen"][0]["content"].strip() != r["rejected"][0]["content"].strip() for r in rows)


def test_duplicate_replies_do_not_repeat_a_pair():
    samples = [_s(0, 1, 1.0, "good"), _s(1, 1, 1.0, "good"), _s(2, 0, 0.0, "bad")]
    rows = pairs_for_tp(_tp(samples))
    assert len(rows) == 1


def test_correctness_mode_pairs_correct_against_incorrect_only():
    # LbT would prefer s1 (incorrect but students learn), correctness mode must not
    samples = [_s(0, 1, 0.0), _s(1, 0, 1.0), _s(2, 1, 1.0), _s(3, 0, 0.0)]
    rows = pairs_for_tp(_tp(samples), PreferenceSettings(mode="correctness"))
    assert {(r["chosen_id"], r["rejected_id"]) for r in rows} == {("s0", "s1"), ("s0", "s3"), ("s2", "s1"), ("s2", "s3")}
    assert all(r["mode"] == "correctness" and r["gap"] == 1.0 for r in rows)
    m2 = pairs_for_tp(_tp(samples), PreferenceSettings(mode="m2"))
    assert ("s0", "s1") not in {(r["chosen_id"], r["rejected_id"]) for r in m2}  # both score 0.5 in M2


def test_correctness_mode_does_not_need_lbt():
    samples = [{"id": "a", "text": "x", "correct": True}, {"id": "b", "text": "y", "correct": False}]
    assert len(pairs_for_tp(_tp(samples), PreferenceSettings(mode="correctness"))) == 1
    with pytest.raises(DataError, match="lbt"):
        pairs_for_tp(_tp(samples), PreferenceSettings(mode="m2"))


def test_make_pairs_over_tps_and_no_pairs_is_a_data_error(tmp_path):
    tps = [_tp([_s(0, 1, 1.0), _s(1, 0, 0.0)], "a"), _tp([_s(0, 1, 1.0), _s(1, 1, 1.0)], "b")]
    rows = make_pairs(tps)
    assert [r["tp_id"] for r in rows] == ["a"]
    with pytest.raises(DataError, match="no preference pairs"):
        make_pairs([tps[1]])
    target = tmp_path / "prefs"
    with pytest.raises(DataError, match="nothing was written"):
        save_pairs([], target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad, msg",
    [
        ({"tp_id": "x", "samples": []}, "prompt"),
        ({"tp_id": "x", "prompt": PROMPT, "samples": [{"id": 1, "text": "t", "correct": 2, "lbt": 0}]}, "correct"),
        ({"tp_id": "x", "prompt": PROMPT, "samples": [{"id": 1, "correct": 1, "lbt": 0}]}, "text"),
        ({"tp_id": "x", "prompt": [{"role": "user"}], "samples": []}, "content"),
        ({"tp_id": "x", "prompt": PROMPT, "samples": [_s(0, 1, 1), _s(0, 0, 0)]}, "not unique"),
    ],
)
def test_malformed_input_is_one_data_error(bad, msg):
    with pytest.raises(DataError, match=msg):
        pairs_for_tp(bad)


def test_save_and_load_round_trip_replaces_atomically(tmp_path):
    rows = make_pairs([_tp([_s(0, 1, 1.0), _s(1, 0, 0.0), _s(2, 0, 0.5)], "a")])
    target = tmp_path / "prefs"
    save_pairs(rows, target)
    ds = load_pairs(target)
    assert len(ds) == len(rows) == 2
    assert ds[0]["prompt"] == PROMPT
    assert ds[0]["chosen"] == rows[0]["chosen"]
    assert ds.column_names == list(PAIR_COLUMNS)
    # saving again replaces the folder, leaving no temporary folders behind
    save_pairs(rows[:1], target)
    assert len(load_pairs(target)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["prefs"]


def test_load_pairs_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_pairs(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a saved"):
        load_pairs(tmp_path / "empty")
