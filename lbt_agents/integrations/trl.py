"""LbT scores as a reward function for TRL's ``GRPOTrainer`` (``pip install 'lbt-agents[trl]'``).

::

    from lbt_agents.integrations.trl import lbt_reward

    # each dataset row: a "prompt", its TP under "tp" and its exam problems under "eps"
    trainer = GRPOTrainer(model, reward_funcs=[lbt_reward(classroom)], train_dataset=rows, args=args)

Each completion is a rationale for its row's TP; its reward is its LbT score: the accuracy of the
classroom's students on the row's EPs with the rationale as their example.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lbt_agents.classroom import Classroom
from lbt_agents.errors import ConfigError
from lbt_agents.integrations._common import as_problem, check_classroom, require
from lbt_agents.integrations._loop import run_sync
from lbt_agents.rationales import score_rationales
from lbt_agents.types import Problem

RewardFunction = Callable[..., list[float]]


def lbt_reward(
    classroom: Classroom,
    *,
    tp_key: str = "tp",
    eps_key: str = "eps",
    reps_per_ep: int = 1,
    name: str = "lbt",
) -> RewardFunction:
    """A GRPO reward function ``(prompts, completions, **kwargs) -> list[float]``: each completion's
    LbT score for its row's TP (dataset column ``tp_key``) and EPs (column ``eps_key``).

    Completions may be texts or conversations (the assistant messages are the rationale).  The
    completions of one TP are scored together, all TPs of a batch at once.  When TRL passes
    ``log_metric``, it also logs ``{name}/tp_accuracy``: how many rationales answer their TP right.
    """
    require("trl", "trl", "lbt_reward")
    room = check_classroom(classroom, "lbt_reward")
    if reps_per_ep < 1:
        raise ConfigError(f"lbt_reward: reps_per_ep must be at least 1, got {reps_per_ep}")

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        tps, eps = _column(kwargs, tp_key, "tp_key", n), _column(kwargs, eps_key, "eps_key", n)
        groups = _groups(completions, tps, eps, tp_key, eps_key)
        scored = run_sync(lambda: _score(room, groups, reps_per_ep))
        rewards = [0.0] * len(completions)
        correct = 0
        for (_, _, rows, _), results in zip(groups, scored):
            for row, result in zip(rows, results):
                rewards[row] = float(result["lbt"])
                correct += bool(result["correct"])
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and completions:
            log_metric(f"{name}/tp_accuracy", correct / len(completions))
        return rewards

    reward.__name__ = reward.__qualname__ = name
    return reward


Group = tuple[Problem, list[Problem], list[int], list[str]]
"""A TP, its EPs, the batch rows that belong to it and their rationales."""


async def _score(room: Classroom, groups: list[Group], reps_per_ep: int) -> list[list[Any]]:
    return list(
        await asyncio.gather(
            *(score_rationales(tp, texts, eps, room, reps_per_ep=reps_per_ep) for tp, eps, _, texts in groups)
        )
    )


def _groups(completions: Sequence[Any], tps: list[Any], eps: list[Any], tp_key: str, eps_key: str) -> list[Group]:
    by_key: dict[str, Group] = {}
    for row, (completion, tp_value, eps_value) in enumerate(zip(completions, tps, eps)):
        tp = as_problem(tp_value, f"lbt_reward: row {row}'s {tp_key!r}")
        if isinstance(eps_value, (str, bytes)) or not isinstance(eps_value, Sequence):
            raise ConfigError(f"lbt_reward: row {row}'s {eps_key!r} must be a list of problems")
        ep_list = [as_problem(ep, f"lbt_reward: row {row}'s {eps_key!r}[{i}]") for i, ep in enumerate(eps_value)]
        key = json.dumps([tp, ep_list], sort_keys=True, default=str)
        group = by_key.setdefault(key, (tp, ep_list, [], []))
        group[2].append(row)
        group[3].append(completion_text(completion))
    return list(by_key.values())


def _column(kwargs: Mapping[str, Any], key: str, param: str, n: int) -> list[Any]:
    if key not in kwargs:
        extra = sorted(k for k in kwargs if k not in {"trainer_state", "log_extra", "log_metric", "completion_ids"})
        raise ConfigError(
            f"lbt_reward: the dataset has no {key!r} column (columns passed: {', '.join(extra) or 'none'}); "
            f"add it or name yours with lbt_reward(..., {param}=...)"
        )
    values = list(kwargs[key])
    if len(values) != n:
        raise ConfigError(f"lbt_reward: column {key!r} has {len(values)} values for {n} completions")
    return values


def completion_text(completion: Any) -> str:
    """A completion as text: itself, or the contents of a conversation's assistant messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        completion = [completion]
    if isinstance(completion, Sequence):
        parts = [
            _content(m.get("content"))
            for m in completion
            if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant"
        ]
        return "\n".join(p for p in parts if p)
    raise ConfigError(f"lbt_reward: a completion must be a text or a list of messages, got {type(completion).__name__}")


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    return str(content)
