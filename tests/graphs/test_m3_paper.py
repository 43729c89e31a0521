"""M3 under the paper profile (the official LbT-M3 patch on ProTeGi), offline with scripted chat models."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import zlib
from collections import Counter

import pytest

from lbt_agents import Classroom
from lbt_agents.config import (
    AgentConfig,
    ClassroomConfig,
    M3Config,
    RunConfig,
    Sampling,
    load_config,
)
from lbt_agents.errors import ConfigError
from lbt_agents.graphs.m3_prompts import PaperPrompts
from lbt_agents.graphs.m3_refinement import m3_graph, metric_of
from lbt_agents.m3 import arun_m3
from lbt_agents.tasks.classify import LIAR_INSTRUCTION
from lbt_agents.testing import ScriptedChatModel
from lbt_agents.types import Problem


def problem(i: int, split: str = "train") -> Problem:
    lie = i % 3 == 0
    text = f"Statement: claim {split} {i} ({'lie' if lie else 'fact'}-shaped).\nParty: none"
    return Problem(id=f"liar/{split}/{i}", question=f"{LIAR_INSTRUCTION}\n\nText: {text}\nOptions: Yes, No",
                   answer="Yes" if lie else "No", kind="label",
                   meta={"choices": ["Yes", "No"], "instruction": LIAR_INSTRUCTION, "text": text})


TRAIN = [problem(i) for i in range(90)]
TEST = [problem(i, "test") for i in range(30)]


def is_predictor(messages) -> bool:
    return messages[0]["content"].startswith("# Task\n")


def predictor(messages) -> str:
    """Right when the examples carry GOOD, else always 'No' (the replies of a 4-token direct predictor)."""
    prompt = messages[0]["content"]
    examples = prompt.split("# Examples\n", 1)[1].split("# Output format", 1)[0]
    gold = "Yes" if "(lie-shaped)" in prompt.rsplit("# Prediction", 1)[1] else "No"
    return f"{gold}." if "GOOD" in examples else "No, the"


def label_set(tag: str, k: int = 8) -> str:
    return "\n".join(f"### Example {j}\n**Text:** {tag} statement {j}\n**Label:** {'Yes' if j % 2 else 'No'}\n"
                     for j in range(1, k + 1))


def teacher(messages, params) -> str:
    if is_predictor(messages):
        return predictor(messages)
    prompt = messages[-1]["content"]
    if "Wrap each reason with <START> and <END>" in prompt:
        seed = zlib.crc32(prompt.encode()) % 1000  # deterministic per prompt: GOOD and BAD sets both occur
        return (f"<START>R{seed}: the examples never show a lie about numbers at all.<END>\n"
                "<START>Too few lies shown.<END>")  # the second reason has 4 words: dropped
    if "the problem with the current in-context examples is that" in prompt:
        reason = re.search(r"examples is that (R\d+)", prompt).group(1)
        return f"Here you go.\n<START>\n{label_set(('GOOD-' if int(reason[1:]) % 2 else 'BAD-') + reason)}<END>"
    raise AssertionError(f"unexpected teacher prompt: {prompt[:200]}")


def classroom(n_students: int = 2) -> tuple[Classroom, dict]:
    cfg = ClassroomConfig(
        teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.7, seed=0)),
        students=[AgentConfig(name=f"s{i}", sampling=Sampling(temperature=0.9)) for i in range(n_students)],
    )
    models = {"teacher": [ScriptedChatModel(respond=teacher)]}
    models.update({f"s{i}": [ScriptedChatModel(respond=predictor)] for i in range(n_students)})
    return Classroom.from_config(cfg, models=models, max_concurrency=32), models


def paper_m3(**overrides) -> M3Config:
    """The paper profile's M3 settings, with a smaller scoring budget and fewer rounds (test speed)."""
    m3 = RunConfig(profile="paper").m3
    return m3.model_copy(update={"rounds": 2, "score_budget": 400, **overrides})


def predictor_calls(model) -> list[dict]:
    return [c for c in model.calls if is_predictor(c["messages"])]


def asked_text(call: dict) -> str:
    return call["messages"][0]["content"].rsplit("# Prediction\nText: ", 1)[1]


@pytest.fixture(scope="module")
def run():
    room, models = classroom()
    m3 = paper_m3()
    graph = m3_graph(m3, classroom=room)
    out = asyncio.run(graph.ainvoke({"train": TRAIN, "test": TEST}, {"max_concurrency": 32}))
    return out, models, m3


