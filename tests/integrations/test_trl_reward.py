"""``lbt_reward`` against the real TRL: its reward-function contract and a real ``GRPOTrainer``."""

from __future__ import annotations

import re
import statistics

import pytest

pytest.importorskip("trl", reason="TRL is not installed (pip install 'lbt-agents[trl]')")

import lbt_agents.integrations.trl as lbt_trl
from lbt_agents import Classroom, ConfigError
from lbt_agents.config import AgentConfig, ClassroomConfig, Sampling
from lbt_agents.integrations.trl import completion_text, lbt_reward
from lbt_agents.stub import StubServer
from tests.integrations._classroom import add_problem, eps_for, learns_from_good_method, scripted_classroom


def good(tp) -> str:
    a, b = map(int, re.findall(r"\d+", tp["question"]))
    return f"A good method: add the numbers. [[Final Answer]]: {a + b}"


def bad(tp) -> str:
    a, b = map(int, re.findall(r"\d+", tp["question"]))
    return f"A bad method: add and add one. [[Final Answer]]: {a + b + 1}"


TPS = [add_problem("tp0", 2, 3), add_problem("tp1", 10, 5)]


def batch():
    """A GRPO batch as TRL passes it: two TPs, interleaved, their columns repeated per completion."""
    rows = [(TPS[0], good), (TPS[1], bad), (TPS[0], bad), (TPS[1], good), (TPS[1], good)]
    completions = [write(tp) for tp, write in rows]
    expected = [1.0 if write is good else 0.0 for _, write in rows]
    kwargs = {"tp": [tp for tp, _ in rows], "eps": [eps_for(tp["id"]) for tp, _ in rows]}
    return [tp["question"] for tp, _ in rows], completions, kwargs, expected


def spy_on_scoring(monkeypatch) -> list[tuple[str, list[str], list[float]]]:
    """Each ``score_rationales`` call the adapter makes: (TP id, rationales, their LbT scores)."""
    calls: list[tuple[str, list[str], list[float]]] = []
    real = lbt_trl.score_rationales

    async def spy(tp, rationales, eps, classroom, **kw):
        results = await real(tp, rationales, eps, classroom, **kw)
        calls.append((tp["id"], list(rationales), [r["lbt"] for r in results]))
        return results

    monkeypatch.setattr(lbt_trl, "score_rationales", spy)
    return calls


def test_reward_follows_trls_reward_function_contract(monkeypatch) -> None:
    from trl.trainer.utils import get_callable_name, is_async_callable

    room, models = scripted_classroom()
    reward = lbt_reward(room, name="lbt_score")
    assert get_callable_name(reward) == "lbt_score" and not is_async_callable(reward)
    calls = spy_on_scoring(monkeypatch)
    metrics: list[tuple[str, float]] = []
    prompts, completions, kwargs, expected = batch()
    rewards = reward(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1]] * 5,
        trainer_state=None,
        log_extra=lambda column, values: None,
        log_metric=lambda k, v: metrics.append((k, v)),
        **kwargs,
    )
    assert rewards == expected
    # One scoring call per TP, with that TP's completions in batch order.
    assert sorted((tp, texts) for tp, texts, _ in calls) == [
        ("tp0", [completions[0], completions[2]]),
        ("tp1", [completions[1], completions[3], completions[4]]),
    ]
    assert metrics == [("lbt_score/tp_accuracy", 3 / 5)]
    assert models["teacher"].calls == []
    assert len(models["s0"].calls) == len(models["s1"].calls) == 5 * 3


def test_conversational_completions_are_their_assistant_text() -> None:
    room, _ = scripted_classroom()
    prompts, completions, kwargs, expected = batch()
    conversations = [[{"role": "assistant", "content": [{"type": "text", "text": c}]}] for c in completions]
    assert lbt_reward(room)(prompts, conversations, **kwargs) == expected
    assert (
        completion_text(
            [
                {"role": "assistant", "content": "a"},
                {"role": "tool", "content": "x"},
                {"role": "assistant", "content": "b"},
            ]
        )
        == "a\nb"
    )


async def test_reward_works_under_a_running_event_loop() -> None:
    room, _ = scripted_classroom()
    prompts, completions, kwargs, expected = batch()
    assert lbt_reward(room)(prompts, completions, **kwargs) == expected  # called synchronously, as TRL does


