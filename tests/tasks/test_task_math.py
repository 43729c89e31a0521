from __future__ import annotations

import pytest

from lbt_agents.config import TaskConfig
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.grading.math import math_equivalent
from lbt_agents.tasks import load_problems, load_task


def _cfg(data_dir, name, **kw) -> TaskConfig:
    return TaskConfig(name=name, data_dir=data_dir, **kw)


@pytest.mark.needs_reference_data("math_functional")
def test_math_functional_is_the_papers_181_tps_with_3_variants_each(data_dir):
    items = load_task(_cfg(data_dir, "math_functional"))
    assert len(items) == 181
    assert all(len(it["eps"]) == 3 for it in items)
    for it in items:
        tp = it["tp"]
        assert tp["kind"] == "math" and tp["answer"]
        assert tp["meta"]["subject"] and tp["meta"]["level"] in range(1, 6)
        assert [ep["meta"]["snapshot"] for ep in it["eps"]] == ["Oct-2023", "Nov-2023", "Dec-2023"]
        assert all(ep["id"].startswith(tp["id"] + "@") and ep["answer"] for ep in it["eps"])
        assert tp["id"] not in {ep["id"] for ep in it["eps"]}
    ids = [it["tp"]["id"] for it in items] + [ep["id"] for it in items for ep in it["eps"]]
    assert len(set(ids)) == len(ids) == 181 * 4


@pytest.mark.needs_reference_data("math_functional")
def test_math_functional_variants_change_the_numbers(data_dir):
    items = load_task(_cfg(data_dir, "math_functional"))
    first = items[0]
    assert first["tp"]["id"] == "math/test/precalculus/807"
    assert first["eps"][0]["question"] != first["tp"]["question"]
    # variant answers are graded against the variant's own \boxed{} answer
    assert math_equivalent(first["eps"][0]["answer"], "(745, \\frac{\\pi}{2})")
    changed = sum(ep["question"] != it["tp"]["question"] for it in items for ep in it["eps"])
    assert changed > 400


@pytest.mark.needs_reference_data("math_functional")
def test_math_functional_ids_are_stable_and_cut_by_offset_limit(data_dir):
    a = load_task(_cfg(data_dir, "math_functional"))
    b = load_task(_cfg(data_dir, "math_functional", offset=5, limit=10))
    assert [it["tp"]["id"] for it in b] == [it["tp"]["id"] for it in a[5:15]]
    assert load_task(_cfg(data_dir, "math_functional", eps_per_tp=2))[0]["eps"] == a[0]["eps"][:2]


@pytest.mark.needs_reference_data("math_functional")
def test_loaded_items_are_copies(data_dir):
    a = load_task(_cfg(data_dir, "math_functional", limit=1))
    a[0]["tp"]["meta"]["subject"] = "mutated"
    b = load_task(_cfg(data_dir, "math_functional", limit=1))
    assert b[0]["tp"]["meta"]["subject"] != "mutated"


@pytest.mark.needs_reference_data("math500")
def test_math500_eps_are_similar_problems_of_the_same_subject(data_dir):
    items = load_task(_cfg(data_dir, "math500", eps_per_tp=4))
    assert len(items) == 500
    for it in items:
        assert len(it["eps"]) == 4
        assert it["tp"]["id"] not in {ep["id"] for ep in it["eps"]}
        assert all(ep["meta"]["subject"] == it["tp"]["meta"]["subject"] for ep in it["eps"])
    again = load_task(_cfg(data_dir, "math500", eps_per_tp=4))
    assert [[e["id"] for e in it["eps"]] for it in again] == [[e["id"] for e in it["eps"]] for it in items]


@pytest.mark.needs_reference_data("math_functional")
def test_load_problems_is_flat_and_unique(data_dir):
    problems = load_problems(_cfg(data_dir, "math_functional"))
    assert len(problems) == 181 * 4 == len({p["id"] for p in problems})
    assert len(load_problems(_cfg(data_dir, "math_functional", limit=7))) == 7


def test_missing_data_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"math500\.jsonl.*task\.data_dir"):
        load_task(TaskConfig(name="math_functional", data_dir=tmp_path))


@pytest.mark.needs_reference_data("math_functional")
def test_missing_snapshot_is_a_data_error(tmp_path, data_dir):
    (tmp_path / "math").mkdir()
    (tmp_path / "math" / "math500.jsonl").write_text((data_dir / "math" / "math500.jsonl").read_text())
    with pytest.raises(DataError, match="functional-Oct-2023"):
        load_task(TaskConfig(name="math_functional", data_dir=tmp_path))


def test_unknown_task_split_and_option_are_config_errors(tmp_path):
    data_dir = tmp_path  # each is refused before any data file is read
    with pytest.raises(ConfigError, match="unknown task 'nope'.*math_functional"):
        load_task(TaskConfig(name="nope", data_dir=data_dir))
    with pytest.raises(ConfigError, match="split 'train'"):
        load_task(_cfg(data_dir, "math_functional", split="train"))
    with pytest.raises(ConfigError, match="unknown option"):
        load_task(_cfg(data_dir, "math500", options={"bogus": 1}))


def test_zero_eps_is_rejected():
    with pytest.raises(ConfigError, match="eps_per_tp"):
        from lbt_agents.config import validate

        validate(TaskConfig, {"name": "math500", "eps_per_tp": 0})


@pytest.mark.needs_reference_data("math500")
def test_every_math500_answer_matches_its_solutions_boxed_answer(data_dir):
    from lbt_agents.grading.math import last_boxed

    items = load_task(_cfg(data_dir, "math500", eps_per_tp=1))
    mismatched = [it["tp"]["id"] for it in items if not math_equivalent(it["tp"]["answer"], last_boxed(it["tp"]["solution"]) or "")]
    assert mismatched == []