def test_the_paper_profile_sets_the_official_m3_settings() -> None:
    m3 = RunConfig(profile="paper").m3
    assert (m3.prompt_set, m3.init, m3.k, m3.rounds, m3.beam, m3.minibatch) == ("paper", "balanced", 8, 5, 4, 64)
    assert (m3.reasons, m3.failure_sampling, m3.max_failures, m3.min_reason_words, m3.max_new_sets) == \
        (4, "random", 4, 5, 8)
    assert (m3.score_sampling, m3.score_budget, m3.predict_max_tokens) == ("fresh", 2048, 4)
    assert (m3.metric, m3.positive_label, m3.test_limit, m3.max_parse_retries) == ("f1", "Yes", None, 0)
    assert RunConfig().m3 == M3Config()  # the default profile keeps M3's own settings
    cfg = load_config(overrides=["profile=paper", "task.name=liar"])  # label tasks: the patch's sampling
    teacher_sampling, [student] = cfg.classroom.teacher.sampling, cfg.classroom.students
    assert (teacher_sampling.temperature, teacher_sampling.top_p, teacher_sampling.top_k) == (0.7, 1.0, None)
    assert teacher_sampling.max_tokens == 1024 and cfg.classroom.teacher.role == "teacher"
    assert (student.sampling.temperature, student.sampling.top_k) == (0.0, None)
    assert student.sampling.max_tokens > 4  # M1 and the default M3 prompts keep room to reason; the paper prompt set sends 4


async def test_a_default_prompt_set_task_is_refused_under_the_paper_prompts() -> None:
    bad = [Problem(id=f"p{i}", question="Valid?\nOptions: valid, invalid", answer="valid", kind="label",
                   meta={"choices": ["valid", "invalid"]}) for i in range(20)]
    room, models = classroom()
    with pytest.raises(ConfigError, match="m3.prompt_set=paper needs a Yes/No label task"):
        await m3_graph(paper_m3(), classroom=room).ainvoke({"train": bad, "test": bad})
    assert not any(m.calls for ms in models.values() for m in ms)


def test_balanced_initial_set_of_text_label_exemplars(run) -> None:
    out, models, _ = run
    init = out["sets"]["teacher/r0/init"]["exemplars"]
    assert Counter(e["answer"] for e in init) == {"Yes": 4, "No": 4}
    by_text = {p["meta"]["text"]: p for p in TRAIN}
    assert all(e["question"] in by_text and by_text[e["question"]]["answer"] == e["answer"] for e in init)
    assert [e["answer"] for e in init] != ["Yes"] * 4 + ["No"] * 4  # shuffled
    assert all(e["solution"] == "" for e in init)  # no rationale
    first = predictor_calls(models["s0"][0])[0]["messages"]
    assert len(first) == 1 and first[0]["role"] == "user"  # one user message, no system prompt
    prompt = first[0]["content"]
    assert prompt.startswith(f"# Task\n{LIAR_INSTRUCTION}\n\n# Examples\n### Example 1\n**Text:** {init[0]['question']}\n"
                             f"**Label:** {init[0]['answer']}\n\n### Example 2\n")
    assert prompt.endswith("\n\n# Output format\nAnswer Yes or No as labels\n\n# Prediction\nText: " + asked_text(
        predictor_calls(models["s0"][0])[0]).split("\nLabel:")[0] + "\nLabel:")


def test_direct_yes_no_predictors_with_4_tokens(run) -> None:
    out, models, _ = run
    for name in ("teacher", "s0", "s1"):
        calls = predictor_calls(models[name][0])
        assert calls and all(c["kwargs"].get("max_tokens") == 4 and c["kwargs"].get("temperature") == 0.0
                             for c in calls), name
    answers = [a for a in out["answers"].values()]
    assert {a["answer"] for a in answers} == {"Yes", "No"}  # 'Yes.' -> Yes; 'No, the' -> No (first word)
    assert all(a["correct"] == (a["answer"] == a["problem"]["answer"]) for a in answers)


