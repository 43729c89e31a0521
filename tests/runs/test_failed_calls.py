"""A run in which every model call failed exits non-zero with one clear line; bad bodies are named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lbt_agents.config import AgentConfig, RunConfig
from lbt_agents.errors import EndpointError
from lbt_agents.llm import ChatAgent
from lbt_agents.stub import StubServer
from tests.runs._cli import lbt, one_error_line
from tests.runs._servers import garbage_server


def m1_config(base_url: str, output_dir: Path) -> dict:
    agent = {"base_url": base_url, "max_retries": 0}
    return {
        "output_dir": str(output_dir),
        "task": {"name": "gsm8k_functional", "limit": 1, "eps_per_tp": 1},
        "classroom": {"teacher": {**agent, "name": "teacher", "role": "teacher", "model": "t", "sampling": {"n": 2}},
                      "students": [{**agent, "name": "s", "model": "s"}]},
        "m1": {"pairs_per_tp": 2},
        "cache": {"enabled": False},
    }


async def test_an_m1_run_whose_every_call_came_back_empty_fails(tmp_path: Path) -> None:
    """Today: exit 0 and a summary of 0.0 accuracies."""
    from lbt_agents.m1 import arun_m1

    with StubServer(text="", models=("t", "s")) as stub:
        cfg = RunConfig.model_validate({**m1_config(stub.base_url, tmp_path), "run_id": "empty"})
        with pytest.raises(EndpointError) as err:
            await arun_m1(cfg, progress=False)
        assert stub.requests == 2  # 2 samples in one request (n=2) + greedy; unanswered pairs are not examined
    assert str(err.value).startswith("every model call of run 'empty' failed: no teacher sample or exam gave an answer")
    summary = json.loads((tmp_path / "empty" / "summary.json").read_text())  # the record is still written
    assert summary["tokens"]["teacher"]["completion_tokens"] == 0


async def test_one_answer_is_not_all_failed(tmp_path: Path) -> None:
    from lbt_agents.m1 import arun_m1

    with StubServer(text="The answer is 3. [[Final Answer]]: 3", models=("t", "s")) as stub:
        cfg = RunConfig.model_validate({**m1_config(stub.base_url, tmp_path), "run_id": "fine"})
        result = await arun_m1(cfg, progress=False)
    assert result.summary["exams"] > 0


@pytest.mark.parametrize("body", [b"<html>not json", b"[1, 2]", b"{}", b""])
async def test_a_body_that_is_not_a_chat_completion_is_named(body: bytes) -> None:
    with garbage_server(("t",), body) as (url, counts):
        agent = ChatAgent(AgentConfig(name="teacher", model="t", base_url=url, max_retries=0))
        with pytest.raises(EndpointError) as err:
            await agent.sample([{"role": "user", "content": "hi"}], n=1)
        await agent.aclose()
    assert counts["chat"] == 1  # not retried: a bad body is not transient
    assert str(err.value).startswith(f"agent 'teacher': endpoint {url} answered with something that is not a chat "
                                     "completion (")


def test_lbt_m1_against_a_garbage_server_is_one_line(tmp_path: Path) -> None:
    """Today: `error: JSONDecodeError: Expecting value: ...` (an exception name, exit 1)."""
    with garbage_server(("t", "s")) as (url, _):
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(m1_config(url, tmp_path / "runs")))
        out = lbt("m1", "--config", str(config), "--no-progress", cwd=tmp_path)
    line = one_error_line(out)
    assert out.returncode == 3
    assert "answered with something that is not a chat completion" in line and url in line
