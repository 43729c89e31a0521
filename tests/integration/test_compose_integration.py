"""docs/compose.md example (b) on the embedded vLLM: a drafting agent keeps the draft students learn best from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lbt_agents import AgentConfig, Classroom, ClassroomConfig, Problem, Sampling

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))

from reward_node import drafting_agent  # noqa: E402

pytestmark = pytest.mark.integration
MODEL = "smollm2-135m"


def add(pid: str, a: int, b: int) -> Problem:
    return Problem(id=pid, question=f"Tom has {a} apples and buys {b} more. How many apples does he have?",
                   answer=str(a + b), kind="math")


async def test_reward_node_on_the_embedded_classroom(embedded_classroom) -> None:
    from langchain_openai import ChatOpenAI

    url = embedded_classroom.base_url(MODEL)
    agent = {"model": MODEL, "base_url": url, "timeout_s": 120, "max_retries": 2}
    cfg = ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher", **agent),
        students=[AgentConfig(name="student", sampling=Sampling(temperature=0.0, max_tokens=96), **agent)],
    )
    room = Classroom.from_config(cfg, task="gsm8k_functional")
    drafter = ChatOpenAI(model=MODEL, base_url=url, api_key="EMPTY", temperature=0.9, max_tokens=160)
    app = drafting_agent(drafter, n=3)
    out = await app.ainvoke({"problem": add("tp", 3, 4), "eps": [add("ep0", 5, 2), add("ep1", 6, 3)]},
                            context=room)
    assert len(out["drafts"]) == 3 and all(isinstance(d, str) and d for d in out["drafts"])
    assert len(out["lbt_score"]) == 3 and all(0.0 <= s <= 1.0 for s in out["lbt_score"])
    assert out["best"] == out["drafts"][out["lbt_score"].index(max(out["lbt_score"]))]
    assert room.meter.of("student").requests == 3 * 2  # every draft was examined on both EPs
    await room.aclose()
