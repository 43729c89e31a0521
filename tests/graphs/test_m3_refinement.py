"""The M3 graph's logic, offline, with scripted chat models."""

from __future__ import annotations

import json
import re

import pytest

from lbt_agents import Classroom
from lbt_agents.graphs.m3_refinement import m3_graph, make_plan, metric_of
from lbt_agents.config import AgentConfig, ClassroomConfig, M3Config, RunConfig, Sampling, TaskConfig
from lbt_agents.errors import ConfigError
from lbt_agents.m3 import arun_m3
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import Problem

CHOICES = ["valid", "invalid"]


def problem(i: int) -> Problem:
    answer = "valid" if i % 2 == 0 else "invalid"
    return Problem(id=f"p{i}", question=f"Argument number {i} ({answer}-shaped).\nOptions: valid, invalid",
                   answer=answer, kind="label", meta={"choices": CHOICES})


TRAIN = [problem(i) for i in range(20)]
TEST = [problem(i) for i in range(100, 108)]


def exemplar_text(tag: str, k: int = 2) -> str:
    return "\n\n".join(
        f"### Example {j}\nProblem: {tag} argument {j}.\nOptions: valid, invalid\nSolution: check {tag}.\n"
        f"[[Final Answer]]: {'valid' if j % 2 else 'invalid'}"
        for j in range(1, k + 1)
    )


def is_predictor(messages) -> bool:
    return "worked examples before the last question" in messages[0]["content"]


def predictor_answer(messages, good_marker: str = "GOOD") -> str:
    """Right on every problem when the in-context examples carry the marker; otherwise always 'valid'."""
    shots = " ".join(m["content"] for m in messages[1:-1])
    gold = re.search(r"\((\w+)-shaped\)", messages[-1]["content"]).group(1)
    said = gold if good_marker in shots else "valid"
    return f"Reasoning.\n[[Final Answer]]: {said}"


def teacher_factory(write=None):
    """Explains with reason R<seed>; writes GOOD sets for odd seeds, BAD sets otherwise (or ``write``)."""

    def respond(messages, params) -> str:
        if is_predictor(messages):
            return predictor_answer(messages)
        user = messages[-1]["content"]
        if "Explain in a short paragraph" in user:
            return f"R{params.get('seed')}: the examples show only one kind of argument."
        if write is not None:
            return write(messages, params)
        reason = re.search(r"A reason the examples led to these mistakes:\n(R\d+)", user).group(1)
        return exemplar_text("GOOD" if int(reason[1:]) % 2 else "BAD")

    return respond


def student(messages) -> str:
    return predictor_answer(messages)


def agent_cfgs(n_students: int = 2, retries: int = 0) -> ClassroomConfig:
    return ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.8, seed=0)),
        students=[AgentConfig(name=f"s{i}", sampling=Sampling(temperature=0.0), max_retries=retries)
                  for i in range(n_students)],
    )


def setup(m3: M3Config, *, teacher=None, students=None, n_students: int = 2):
    classroom = agent_cfgs(n_students)
    models = {"teacher": [ScriptedChatModel(respond=teacher or teacher_factory())]}
    for i in range(n_students):
        models[f"s{i}"] = [ScriptedChatModel(respond=(students or {}).get(f"s{i}", student))]
    room = Classroom.from_config(classroom, models=models, max_concurrency=8)
    return m3_graph(m3, classroom=room), models


def calls(model, text: str) -> list[list[dict]]:
    return [c["messages"] for c in model.calls if text in c["messages"][-1]["content"]]


def m3cfg(**kw) -> M3Config:
    base = dict(rounds=1, k=2, beam=1, minibatch=4, reasons=2, score_sample=6, test_limit=8)
    return M3Config(**{**base, **kw})


async def test_failures_reach_the_teachers_explain_prompt() -> None:
    graph, models = setup(m3cfg(reasons=1))
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    plan = make_plan(len(TRAIN), m3cfg())
    batch = [TRAIN[i] for i in plan.minibatch(1, 4, 0)]
    failing = [p for p in batch if p["answer"] == "invalid"]  # the initial set makes students say 'valid'
    passing = [p for p in batch if p["answer"] == "valid"]
    assert failing and passing
    [explain] = calls(models["teacher"][0], "Explain in a short paragraph")
    prompt = explain[-1]["content"]
    for p in failing:
        assert p["question"].splitlines()[0] in prompt
    for p in passing:
        assert p["question"].splitlines()[0] not in prompt
    assert "student: s0" in prompt and "student: s1" in prompt  # pooled across students
    row = out["rounds"]["teacher|r1"]
    assert row["failures"] == 2 * len(failing)
    assert row["minibatch_accuracy"] == {"s0": len(passing) / 4, "s1": len(passing) / 4}