def test_one_minibatch_of_64_per_round_shared_by_every_beam_set(run) -> None:
    out, _, m3 = run
    batches = {}
    beams = {1: {"teacher/r0/init"}, 2: {b["set_id"] for b in out["rounds"]["teacher|r1"]["beam"]}}
    assert len(beams[2]) == 4
    for r in (1, 2):
        per_set: dict[tuple[str, str], set[str]] = {}
        for a in out["answers"].values():
            if a["round"] == r:
                per_set.setdefault((a["set_id"], a["student"]), set()).add(a["problem"]["id"])
        assert len({frozenset(v) for v in per_set.values()}) == 1  # every beam set and student: the same problems
        [batch] = {frozenset(v) for v in per_set.values()}
        assert len(batch) == m3.minibatch == 64
        batches[r] = batch
        assert {s for s, _ in per_set} == beams[r] and {st for _, st in per_set} == {"s0", "s1"}
    assert batches[1] != batches[2]


def test_four_gradients_per_beam_set_each_on_its_own_four_failures(run) -> None:
    out, models, _ = run
    explains = [c["messages"] for c in models["teacher"][0].calls
                if "Wrap each reason with <START> and <END>" in c["messages"][-1]["content"]]
    failing = {(a["set_id"], a["round"]) for a in out["answers"].values() if not a["correct"]}
    assert len(explains) == 4 * len(failing) and len(failing) >= 2  # 4 per beam set with failures, per round
    for messages in explains:
        assert len(messages) == 1 and messages[0]["role"] == "user"
        assert len(re.findall(r"^## Failure Case \d+$", messages[0]["content"], re.MULTILINE)) == 4
        assert "Give 1 reasons why these examples could have gotten these cases wrong." in messages[0]["content"]
    reasons = list(out["reasons"].values())
    for set_id in {x["set_id"] for x in reasons}:
        for r in {x["round"] for x in reasons if x["set_id"] == set_id}:
            mine = [x for x in reasons if x["set_id"] == set_id and x["round"] == r]
            assert sorted({x["gradient"] for x in mine}) == [0, 1, 2, 3]
            samples = {x["gradient"]: tuple(x["failures"]) for x in mine}
            assert all(len(s) == 4 for s in samples.values())
            assert len(set(samples.values())) > 1  # each gradient draws its own sample
            failed = {a["id"] for a in out["answers"].values()
                      if a["set_id"] == set_id and a["round"] == r and not a["correct"]}
            assert all(set(s) <= failed for s in samples.values())  # from the pooled failures of that set


def test_short_reasons_are_dropped_and_each_kept_reason_writes_one_set(run) -> None:
    out, models, _ = run
    reasons = list(out["reasons"].values())
    dropped = [x for x in reasons if x["dropped"]]
    kept = [x for x in reasons if not x["dropped"]]
    assert dropped and all(x["text"] == "Too few lies shown." for x in dropped)
    failing = {(a["set_id"], a["round"]) for a in out["answers"].values() if not a["correct"]}
    assert all(len(x["text"].split()) > 5 for x in kept) and len(kept) == len(dropped) == 4 * len(failing)
    writes = [c for c in models["teacher"][0].calls
              if "the problem with the current in-context examples is that" in c["messages"][-1]["content"]]
    assert len(writes) == len(kept)
    assert "Too few lies shown." not in " ".join(c["messages"][-1]["content"] for c in writes)
    children = [s for s in out["sets"].values() if s["round"] > 0]
    assert sorted(s["reason"] for s in children) == sorted(x["id"] for x in kept)
    good = next(s for s in children if s["status"] == "candidate" and "GOOD" in s["exemplars"][0]["question"])
    assert len(good["exemplars"]) == 8 and good["exemplars"][0]["solution"] == ""
    assert re.fullmatch(r"GOOD-R\d+ statement 1", good["exemplars"][0]["question"]) and good["exemplars"][0]["answer"] == "Yes"


