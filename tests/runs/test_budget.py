"""Budgets and plans: `--dry-run` calls no model, `budget.max_requests` stops a run at exactly that many
requests, `--resume` with a larger budget finishes it with the results of a run without one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from lbt_agents import RunConfig, ScriptedChatModel
from lbt_agents.budget import Budget, BudgetExhausted, Spent
from lbt_agents.config import AgentConfig
from lbt_agents.llm import CallLimits, ChatAgent
from lbt_agents.stub import StubServer
from tests.runs._cli import RUN_COMMANDS, lbt_here, one_line

ANSWER = "Add them up. [[Final Answer]]: 3"


def m1_data(output_dir: Path, base_url: str = "embedded", **more: object) -> dict:
    agent = {"base_url": base_url, "max_retries": 0}
    return {
        "output_dir": str(output_dir),
        "task": {"name": "gsm8k_functional", "limit": 2, "eps_per_tp": 2},
        "classroom": {"teacher": {**agent, "name": "teacher", "role": "teacher", "model": "t", "sampling": {"n": 3}},
                      "students": [{**agent, "name": "s", "model": "s"}]},
        "m1": {"pairs_per_tp": 3},
        **more,
    }


def lbt_out(*args: str) -> tuple[int, str, str]:
    """``lbt ARGS`` in this process: (exit code, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from lbt_agents.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


# -- --dry-run -----------------------------------------------------------------------------------------


def m3_data(tmp_path: Path) -> Path:
    """A formal_fallacies data folder (M3 needs a label task with enough training problems)."""
    data = tmp_path / "data" / "bigbench"
    data.mkdir(parents=True)
    examples = [{"input": f"Argument number {i} ({'valid' if i % 2 == 0 else 'invalid'}-shaped).",
                 "target_scores": {"valid": int(i % 2 == 0), "invalid": int(i % 2 == 1)}} for i in range(30)]
    (data / "formal_fallacies_syllogisms_negation.json").write_text(json.dumps({"examples": examples}))
    return tmp_path / "data"


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_dry_run_prints_the_plan_and_sends_nothing(command: list[str], tmp_path: Path) -> None:
    with StubServer(text=ANSWER, models=("t", "s")) as stub:
        config = write_config(tmp_path / "run.yaml", m1_data(tmp_path / "runs", stub.base_url))
        args = [*command, "--config", str(config), "--dry-run", "--set", "budget.max_requests=5"]
        if command[0] in ("m3", "classroom"):
            args += ["--task", "formal_fallacies", "--data-dir", str(m3_data(tmp_path)), "--set", "m3.k=2",
                     "--set", "task.options.test_size=6", "--limit", "12"]
        code, out, err = lbt_out(*args)
        assert stub.requests == 0
    assert code == 0, err
    assert "Plan: " in out and "| requests |" not in out  # rendered, not raw Markdown
    assert "teacher" in out and "dry run: no model was called and no server started" in out
    assert "budget: max_requests 5: the run stops at the budget before the plan is done" in out
    assert not (tmp_path / "runs").exists()  # nothing written


def test_dry_run_with_embedded_agents_starts_no_server(tmp_path: Path, monkeypatch) -> None:
    import lbt_agents.runs
    import lbt_agents.serving

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started a server")

    monkeypatch.setattr(lbt_agents.serving, "serve_classroom", refuse)
    monkeypatch.setattr(lbt_agents.runs, "embedded_endpoints", refuse)
    config = write_config(tmp_path / "run.yaml", m1_data(tmp_path / "runs"))  # base_url: embedded
    code, out, err = lbt_out("m1", "--config", str(config), "--dry-run", "--set", "m1.adaptive.enabled=true")
    assert code == 0, err
    assert "adaptive M1 takes fewer exams" in out and "this is the full plan" in out


def test_the_plan_is_what_a_run_sends(tmp_path: Path) -> None:
    """Every pair answered, no adaptive M1: the run sends exactly the planned requests, and no prompt is
    longer than the plan's estimate of it."""
    from lbt_agents.m1 import M1_GRAPH, run_m1
    from lbt_agents.plan import estimate_tokens
    from lbt_agents.runner import plan_graph

    with StubServer(text=ANSWER, models=("t", "s")) as stub:  # an endpoint: the teacher's samples in one request
        served = RunConfig.model_validate({**m1_data(tmp_path / "served", stub.base_url), "run_id": "served"})
        plan = plan_graph(M1_GRAPH, served)
        run_m1(served, progress=False)
        assert plan.requests == stub.requests == 2 * (1 + 1) + 2 * 3 * 2  # 2 TPs × (n-request + greedy) + exams
    cfg = RunConfig.model_validate({**m1_data(tmp_path), "run_id": "planned"})
    teacher, student = ScriptedChatModel(respond=lambda m: ANSWER), ScriptedChatModel(respond=lambda m: ANSWER)
    run_m1(cfg, models={"teacher": teacher, "s": student}, progress=False)
    assert {s.phase: s.requests for s in plan.steps if s.phase == "exam"} == {"exam": len(student.calls)}
    sent = sum(estimate_tokens(c["messages"]) for c in student.calls)
    exam = next(s for s in plan.steps if s.phase == "exam")
    assert sent <= exam.prompt_tokens <= sent + exam.requests * cfg.classroom.teacher.sampling.max_tokens
    assert exam.completion_tokens == exam.requests * cfg.classroom.students[0].sampling.max_tokens


# -- the budget ----------------------------------------------------------------------------------------


async def test_a_budget_admits_exactly_max_requests_and_lets_those_in_flight_finish() -> None:
    finished: list[int] = []
    model = ScriptedChatModel(respond=lambda m: ANSWER)
    budget = Budget(max_requests=7)
    agent = ChatAgent(AgentConfig(name="a", model="t"), models=[model], limits=CallLimits(4, budget=budget))

    async def one(i: int) -> None:
        await agent.sample([{"role": "user", "content": f"q{i}"}], n=1)
        finished.append(i)

    results = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, BudgetExhausted)]
    assert len(model.calls) == 7 and len(finished) == 7 and len(refused) == 13
    assert budget.in_flight == 0 and budget.spent.requests == 7
    assert budget.spent.tokens == sum(len(c["messages"][0]["content"].split()) + len(ANSWER.split())
                                      for c in model.calls)