async def test_beam_keeps_the_best_scored_sets() -> None:
    graph, _ = setup(m3cfg(beam=2))
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    # reasons R0 (-> BAD set) and R1 (-> GOOD set); the GOOD set scores 1.0, BAD and init the share of
    # 'valid' problems in the scoring sample (their predictor always says 'valid').
    beam = out["beams"]["teacher"]
    sets, scores = out["sets"], out["scores"]
    assert "GOOD" in sets[beam[0]]["exemplars"][0]["question"]
    assert scores[beam[0]]["score"] == 1.0
    assert beam[1] == "teacher/r0/init"  # ties go to the incumbent, so the BAD set is dropped
    bad = next(s for s in sets.values() if s["exemplars"][0]["question"].startswith("BAD"))
    sample = [TRAIN[i] for i in make_plan(len(TRAIN), m3cfg()).score_sample]
    share_valid = sum(p["answer"] == "valid" for p in sample) / len(sample)
    assert 0 < share_valid < 1
    assert scores[bad["id"]]["score"] == scores["teacher/r0/init"]["score"] == share_valid
    row = out["rounds"]["teacher|r1"]
    assert row["best_score"] == 1.0 and row["test_accuracy"] == 1.0
    assert out["rounds"]["teacher|r0"]["test_accuracy"] == 0.5  # round 0 is the initial set


async def test_duplicate_candidates_are_dropped_and_not_scored() -> None:
    teacher = teacher_factory(write=lambda m, p: exemplar_text("GOOD"))
    graph, models = setup(m3cfg(reasons=3), teacher=teacher)
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    new = [s for s in out["sets"].values() if s["round"] == 1]
    assert sorted(s["status"] for s in new) == ["candidate", "duplicate", "duplicate"]
    assert len(out["scores"]) == 2  # init + the one candidate
    assert out["rounds"]["teacher|r1"]["duplicates"] == 2
    train_prompts = {f"Problem: {p['question']}" for p in TRAIN}
    # scoring calls: 6 problems for init, 6 for the single candidate (evaluations are on TEST ids)
    score_calls = [c for c in models["teacher"][0].calls
                   if is_predictor(c["messages"]) and c["messages"][-1]["content"].strip() in train_prompts]
    assert len(score_calls) == 12


async def test_parse_failure_retries_with_the_error_then_keeps_the_previous_set() -> None:
    teacher = teacher_factory(write=lambda m, p: "I think the examples are fine.")
    graph, models = setup(m3cfg(reasons=1, max_parse_retries=2), teacher=teacher)
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    writes = [c["messages"] for c in models["teacher"][0].calls if "Write 2 new worked examples" in c["messages"][1]["content"]]
    assert len(writes) == 3  # first try + 2 retries
    assert "could not be used: found 0 complete example(s), need 2" in writes[-1][-1]["content"]
    [child] = [s for s in out["sets"].values() if s["round"] == 1]
    assert child["status"] == "kept_previous" and child["exemplars"] == out["sets"]["teacher/r0/init"]["exemplars"]
    assert len(child["attempts"]) == 3
    assert out["beams"]["teacher"] == ["teacher/r0/init"]
    assert [e["event"] for e in out["log"]] == ["parse_failed"]
    assert out["rounds"]["teacher|r1"]["kept_previous"] == 1


async def test_parse_retry_can_recover() -> None:
    seen = []

    def write(messages, params):
        seen.append(len(messages))
        return "nonsense" if len(messages) == 2 else exemplar_text("GOOD")

    graph, _ = setup(m3cfg(reasons=1, max_parse_retries=1), teacher=teacher_factory(write=write))
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    [child] = [s for s in out["sets"].values() if s["round"] == 1]
    assert seen == [2, 4] and child["status"] == "candidate" and len(child["attempts"]) == 2
    assert out["beams"]["teacher"] == [child["id"]]


async def test_a_down_student_does_not_stop_the_round() -> None:
    def down(messages):
        raise ConnectionError("server gone")

    graph, models = setup(m3cfg(rounds=2, reasons=2), students={"s1": down})
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    for r in (1, 2):
        row = out["rounds"][f"teacher|r{r}"]
        assert row["down"] == ["s1"]
        assert row["minibatch_accuracy"]["s1"] is None
        assert row["minibatch_accuracy"]["s0"] is not None
    assert out["rounds"]["teacher|r2"]["best_score"] == 1.0  # the live student's failures still taught
    assert all(a["status"] == "down" for a in out["answers"].values() if a["student"] == "s1")
    explains = calls(models["teacher"][0], "Explain in a short paragraph")
    assert explains and all("student: s1" not in m[-1]["content"] and "student: s0" in m[-1]["content"]
                            for m in explains)


