from __future__ import annotations

import json
from collections import Counter

import pytest

from lbt_agents.config import TaskConfig
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks import load_problems, load_task


@pytest.mark.parametrize(
    ("name", "n_test", "n_total", "choices"),
    [
        ("formal_fallacies", 1000, 14200, {"valid", "invalid"}),
        ("causal_judgment", 57, 190, {"Yes", "No"}),
        ("knights_knaves", 150, 500, {"True", "False"}),
    ],
)
def test_label_splits_are_disjoint_stable_and_balanced(data_dir, name, n_test, n_total, choices):
    test = load_task(TaskConfig(name=name, data_dir=data_dir, split="test"))
    train = load_task(TaskConfig(name=name, data_dir=data_dir, split="train"))
    assert len(test) == n_test and len(test) + len(train) == n_total
    test_ids = {it["tp"]["id"] for it in test}
    assert not test_ids & {it["tp"]["id"] for it in train}
    for it in test:
        assert it["tp"]["kind"] == "label"
        assert set(it["tp"]["meta"]["choices"]) == choices and it["tp"]["answer"] in choices
        assert len(it["eps"]) == 3 and it["tp"]["id"] not in {ep["id"] for ep in it["eps"]}
        assert {ep["id"] for ep in it["eps"]} <= test_ids  # EPs from the same split
    counts = Counter(it["tp"]["answer"] for it in test)
    assert max(counts.values()) - min(counts.values()) <= max(4, n_test // 10)
    again = load_task(TaskConfig(name=name, data_dir=data_dir, split="test"))
    assert [[e["id"] for e in it["eps"]] for it in again] == [[e["id"] for e in it["eps"]] for it in test]


def test_seed_changes_the_split(data_dir):
    a = load_task(TaskConfig(name="causal_judgment", data_dir=data_dir))
    b = load_task(TaskConfig(name="causal_judgment", data_dir=data_dir, seed=1))
    assert {it["tp"]["id"] for it in a} != {it["tp"]["id"] for it in b}


def test_test_size_option(data_dir):
    items = load_task(TaskConfig(name="causal_judgment", data_dir=data_dir, options={"test_size": 20}))
    assert len(items) == 20
    with pytest.raises(ConfigError, match="test_size"):
        load_task(TaskConfig(name="causal_judgment", data_dir=data_dir, options={"test_size": 190}))


def test_knights_knaves_asks_a_true_false_question():
    items = load_task(TaskConfig(name="knights_knaves", options={"size": 40, "n_people": 2}))
    tp = items[0]["tp"]
    assert "Is the following statement true or false?" in tp["question"]
    assert "So who is" not in tp["question"]
    name = tp["meta"]["statement"].split(" is ")[0]
    role_true = tp["meta"]["roles"][tp["meta"]["names"].index(name)]
    says_truthful = tp["meta"]["statement"] in tp["solution"]
    assert (tp["answer"] == "True") == says_truthful
    assert isinstance(role_true, bool)


def test_zero_eps_when_split_has_one_problem(tmp_path):
    bench = tmp_path / "bigbench"
    bench.mkdir()
    examples = [{"input": f"q{i}", "target_scores": {"Yes": i % 2, "No": 1 - i % 2}} for i in range(3)]
    (bench / "causal_judgment.json").write_text(json.dumps({"examples": examples}))
    with pytest.raises(DataError, match="no exam problems"):
        load_task(TaskConfig(name="causal_judgment", data_dir=tmp_path, options={"test_size": 1}))
    problems = load_problems(TaskConfig(name="causal_judgment", data_dir=tmp_path, split="train", options={"test_size": 1}))
    assert len(problems) == 2


def test_malformed_bigbench_file(tmp_path):
    (tmp_path / "bigbench").mkdir()
    (tmp_path / "bigbench" / "causal_judgment.json").write_text('{"examples": [{"input": "x"}]}')
    with pytest.raises(DataError, match="not a BIG-bench task file"):
        load_task(TaskConfig(name="causal_judgment", data_dir=tmp_path))