def test_spent_usage_survives_a_torn_file(tmp_path: Path) -> None:
    Spent(requests=3, prompt_tokens=10, completion_tokens=5).save(tmp_path)
    assert Spent.load(tmp_path) == Spent(3, 10, 5)
    (tmp_path / "usage.json").write_text("{not json")
    assert Spent.load(tmp_path) == Spent()


def test_a_run_stops_at_its_budget_and_resumes_with_a_larger_one(tmp_path: Path, capsys) -> None:
    """Exactly max_requests requests reach the server, the summary says so (exit 5); resuming with the same
    budget sends nothing, with a larger one the run finishes without asking anything twice."""
    with StubServer(text=ANSWER, models=("t", "s")) as stub:
        config = write_config(tmp_path / "run.yaml", m1_data(tmp_path / "runs", stub.base_url))
        code, err = lbt_here("m1", "--config", str(config), "--run-id", "b", "--no-progress",
                             "--set", "budget.max_requests=11")
        assert stub.requests == 11
        assert code == 5, err
        assert err.strip().splitlines() == [
            "stopped: run 'b' stopped at its budget: 11 requests (of 11), "
            f"{Spent.load(tmp_path / 'runs' / 'b').tokens} tokens (no cap); finished work is saved, continue it "
            "with --resume b --set budget.max_requests=<larger>"]
        summary = json.loads((tmp_path / "runs" / "b" / "summary.json").read_text())
        assert summary["stopped"] == "budget"
        assert summary["budget"]["requests"] == 11 and summary["budget"]["max_requests"] == 11
        assert summary["finished_in_last_step"] == {"exam": 11 - 2 * (1 + 1)}  # the admitted exams finished
        # (per TP: one teacher request for its 3 samples with n, and the greedy one)
        assert "stopped at its budget" in (tmp_path / "runs" / "b" / "summary.md").read_text()

        resume = ("m1", "--resume", "b", "--output-dir", str(tmp_path / "runs"), "--no-progress")
        code, err = lbt_here(*resume)  # the budget is spent: nothing more is sent
        assert code == 5 and stub.requests == 11, err
        code, err = lbt_here(*resume, "--set", "budget.max_requests=100")
        assert code == 0, err
        assert stub.requests == 2 * (1 + 1) + 2 * 3 * 2  # every request once (the teacher's samples with n)
    assert Spent.load(tmp_path / "runs" / "b").requests == 16
    summary = json.loads((tmp_path / "runs" / "b" / "summary.json").read_text())
    assert "stopped" not in summary and summary["tps"] == 2
    capsys.readouterr()