def test_beam_of_four_rescored_with_the_originals_on_a_fresh_sample(run) -> None:
    out, _, m3 = run
    scores = out["scores"]
    assert scores["teacher/r0/init@r0"]["n"] == 0  # one set: nothing to rank (officially scored 1.0)
    samples = {}
    for r in (1, 2):
        ranked = [v for v in scores.values() if v["round"] == r]
        sample = {tuple(sorted(p["problem_id"] for p in v["predictions"])) for v in ranked}
        assert len(sample) == 1  # all of a round's sets on the same problems
        [samples[r]] = sample
        assert len(samples[r]) == min(len(TRAIN), m3.score_budget // len(ranked))
        previous_beam = ["teacher/r0/init"] if r == 1 else out["rounds"]["teacher|r1"]["beam"]
        previous_beam = [b if isinstance(b, str) else b["set_id"] for b in previous_beam]
        assert all(f"{sid}@r{r}" in scores for sid in previous_beam)  # originals re-scored this round
        beam = [b["set_id"] for b in out["rounds"][f"teacher|r{r}"]["beam"]]
        best = sorted((v["score"] for v in ranked), reverse=True)[:4]
        assert [scores[f"{sid}@r{r}"]["score"] for sid in beam] == best and len(beam) == min(4, len(ranked))
    assert samples[1] != samples[2]
    assert out["rounds"]["teacher|r2"]["test_f1"] == 1.0 and out["rounds"]["teacher|r0"]["test_f1"] == 0.0


def test_f1_counts_yes_as_the_positive_class() -> None:
    m3 = RunConfig(profile="paper").m3
    golds, said = ["Yes", "Yes", "No", "No", "Yes"], ["Yes", "No", "Yes", "No", "Yes"]
    problems = [problem(0)] * 5
    problems = [{**p, "answer": g} for p, g in zip(problems, golds)]
    preds = [{"answer": s, "correct": s == g} for s, g in zip(said, golds)]
    out = metric_of(problems, preds, m3)
    tp, fp, fn = 2, 1, 1
    assert out["metric"] == "f1" and out["positive"] == "Yes" and out["value"] == 2 * tp / (2 * tp + fp + fn)
    flipped = metric_of(problems, preds, m3.model_copy(update={"positive_label": "No"}))["value"]
    assert flipped == 2 * 1 / (2 * 1 + 1 + 1) and out["accuracy"] == 3 / 5


def test_the_explain_prompt_is_the_official_text() -> None:
    k, instruction = 8, LIAR_INSTRUCTION
    exemplars = [{"question": "Statement: a.\nParty: b", "solution": "", "answer": "Yes"}]
    failures = [{"problem": problem(3), "answer": "No"}]
    icl = "### Example 1\n**Text:** Statement: a.\nParty: b\n**Label:** Yes"
    error = f'## Failure Case 1\nText: "{problem(3)["meta"]["text"]}"\nLabel: Yes\nPrediction: No'
    official = f"""
        I'm trying to write {k} in-context learning examples for a few-shot classifier.
        The classifier will answer this question:
        "{instruction}"
    
        My current {k} in-context learning examples are:
        "{icl}"

        But with these examples, the classifier got the following cases wrong:
        {error}

        Give 1 reasons why these examples could have gotten these cases wrong.
        Wrap each reason with <START> and <END>
        """
    official = "\n".join(line.lstrip() for line in official.split("\n"))
    prompts = PaperPrompts()
    shown = prompts.failures(failures, 400)
    assert shown == error
    [message] = prompts.explain_messages(None, exemplars, shown, [problem(0)], k)  # type: ignore[arg-type]
    assert message == {"role": "user", "content": official}
    assert prompts.reasons("<START> a b <END> x <START>c<END><START>open") == ["a b", "c"]
    assert prompts.parse_set("junk <START>### Example 1\nText: t1\nLabel: yes\n<END>", 8, ["Yes", "No"]) == [
        {"question": "t1", "solution": "", "answer": "Yes"}]


async def test_repeats_report_mean_std_and_standard_error(tmp_path, monkeypatch) -> None:
    import lbt_agents.graphs.m3_refinement as graph_module

    cfg = RunConfig(profile="paper", output_dir=tmp_path, run_id="reps",
                    classroom=ClassroomConfig(
                        teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.7, seed=0)),
                        students=[AgentConfig(name="s0")]),
                    m3=paper_m3(rounds=1, repeats=2, score_budget=100, minibatch=16))
    monkeypatch.setattr(graph_module, "inputs", lambda cfg: {"train": TRAIN, "test": TEST})  # the fixtures above
    models = {"teacher": [ScriptedChatModel(respond=teacher)], "s0": [ScriptedChatModel(respond=predictor)]}
    result = await arun_m3(cfg, models=models)
    summary = json.loads((tmp_path / "reps" / "repeats.json").read_text())
    assert summary["finished"] == 2 and summary["seeds"] == [0, 1]
    runs = [json.loads((tmp_path / "reps" / f"rep{i}" / "summary.json").read_text()) for i in range(2)]
    assert [r["m3"]["seed"] for r in runs] == [0, 1]
    for row in summary["by_round"]:
        values = [json.loads(line)["test_value"] for i in range(2)
                  for line in (tmp_path / "reps" / f"rep{i}" / "rounds.jsonl").read_text().splitlines()
                  if json.loads(line)["round"] == row["round"]]
        assert row["values"] == values and row["mean"] == statistics.fmean(values)
        assert row["std"] == statistics.stdev(values) and row["sem"] == statistics.stdev(values) / 2 ** 0.5
    assert "mean ± std" in (tmp_path / "reps" / "summary.md").read_text()
    assert (tmp_path / "reps" / "metric_by_round.png").stat().st_size > 0
    assert {r["repeat"] for r in result.rows} == {0, 1}
    calls = sum(len(m.calls) for ms in models.values() for m in ms)
    again = await arun_m3(cfg.model_copy(update={"run_id": None}), resume="reps", models=models)
    assert sum(len(m.calls) for ms in models.values() for m in ms) == calls  # finished repeats: nothing asked again
    assert again.summary["by_round"] == summary["by_round"]
    with pytest.raises(ConfigError, match="run 'reps' already exists.*--resume reps"):
        await arun_m3(cfg, models=models)