def test_reward_over_http_keeps_working_call_after_call() -> None:
    """Real OpenAI clients: every call runs on one loop, so pooled connections stay usable."""

    def respond(body, index):
        return learns_from_good_method(body["messages"])

    with StubServer(respond=respond) as stub:
        students = [AgentConfig(name="s0", base_url=stub.base_url, sampling=Sampling(temperature=0.0), max_retries=0)]
        room = Classroom.from_config(
            ClassroomConfig(
                teacher=AgentConfig(name="teacher", role="teacher", base_url=stub.base_url), students=students
            )
        )
        reward = lbt_reward(room)
        prompts, completions, kwargs, expected = batch()
        for _ in range(3):
            assert reward(prompts, completions, **kwargs) == expected
        assert stub.requests == 3 * 5 * 3


def test_bad_input_is_one_clear_error() -> None:
    room, _ = scripted_classroom()
    prompts, completions, kwargs, _ = batch()
    with pytest.raises(ConfigError, match="no 'tp' column .*tp_key="):
        lbt_reward(room)(prompts, completions, eps=kwargs["eps"])
    with pytest.raises(ConfigError, match="row 0's 'eps' must be a list"):
        lbt_reward(room)(prompts, completions, tp=kwargs["tp"], eps=["not a list"] * 5)
    with pytest.raises(ConfigError, match="lacks answer"):
        lbt_reward(room)(
            prompts[:1], completions[:1], tp=[{"id": "x", "question": "q", "kind": "math"}], eps=kwargs["eps"][:1]
        )
    with pytest.raises(ConfigError, match="classroom must be a lbt_agents.Classroom"):
        lbt_reward({"teacher": "t"})  # type: ignore[arg-type]


def test_grpo_trainer_trains_on_lbt_rewards(tmp_path, monkeypatch) -> None:
    """Two real GRPO steps of a tiny random Llama (built here, no hub): the trainer logs our scores."""
    pytest.importorskip("torch")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from tests.training.conftest import tiny_llama

    def by_length(messages):  # learns from even-length rationales (random completions vary)
        a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
        return f"[[Final Answer]]: {a + b + len(messages[-2]['content']) % 2}"

    def by_tp(messages):  # learns on TPs whose first number is even
        a, b = map(int, re.findall(r"\d+", messages[-1]["content"])[:2])
        tp_first = int(re.findall(r"\d+", messages[1]["content"])[0])
        return f"[[Final Answer]]: {a + b + tp_first % 2}"

    def expected(tp, text: str) -> float:
        first = int(re.findall(r"\d+", tp["question"])[0])
        return ((len(text.strip()) % 2 == 0) + (first % 2 == 0)) / 2

    room, models = scripted_classroom(by_length, by_tp)
    tps = [add_problem(f"tp{i}", i, 7) for i in range(4)]
    rows = [
        {"prompt": [{"role": "user", "content": tp["question"]}], "tp": tp, "eps": eps_for(tp["id"], 2)} for tp in tps
    ]
    folder = tiny_llama(tmp_path / "tiny")
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=12,
        max_steps=2,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        bf16=False,
        seed=0,
        temperature=1.0,
    )
    calls = spy_on_scoring(monkeypatch)
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(folder),
        processing_class=AutoTokenizer.from_pretrained(folder),
        reward_funcs=[lbt_reward(room)],
        train_dataset=Dataset.from_list(rows),
        args=args,
    )
    trainer.train()

    # Each step scores 2 TPs x 2 completions, one scoring call per TP.
    assert len(calls) == 2 * 2 and all(len(texts) == 2 for _, texts, _ in calls)
    assert len(models["s0"].calls) == len(models["s1"].calls) == 2 * 2 * 2 * 2
    by_id = {tp["id"]: tp for tp in tps}
    for tp_id, texts, scores in calls:
        assert scores == [expected(by_id[tp_id], t) for t in texts]
    steps = [log for log in trainer.state.log_history if "rewards/lbt/mean" in log]
    assert len(steps) == 2 and all("lbt/tp_accuracy" in log for log in steps)
    for step, log in enumerate(steps):
        scores = [s for _, _, group in calls[2 * step : 2 * step + 2] for s in group]
        assert log["rewards/lbt/mean"] == pytest.approx(statistics.mean(scores))
    # The last step's completions table: each completion next to the reward TRL got for it.
    logged = zip(trainer._logs["prompt"], trainer._logs["completion"], trainer._logs["rewards"]["lbt"])
    last = [(p[-1]["content"], completion_text(c), r) for p, c, r in logged]
    by_question = {tp["question"]: tp for tp in tps}
    assert len(last) == 4 and all(r == expected(by_question[q], text) for q, text, r in last)