def test_k_larger_than_training_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"m3.k=5 .* training split has 5"):
        make_plan(5, M3Config(k=5))


def test_f1_of_the_positive_class() -> None:
    problems = [problem(i) for i in range(4)]  # valid, invalid, valid, invalid
    said = ["valid", "invalid", "invalid", None]
    preds = [{"answer": a, "correct": a == p["answer"]} for a, p in zip(said, problems)]
    got = metric_of(problems, preds, M3Config())
    # positive 'valid': tp=1 (p0), fp=0, fn=1 (p2) -> F1 = 2/3; accuracy 2/4
    assert got["metric"] == "f1" and got["value"] == pytest.approx(2 / 3) and got["accuracy"] == 0.5
    # positive 'invalid': tp=1 (p1), fp=1 (p2), fn=1 (p3) -> F1 = 1/2
    assert metric_of(problems, preds, M3Config(positive_label="invalid"))["f1"] == pytest.approx(0.5)
    assert metric_of(problems, preds, M3Config(metric="accuracy"))["value"] == 0.5


async def test_run_writes_results_and_rejects_big_k(tmp_path) -> None:
    data = tmp_path / "data" / "bigbench"
    data.mkdir(parents=True)
    examples = [{"input": f"Argument number {i} ({'valid' if i % 2 == 0 else 'invalid'}-shaped).",
                 "target_scores": {"valid": int(i % 2 == 0), "invalid": int(i % 2 == 1)}} for i in range(30)]
    (data / "formal_fallacies_syllogisms_negation.json").write_text(json.dumps({"examples": examples}))
    classroom = agent_cfgs(2)
    cfg = RunConfig(
        run_id="t", output_dir=tmp_path / "runs", classroom=classroom,
        task=TaskConfig(name="formal_fallacies", data_dir=tmp_path / "data", options={"test_size": 10}),
        m3=m3cfg(rounds=2, reasons=2, test_limit=6),
    )
    models = {"teacher": [ScriptedChatModel(respond=teacher_factory())],
              "s0": [ScriptedChatModel(respond=student)], "s1": [ScriptedChatModel(respond=student)]}
    seen_rounds = []
    result = await arun_m3(cfg, models=models, on_round=lambda rows: seen_rounds.append([r["round"] for r in rows]))
    assert seen_rounds == [[0], [1], [2]]
    assert [r["round"] for r in result.rows] == [0, 1, 2]
    assert result.rows[0]["metric"] == "f1" and result.rows[-1]["test_value"] == 1.0
    for name in ("results.json", "summary.md", "metric_by_round.png", "rounds", "rounds.jsonl"):
        assert (result.run_dir / name).exists(), name
    saved = json.loads((result.run_dir / "results.json").read_text())
    assert set(saved["rounds"]) == {"teacher|r0", "teacher|r1", "teacher|r2"} and saved["reasons"]
    assert "| 2 | teacher |" in (result.run_dir / "summary.md").read_text()

    big = cfg.model_copy(update={"run_id": "big", "m3": m3cfg(k=25)})
    with pytest.raises(ConfigError, match="m3.k=25"):
        await arun_m3(big, models=models)
    assert not (tmp_path / "runs" / "big").exists()  # failed before any work


