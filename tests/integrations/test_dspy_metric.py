"""``lbt_metric`` against the real DSPy: ``dspy.Evaluate`` over a module that needs no LM."""

from __future__ import annotations

import re

import pytest

dspy = pytest.importorskip("dspy", reason="DSPy is not installed (pip install 'lbt-agents[dspy]')")

from lbt_agents import ConfigError
from lbt_agents.grading.code import extract_program
from lbt_agents.integrations.dspy import lbt_metric, rationale
from tests.integrations._classroom import eps_for, learns_from_good_method, scripted_classroom


class Adder(dspy.Module):
    """Answers "What is a + b?" with a good or a bad method, without any LM."""

    def __init__(self, method: str) -> None:
        super().__init__()
        self.method = method

    def forward(self, question: str) -> dspy.Prediction:
        a, b = map(int, re.findall(r"\d+", question))
        if self.method == "good":
            return dspy.Prediction(reasoning="A good method: add the numbers.", answer=str(a + b))
        return dspy.Prediction(reasoning="A bad method: add and add one.", answer=str(a + b + 1))


def devset() -> list:
    return [
        dspy.Example(question=f"What is {a} + {b}?", answer=str(a + b), eps=eps_for(f"tp{i}")).with_inputs("question")
        for i, (a, b) in enumerate([(2, 3), (10, 5), (4, 4)])
    ]


@pytest.mark.parametrize("num_threads", [1, 3])
def test_evaluate_scores_a_good_rationale_above_a_bad_one(num_threads: int) -> None:
    room, models = scripted_classroom()
    evaluate = dspy.Evaluate(devset=devset(), metric=lbt_metric(room), num_threads=num_threads)
    good, bad = evaluate(Adder("good")), evaluate(Adder("bad"))
    assert [score for *_, score in good.results] == [1.0, 1.0, 1.0]
    assert [score for *_, score in bad.results] == [0.0, 0.0, 0.0]
    assert good.score > bad.score
    # Every student took every EP once per example and program; each saw the answer on a final line.
    assert len(models["s0"].calls) == len(models["s1"].calls) == 2 * 3 * 3
    examples = {c["messages"][-2]["content"] for c in models["s0"].calls}
    assert "A good method: add the numbers.\n[[Final Answer]]: 5" in examples
    assert models["teacher"].calls == []


def test_metric_takes_the_gepa_arguments_and_plain_eps() -> None:
    room, _ = scripted_classroom(learns_from_good_method)
    metric = lbt_metric(room, rationale_field="why", answer_field="result", gold_field="gold")
    example = dspy.Example(question="What is 2 + 3?", gold="5", eps=[{"question": "What is 1 + 1?", "answer": "2"}])
    pred = dspy.Prediction(why="A good method: add. [[Final Answer]]: 5", result="5")
    assert metric(example, pred, None, "predict", None) == 1.0  # (gold, pred, trace, pred_name, pred_trace)
    assert metric.__name__ == "lbt"
    assert rationale(pred, "why", "result") == "A good method: add. [[Final Answer]]: 5"  # no second answer line
    code = rationale({"reasoning": "Assign it.", "answer": "x = 1"}, kind="code")
    assert code == "Assign it.\n[[Final Answer]]:\n```python\nx = 1\n```"
    assert extract_program(code).strip() == "x = 1"


def test_bad_input_is_one_clear_error() -> None:
    room, _ = scripted_classroom()
    metric = lbt_metric(room)
    pred = dspy.Prediction(reasoning="r", answer="5")
    with pytest.raises(ConfigError, match="needs 'eps'"):
        metric(dspy.Example(question="What is 2 + 3?", answer="5"), pred)
    with pytest.raises(ConfigError, match="needs 'question' and 'answer'"):
        metric(dspy.Example(answer="5", eps=eps_for("tp")), pred)
    with pytest.raises(ConfigError, match="neither 'reasoning' nor 'answer'"):
        metric(devset()[0], dspy.Prediction(other="x"))
    with pytest.raises(ConfigError, match="reps_per_ep"):
        lbt_metric(room, reps_per_ep=0)