def test_a_token_budget_stops_the_run(tmp_path: Path) -> None:
    """Checked before each request: the requests in flight when it is reached finish (past it)."""
    from lbt_agents.m1 import run_m1

    cfg = RunConfig.model_validate({**m1_data(tmp_path, max_concurrency=1), "run_id": "t", "budget": {"max_tokens": 50}})
    teacher, student = ScriptedChatModel(respond=lambda m: ANSWER), ScriptedChatModel(respond=lambda m: ANSWER)
    with pytest.raises(BudgetExhausted, match=r"tokens \(of 50\)"):
        run_m1(cfg, models={"teacher": teacher, "s": student}, progress=False)
    spent = Spent.load(tmp_path / "t")
    assert spent.tokens >= 50 and spent.requests == len(teacher.calls) + len(student.calls) < 20


def m1_models() -> dict:
    def respond(messages) -> str:  # deterministic, and different per prompt
        n = len(messages[-1]["content"])
        return f"Step {n % 5}. [[Final Answer]]: {n % 3}"

    return {"teacher": ScriptedChatModel(respond=respond), "s": ScriptedChatModel(respond=respond)}


def test_a_budgeted_run_resumed_ends_with_the_results_of_an_unbudgeted_one(tmp_path: Path) -> None:
    from lbt_agents.m1 import run_m1
    from lbt_agents.runs import resume_config

    data = {**m1_data(tmp_path), "max_concurrency": 3}
    whole = run_m1(RunConfig.model_validate({**data, "run_id": "whole"}), models=m1_models(), progress=False)
    with pytest.raises(BudgetExhausted):
        run_m1(RunConfig.model_validate({**data, "run_id": "capped", "budget": {"max_requests": 9}}),
               models=m1_models(), progress=False)
    for more in (13, 1000):  # stops again, then finishes
        try:
            resumed = run_m1(resume_config(tmp_path, "capped", [f"budget.max_requests={more}"]), resume="capped",
                             models=m1_models(), progress=False)
        except BudgetExhausted:
            assert more == 13
    assert resumed.results == whole.results
    assert resumed.summary["accuracy"] == whole.summary["accuracy"]
    assert Spent.load(tmp_path / "capped").requests == Spent.load(tmp_path / "whole").requests == 20