async def test_a_budget_caps_all_repeats_and_its_stop_names_the_whole_run(tmp_path, monkeypatch) -> None:
    import lbt_agents.graphs.m3_refinement as graph_module
    from lbt_agents.budget import BudgetExhausted, Spent
    from lbt_agents.config import BudgetConfig

    monkeypatch.setattr(graph_module, "inputs", lambda cfg: {"train": TRAIN, "test": TEST})

    def config(run_id: str, budget: BudgetConfig) -> RunConfig:
        return RunConfig(profile="paper", output_dir=tmp_path, run_id=run_id, budget=budget,
                         classroom=ClassroomConfig(
                             teacher=AgentConfig(name="teacher", role="teacher", sampling=Sampling(temperature=0.7, seed=0)),
                             students=[AgentConfig(name="s0")]),
                         m3=paper_m3(rounds=1, repeats=2, score_budget=100, minibatch=16))

    def models() -> dict:
        return {"teacher": [ScriptedChatModel(respond=teacher)], "s0": [ScriptedChatModel(respond=predictor)]}

    await arun_m3(config("free", BudgetConfig()), models=models())
    per_repeat = [Spent.load(tmp_path / "free" / f"rep{i}").requests for i in range(2)]
    assert all(n > 0 for n in per_repeat)
    cap = per_repeat[0] + per_repeat[1] // 2  # enough for the first repeat and half the second
    with pytest.raises(BudgetExhausted, match=r"run 'capped' stopped at its budget: .*--resume capped "):
        await arun_m3(config("capped", BudgetConfig(max_requests=cap)), models=models())
    spent = [Spent.load(tmp_path / "capped" / f"rep{i}").requests for i in range(2)]
    assert spent[0] == per_repeat[0] and 0 < spent[1] and sum(spent) <= cap  # one cap over both repeats
    done = await arun_m3(config(None, BudgetConfig(max_requests=sum(per_repeat) + 10)), resume="capped", models=models())
    assert done.summary["finished"] == 2


def test_ties_are_ranked_as_the_official_sort_does() -> None:
    def set_(sid: str, text: str) -> dict:
        return {"id": sid, "exemplars": [{"question": text, "solution": "", "answer": "Yes"}]}

    sets = [set_("old", "apple"), set_("new1", "pear"), set_("new2", "banana"), set_("new3", "zebra")]
    ranked = PaperPrompts().ranked(sets, [0.5, 0.5, 0.5, 0.25])
    assert [s["id"] for s in ranked] == ["new1", "new2", "old", "new3"]  # among ties: the larger prompt text first
    from lbt_agents.graphs.m3_prompts import M3Prompts

    assert [s["id"] for s in M3Prompts().ranked(sets, [0.5, 0.5, 0.5, 0.25])] == ["old", "new1", "new2", "new3"]


def test_the_dry_run_plan_counts_every_repeat() -> None:
    from lbt_agents.plan import plan_m3

    train = [{"id": f"t{i}", "kind": "label", "question": f"q{i}", "answer": "Yes" if i % 2 else "No",
              "meta": {"choices": ["Yes", "No"]}} for i in range(40)]
    test = train[:6]
    one = RunConfig.model_validate({"task": {"name": "liar"}, "m3": {"k": 4, "rounds": 2, "repeats": 1}})
    three = one.model_copy(update={"m3": one.m3.model_copy(update={"repeats": 3})})
    a, b = plan_m3(one, train, test), plan_m3(three, train, test)
    assert a.requests > 0 and b.requests == 3 * a.requests and "× 3 repeats" in b.about