@pytest.mark.parametrize("command", ["m3", "classroom"])
def test_cli_big_k_is_one_error_line(command, tmp_path, capsys) -> None:
    from lbt_agents.cli import main

    data = tmp_path / "bigbench"
    data.mkdir()
    examples = [{"input": f"A{i}", "target_scores": {"valid": i % 2, "invalid": 1 - i % 2}} for i in range(10)]
    (data / "formal_fallacies_syllogisms_negation.json").write_text(json.dumps({"examples": examples}))
    with pytest.raises(SystemExit) as exc:
        main([command, "--task", "formal_fallacies", "--data-dir", str(tmp_path), "--output-dir", str(tmp_path / "runs"),
              "--set", "task.options.test_size=4", "--set", "m3.k=6", "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: m3.k=6 exemplars need more training problems")
    assert not (tmp_path / "runs").exists()


async def test_a_killed_run_resumes_without_redoing_finished_work(tmp_path) -> None:
    from lbt_agents.config import CacheConfig
    from lbt_agents.errors import EndpointError

    data = tmp_path / "data" / "bigbench"
    data.mkdir(parents=True)
    examples = [{"input": f"Argument number {i} ({'valid' if i % 2 == 0 else 'invalid'}-shaped).",
                 "target_scores": {"valid": int(i % 2 == 0), "invalid": int(i % 2 == 1)}} for i in range(30)]
    (data / "formal_fallacies_syllogisms_negation.json").write_text(json.dumps({"examples": examples}))
    classroom = agent_cfgs(2)
    classroom.teacher.max_retries = 0
    cfg = RunConfig(
        run_id="crash", output_dir=tmp_path / "runs", classroom=classroom, cache=CacheConfig(enabled=False),
        task=TaskConfig(name="formal_fallacies", data_dir=tmp_path / "data", options={"test_size": 10}),
        m3=m3cfg(rounds=2, reasons=1, test_limit=6),  # one reason: R0, a BAD set, so round 2 has failures
    )
    explained = []
    healthy = teacher_factory()

    def flaky(messages, params):
        if "Explain in a short paragraph" in messages[-1]["content"]:
            explained.append(1)
            if len(explained) > 1:  # round 2's explanation finds the teacher gone
                raise ConnectionError("teacher gone")
        return healthy(messages, params)

    first = {"teacher": [ScriptedChatModel(respond=flaky)], "s0": [ScriptedChatModel(respond=student)],
             "s1": [ScriptedChatModel(respond=student)]}
    with pytest.raises(EndpointError):
        await arun_m3(cfg, models=first)
    saved = [json.loads(line)["round"] for line in (tmp_path / "runs" / "crash" / "rounds.jsonl").read_text().splitlines()]
    assert saved == [0, 1]
    round2_answers = len(first["s0"][0].calls)

    second = {"teacher": [ScriptedChatModel(respond=healthy)], "s0": [ScriptedChatModel(respond=student)],
              "s1": [ScriptedChatModel(respond=student)]}
    result = await arun_m3(cfg.model_copy(update={"run_id": None}), resume="crash", models=second)
    assert [r["round"] for r in result.rows] == [0, 1, 2]
    assert round2_answers == 2 * 4  # rounds 1 and 2, one beam set, minibatch 4
    assert second["s0"][0].calls == second["s1"][0].calls == []  # their round-2 answers were checkpointed
    assert len(calls(second["teacher"][0], "Explain in a short paragraph")) == 1  # round 2's only
    # round 2 rewrote the BAD set (a duplicate of round 1's, so not scored); only round 2's test evaluation ran
    predictor_calls = [c for c in second["teacher"][0].calls if is_predictor(c["messages"])]
    assert len(predictor_calls) == 6
    assert result.state["rounds"]["teacher|r2"]["duplicates"] == 1


async def test_a_rejected_teacher_request_is_logged_and_the_round_goes_on() -> None:
    base = teacher_factory()

    def teacher(messages, params):
        if "Explain in a short paragraph" in messages[-1]["content"]:
            raise ValueError("prompt longer than the context")
        return base(messages, params)

    graph, _ = setup(m3cfg(rounds=2, reasons=1), teacher=teacher)
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8})
    assert [e["event"] for e in out["log"]] == ["explain_failed", "explain_failed"]
    assert "prompt longer than the context" in out["log"][0]["detail"]
    assert out["beams"]["teacher"] == ["teacher/r0/init"] and set(out["rounds"]) == {"teacher|r0", "teacher|r1", "teacher|r2"}


async def test_lanes_sharing_a_model_send_identical_requests_once() -> None:
    classroom = ClassroomConfig(
        teacher=AgentConfig(name="t1", role="teacher", sampling=Sampling(temperature=0.8, seed=0)),
        teachers=[AgentConfig(name="t2", role="teacher", sampling=Sampling(temperature=0.8, seed=0))],
        students=[AgentConfig(name="s0", sampling=Sampling(temperature=0.0))],
    )
    models = {name: [ScriptedChatModel(respond=teacher_factory())] for name in ("t1", "t2")}
    models["s0"] = [ScriptedChatModel(respond=student)]
    graph = m3_graph(m3cfg(reasons=1))
    room = Classroom.from_config(classroom, models=models, max_concurrency=8)
    out = await graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 8}, context=room)
    predictor = [c for n in ("t1", "t2") for c in models[n][0].calls if is_predictor(c["messages"])]
    # round 0 (same initial set): 6 scoring + 8 test problems, once for both lanes; round 1: one new
    # set (identical in both lanes too), 6 scoring + 8 test problems
    assert len(predictor) == 2 * (6 + 8)
    assert len(models["s0"][0].calls) == 2 * 4  # students are not shared: each lane's exam is its own
    assert out["rounds"]["t1|r1"]["test_value"] == out["rounds"]["t2|r1"]["test_value"]
