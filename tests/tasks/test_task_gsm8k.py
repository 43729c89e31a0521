from __future__ import annotations

import pytest

from lbt_agents.config import TaskConfig
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks import load_task
from lbt_agents.tasks.gsm8k import gsm8k_answer, gsm_symbolic_instance, gsm_symbolic_templates


def test_gsm8k_answer_strips_commas():
    assert gsm8k_answer("He has 1,000 + 234 = 1,234\n#### 1,234") == ("He has 1,000 + 234 = 1,234", "1234")
    with pytest.raises(ValueError):
        gsm8k_answer("no marker")


@pytest.mark.needs_reference_data("gsm8k")
def test_gsm8k_test_split(data_dir):
    items = load_task(TaskConfig(name="gsm8k", data_dir=data_dir))
    assert len(items) == 1319
    first = items[0]["tp"]
    assert first["id"] == "gsm8k/test/0" and first["answer"] == "18" and first["kind"] == "math"
    for it in items:
        assert len(it["eps"]) == 3
        assert it["tp"]["id"] not in {ep["id"] for ep in it["eps"]}
        assert all(ep["id"].startswith("gsm8k/test/") for ep in it["eps"])
    assert all("," not in it["tp"]["answer"] for it in items)


def test_gsm8k_missing_split_file(tmp_path):
    with pytest.raises(DataError, match=r"gsm8k/test\.jsonl"):
        load_task(TaskConfig(name="gsm8k", data_dir=tmp_path))
    with pytest.raises(ConfigError, match="split 'dev'"):
        load_task(TaskConfig(name="gsm8k", data_dir=tmp_path, split="dev"))


def test_gsm_symbolic_instance_is_deterministic():
    a, b = gsm_symbolic_instance(0, 7), gsm_symbolic_instance(0, 7)
    assert a == b
    assert gsm_symbolic_instance(0, 8)["question"] != a["question"]
    assert a["answer"] and a["solution"].endswith(a["answer"])


def test_gsm8k_functional_one_template_per_tp():
    items = load_task(TaskConfig(name="gsm8k_functional", limit=20))
    templates = gsm_symbolic_templates()
    assert len(templates) >= 80
    assert [it["tp"]["meta"]["template"] for it in items] == templates[:20]
    for it in items:
        assert len(it["eps"]) == 3
        assert {ep["meta"]["template"] for ep in it["eps"]} == {it["tp"]["meta"]["template"]}
        questions = [it["tp"]["question"]] + [ep["question"] for ep in it["eps"]]
        assert len(set(questions)) == 4
    again = load_task(TaskConfig(name="gsm8k_functional", limit=20))
    assert again == items
    other_seed = load_task(TaskConfig(name="gsm8k_functional", limit=20, seed=100))
    assert other_seed[0]["tp"]["question"] != items[0]["tp"]["question"]
