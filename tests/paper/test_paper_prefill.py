"""The prefilled assistant turn over the OpenAI-compatible API, against the stub server."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.config import AgentConfig
from lbt_agents.errors import EndpointError
from lbt_agents.llm import ChatAgent
from lbt_agents.stub import StubServer
from lbt_agents.types import Problem, TeachingItem

PREFILLED = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "[[Solution]]:\n"}]


def _agent(stub: StubServer) -> ChatAgent:
    return ChatAgent(AgentConfig(name="teacher", model="stub", base_url=stub.base_url, max_retries=2))


async def test_prefill_is_sent_for_vllm_to_continue() -> None:
    with StubServer(text="2 + 3 = 5.", record_bodies=True) as stub:
        agent = _agent(stub)
        [reply] = await agent.sample(PREFILLED, n=1)
        [plain] = await agent.sample(PREFILLED[:1], n=1)
        await agent.aclose()
        continued, fresh = stub.bodies
    assert reply.text == "2 + 3 = 5."  # the continuation only, as the official scripts keep it
    assert continued["messages"][-1] == {"role": "assistant", "content": "[[Solution]]:\n"}
    assert (continued["continue_final_message"], continued["add_generation_prompt"]) == (True, False)
    assert "continue_final_message" not in fresh and "add_generation_prompt" not in fresh
    assert plain.text == "2 + 3 = 5."


async def test_a_refused_prefill_stops_with_one_line_and_no_retries() -> None:
    with StubServer(text="x", continue_final_message=False) as stub:
        agent = _agent(stub)
        with pytest.raises(EndpointError, match="refuses to continue a final assistant message") as caught:
            await agent.sample(PREFILLED, n=1)
        await agent.aclose()
        assert stub.requests == 1
    assert "continue_final_message" in str(caught.value) and "\n" not in str(caught.value)


def _items(_cfg: object) -> list[TeachingItem]:
    tp = Problem(id="tp", question="What is 2 + 3?", answer="5", kind="math")
    return [TeachingItem(tp=tp, eps=[Problem(id="ep", question="What is 1 + 1?", answer="2", kind="math")])]


def test_paper_run_on_an_endpoint_that_refuses_the_prefill_is_one_error_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lbt_agents.tasks.load_task", _items)
    with StubServer(text="x", continue_final_message=False) as stub:
        config = tmp_path / "paper.yaml"
        config.write_text(
            f"profile: paper\ntask: {{name: math_functional}}\nm1: {{pairs_per_tp: 2}}\nclassroom:\n"
            f"  teacher: {{name: teacher, model: stub, base_url: '{stub.base_url}'}}\n"
            f"  students: [{{name: s0, model: stub, base_url: '{stub.base_url}'}}]\n"
        )
        argv = ["m1", "--config", str(config), "--output-dir", str(tmp_path), "--run-id", "r", "--no-progress"]
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert stub.requests == 1  # the probe; no teacher sample, no exam
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 3
    assert len(err) == 1 and err[0].startswith("error: agent 'teacher': endpoint ") and "refuses to continue" in err[0]