async def test_an_m3_run_stops_at_its_budget_and_resumes(tmp_path: Path) -> None:
    """M3's nodes record a failed request as an answer: a budget stop must not be one of them."""
    from lbt_agents.config import BudgetConfig, TaskConfig
    from lbt_agents.m3 import arun_m3
    from lbt_agents.runs import resume_config
    from tests.graphs.test_m3_refinement import agent_cfgs, m3cfg, student, teacher_factory

    def models() -> dict:
        return {"teacher": [ScriptedChatModel(respond=teacher_factory())], "s0": [ScriptedChatModel(respond=student)],
                "s1": [ScriptedChatModel(respond=student)]}

    task = TaskConfig(name="formal_fallacies", data_dir=m3_data(tmp_path), options={"test_size": 10})
    cfg = RunConfig(output_dir=tmp_path / "runs", classroom=agent_cfgs(2), task=task,
                    m3=m3cfg(rounds=2, reasons=2, test_limit=6), max_concurrency=4)
    whole = await arun_m3(cfg.model_copy(update={"run_id": "whole"}), models=models())
    with pytest.raises(BudgetExhausted):
        await arun_m3(cfg.model_copy(update={"run_id": "capped", "budget": BudgetConfig(max_requests=30)}), models=models())
    capped = json.loads((tmp_path / "runs" / "capped" / "summary.json").read_text())
    assert capped["stopped"] == "budget" and capped["budget"]["requests"] == 30
    resumed = await arun_m3(resume_config(tmp_path / "runs", "capped", ["budget.max_requests=null"]), resume="capped",
                            models=models())
    assert resumed.rows == whole.rows
    assert not any(a["status"] != "ok" for a in resumed.state["answers"].values())


@pytest.mark.parametrize(("override", "message"), [
    ("budget.max_requests=0", "error: config: budget.max_requests: Input should be greater than or equal to 1"),
    ("budget.max_tokens=-5", "error: config: budget.max_tokens: Input should be greater than or equal to 1"),
    ("budget.max_requests=lots", "error: config: budget.max_requests: Input should be a valid integer"),
    ("budget.max_cost=3", "error: config: budget.max_cost: Extra inputs are not permitted"),
])
def test_bad_budget_values_are_one_error_line(override: str, message: str, tmp_path: Path, capsys) -> None:
    code, err = lbt_here("m1", "--output-dir", str(tmp_path), "--set", override, "--dry-run")
    assert one_line(code, err).startswith(message)
    assert code == 2


# -- ETA -----------------------------------------------------------------------------------------------


def test_eta_from_the_pace_of_finished_requests() -> None:
    from lbt_agents.progress import GraphProgress, eta_seconds, format_eta

    assert eta_seconds(0, 100, 5.0) is None
    assert eta_seconds(25, 100, 10.0) == 30.0
    assert eta_seconds(60, 100, 10.0, done_at_start=50) == 40.0  # a resumed run: only this session's pace
    assert [format_eta(s) for s in (None, 7.2, 185, 3725)] == ["ETA ?", "ETA 7s", "ETA 3m05s", "ETA 1h02m"]
    progress = GraphProgress(total_tps=2, exams_per_tp=6, planned_requests=20)
    budget = Budget(spent=Spent(requests=4))
    progress.watch(budget)
    assert progress.eta() == "ETA ?"
    budget.spent.requests = 12
    assert progress.eta().startswith("ETA ") and progress.eta() != "ETA ?"


def test_the_progress_line_shows_requests_and_eta(tmp_path: Path, capsys) -> None:
    from lbt_agents.m1 import run_m1

    cfg = RunConfig.model_validate({**m1_data(tmp_path), "run_id": "eta"})
    run_m1(cfg, models=m1_models(), progress=True)  # not a terminal: progress lines
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress:")][-1]
    assert "requests 20/20, ETA 0s" in last


@pytest.mark.parametrize("command", [["m2", "prefs"], ["run", "lbt_agents.graphs.m1_scoring:from_config"]],
                         ids=lambda c: c[0])
def test_every_m1_run_command_stops_at_its_budget(command: list[str], tmp_path: Path) -> None:
    with StubServer(text=ANSWER, models=("t", "s")) as stub:
        config = write_config(tmp_path / "run.yaml", m1_data(tmp_path / "runs", stub.base_url))
        code, out, err = lbt_out(*command, "--config", str(config), "--run-id", "b", "--no-progress",
                                 "--set", "budget.max_requests=7")
        assert stub.requests == 7
    assert code == 5 and err.startswith("stopped: run 'b' stopped at its budget: 7 requests (of 7)"), err
    assert json.loads((tmp_path / "runs" / "b" / "summary.json").read_text())["stopped"] == "budget"
