"""LbT scores as a DSPy metric (``pip install 'lbt-agents[dspy]'``).

::

    from lbt_agents.integrations.dspy import lbt_metric

    devset = [dspy.Example(question=q, answer=a, eps=[...]).with_inputs("question"), ...]
    dspy.Evaluate(devset=devset, metric=lbt_metric(classroom))(dspy.ChainOfThought("question -> answer"))

A prediction's reasoning (and answer) is a rationale for the example's question, its TP; the metric
is its LbT score: the accuracy of the classroom's students on the example's EPs with it as their example.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lbt_agents.classroom import Classroom
from lbt_agents.errors import ConfigError
from lbt_agents.grading.math import FINAL_MARKER
from lbt_agents.integrations._common import as_problem, check_classroom, require
from lbt_agents.integrations._loop import run_sync
from lbt_agents.rationales import score_rationales
from lbt_agents.types import Problem, TaskKind

Metric = Callable[..., float]


def lbt_metric(
    classroom: Classroom,
    *,
    rationale_field: str = "reasoning",
    answer_field: str = "answer",
    question_field: str = "question",
    gold_field: str = "answer",
    eps_field: str = "eps",
    kind: TaskKind = "math",
    tp: Callable[[Any], Problem] | None = None,
    reps_per_ep: int = 1,
    name: str = "lbt",
) -> Metric:
    """A DSPy metric ``(example, pred, trace=None, pred_name=None, pred_trace=None) -> float`` in [0, 1].

    The TP is the example's ``question_field`` with gold ``gold_field`` (graded as ``kind``), or
    ``tp(example)``; the EPs are the example's ``eps_field``: problems, or ``{"question", "answer"}``
    mappings (ids and kind are filled in).  The rationale is the prediction's ``rationale_field``,
    with its ``answer_field`` on a final ``[[Final Answer]]:`` line when the reasoning has none.
    """
    require("dspy", "dspy", "lbt_metric")
    room = check_classroom(classroom, "lbt_metric")
    if reps_per_ep < 1:
        raise ConfigError(f"lbt_metric: reps_per_ep must be at least 1, got {reps_per_ep}")

    def metric(
        example: Any,
        pred: Any,
        trace: Any = None,
        pred_name: Any = None,
        pred_trace: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> float:
        problem = (
            as_problem(tp(example), "lbt_metric: tp(example)") if tp else _tp(example, question_field, gold_field, kind)
        )
        eps = _eps(example, eps_field, problem)
        text = rationale(pred, rationale_field, answer_field, problem["kind"])
        [result] = run_sync(lambda: score_rationales(problem, [text], eps, room, reps_per_ep=reps_per_ep))
        return float(result["lbt"])

    metric.__name__ = metric.__qualname__ = name
    return metric


def rationale(pred: Any, rationale_field: str = "reasoning", answer_field: str = "answer", kind: str = "math") -> str:
    """The prediction's reasoning, ending in a ``[[Final Answer]]:`` line with its answer
    (for code, the answer as a fenced python block) unless the reasoning already has one."""
    reasoning, answer = _field(pred, rationale_field), _field(pred, answer_field)
    if reasoning is None and answer is None:
        raise ConfigError(
            f"lbt_metric: the prediction has neither {rationale_field!r} nor {answer_field!r}; "
            "set lbt_metric(..., rationale_field=..., answer_field=...) to its fields"
        )
    text = "" if reasoning is None else str(reasoning).strip()
    if answer is None or FINAL_MARKER in text:
        return text
    answer = str(answer).strip()
    if kind == "code":
        block = answer if "```" in answer else f"```python\n{answer}\n```"
        final = f"{FINAL_MARKER}\n{block}"
    else:
        final = f"{FINAL_MARKER} {answer}"
    return f"{text}\n{final}".strip()


def _tp(example: Any, question_field: str, gold_field: str, kind: str) -> Problem:
    question, gold = _field(example, question_field), _field(example, gold_field)
    if question is None or gold is None:
        raise ConfigError(
            f"lbt_metric: the example needs {question_field!r} and {gold_field!r} "
            "(or pass lbt_metric(..., tp=lambda example: {...}))"
        )
    pid = _field(example, "id") or "tp-" + hashlib.sha1(str(question).encode()).hexdigest()[:12]
    return Problem(id=str(pid), question=str(question), answer=str(gold), kind=kind)  # type: ignore[typeddict-item]


def _eps(example: Any, eps_field: str, tp: Problem) -> list[Problem]:
    raw = _field(example, eps_field)
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or not raw:
        raise ConfigError(f"lbt_metric: the example needs {eps_field!r}, a non-empty list of exam problems")
    eps = []
    for i, ep in enumerate(raw):
        if hasattr(ep, "toDict"):
            ep = ep.toDict()
        if isinstance(ep, Mapping):
            ep = {"id": f"{tp['id']}/ep{i}", "kind": tp["kind"], **{k: v for k, v in ep.items() if v is not None}}
        eps.append(as_problem(ep, f"lbt_metric: {eps_field}[{i}]"))
    return eps


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return obj[name]  # dspy.Example and dspy.Prediction
    except (KeyError, TypeError, IndexError, AttributeError):
        return getattr(obj, name, None)
