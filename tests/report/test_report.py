"""``lbt report``: what the page says about M1 and M3 runs, side by side, and on bad input."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.report import write_report
from lbt_agents.report._selection import by_tp, choose, pairs_curve
from lbt_agents.tables import read_table


def lbt(*args: str) -> int:
    """``lbt ARGS`` in this process; its exit status."""
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def report_of(tmp_path: Path, *run_dirs: Path) -> tuple[str, dict]:
    result = write_report(list(run_dirs), tmp_path / "out")
    return result.path.read_text(), json.loads((tmp_path / "out" / "report.json").read_text())


def test_m1_summary_carries_auroc_and_intervals(runs: dict[str, Path]) -> None:
    summary = json.loads((runs["m1"] / "summary.json").read_text())
    # every TP has exactly one good pair (scored 1.0 by both students), the 3 bad ones 0.0
    assert summary["auroc"] == {"value": 1.0, "low": 1.0, "high": 1.0, "right": 6, "wrong": 18, "tps": 6}
    # 6 of 6 and 0 of 6: the bootstrap cannot resample, so the exact (Clopper-Pearson) interval
    best = summary["accuracy_ci"]["max"]
    assert best["value"] == 1.0 and best["low"] == pytest.approx(0.5407, abs=1e-4) and best["high"] == 1.0
    assert summary["accuracy_ci"]["sc"]["high"] == pytest.approx(0.4593, abs=1e-4)
    assert "AUROC of LbT scores, right vs wrong pairs: 1.00 [1.00, 1.00]" in (runs["m1"] / "summary.md").read_text()


def test_selection_replayed_from_the_tables_is_the_runs_own(runs: dict[str, Path]) -> None:
    pairs = read_table(runs["m1b"], "pairs").to_list()
    tps = {t["tp_id"]: t for t in read_table(runs["m1b"], "tps").to_list()}
    for tp_id, mine in by_tp(pairs).items():
        for mode in ("sc", "max", "sum", "avg"):
            sel = choose(mode, mine)
            assert (sel.correct, sel.votes) == (tps[tp_id][f"{mode}_correct"], tps[tp_id][f"{mode}_votes"])
    curve = pairs_curve(by_tp(pairs), draws=50)
    assert [p["n"] for p in curve["max"]] == [1, 2, 3, 4]
    assert curve["max"][-1]["value"] == 1.0 and curve["sc"][-1]["value"] == 0.0  # all 4 pairs: the run's result
    assert curve["max"][0]["value"] == pytest.approx(0.25, abs=0.1)  # one pair in four is right


def test_m1_report_has_every_section_and_a_drilldown_per_tp(runs: dict[str, Path], tmp_path: Path) -> None:
    page, stats = report_of(tmp_path, runs["m1"])
    m1 = stats["runs"]["m1"]
    assert m1["accuracy"]["M1-MAX"]["value"] == 1.0 and m1["accuracy"]["SC"]["value"] == 0.0
    assert m1["vs_sc"]["M1-MAX"]["mcnemar"] == {"only_a": 6, "only_b": 0, "p": pytest.approx(2 / 2**6)}
    assert set(m1["students"]) == {"s0", "s1"} and m1["students"]["s0"]["select_max"]["value"] == 1.0
    assert set(m1["curve"]) == {"SC", "M1-MAX", "M1-SUM"}
    for heading in ("Accuracy per method", "Accuracy against TR-TA pairs per TP", "Do LbT scores separate",
                    "Per student", "Tokens, requests and time per agent", 'id="summary"'):
        assert heading in page, heading
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    embedded = re.findall(r'<img class="plot" alt="[^"]*" data-file="([^"]+)" src="data:image/png;base64,', page)
    assert sorted(embedded) == pngs and len(pngs) == 6
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing from the network
    assert page.count('<details class="tp"') == 6 and "why it won" in page and "best LbT score 1.00" in page


def test_m3_report_shows_rounds_failures_reasons_and_sets(runs: dict[str, Path], tmp_path: Path) -> None:
    page, stats = report_of(tmp_path, runs["m3"])
    assert stats["runs"]["m3"]["kind"] == "m3" and stats["runs"]["m3"]["lanes"]["teacher"]["last"] == 1.0
    assert page.count('<details class="round"') == 2
    assert "Failures the teacher saw" in page and "R1: the examples show only one kind" in page
    assert "GOOD argument 1." in page and (tmp_path / "out" / "0-m3-metric-by-round.png").is_file()


def test_runs_on_the_same_tps_are_paired(runs: dict[str, Path], tmp_path: Path) -> None:
    page, stats = report_of(tmp_path, runs["m1"], runs["m1b"], runs["m1"])  # the same folder twice is one run
    assert list(stats["runs"]) == ["m1", "m1b"]
    d = stats["compare"]["m1b - m1"]["M1-MAX"]
    assert d["tps"] == 6 and d["diff"]["value"] == 0.0 and d["mcnemar"]["p"] == 1.0
    assert 'id="compare"' in page and "compare-accuracy.png" in page and not stats["notes"]


def test_runs_of_different_tasks_say_why_they_are_not_paired(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    assert lbt("report", str(runs["m1"]), str(runs["m1-math"]), "--out", str(tmp_path / "out")) == 0
    out = capsys.readouterr().out
    assert "cannot be paired: they are on different tasks" in out and f"report: {tmp_path / 'out'}" in out
    page = (tmp_path / "out" / "report.html").read_text()
    assert "cannot be paired" in page and 'id="compare"' not in page


def test_not_a_run_is_one_error_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "notarun").mkdir()
    for target in (tmp_path / "notarun", tmp_path / "missing"):
        assert lbt("report", str(target)) != 0
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "notarun" / "report").exists()


def test_out_must_be_new_empty_or_an_earlier_report(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    mine = tmp_path / "photos"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not a plot")
    assert lbt("report", str(runs["m3"]), "--out", str(mine)) != 0
    assert "is not empty and holds no report" in capsys.readouterr().err and (mine / "holiday.png").exists()
    again = tmp_path / "again"
    assert lbt("report", str(runs["m1"]), "--out", str(again)) == 0
    assert lbt("report", str(runs["m3"]), "--out", str(again)) == 0  # an earlier report's plots are replaced
    assert sorted(p.name for p in again.glob("*.png")) == ["0-m3-metric-by-round.png", "0-m3-usage.png"]


def test_an_unfinished_run_reports_what_it_saved_and_says_so(runs: dict[str, Path], tmp_path: Path, capsys) -> None:
    run = tmp_path / "m1-stopped"
    shutil.copytree(runs["m1"], run, ignore=shutil.ignore_patterns("report", "summary.*", ".lock"))
    assert lbt("report", str(run)) == 0
    out = capsys.readouterr().out
    assert "has not finished" in out and f"report: {run / 'report' / 'report.html'}" in out
    page = (run / "report" / "report.html").read_text()
    assert "has not finished" in page and "NOT FINISHED" in page and page.count('<details class="tp"') == 6

    stopped = tmp_path / "m1-budget"  # stopped at its budget: a summary, but not all the work
    shutil.copytree(runs["m1"], stopped, ignore=shutil.ignore_patterns("report", ".lock"))
    summary = json.loads((stopped / "summary.json").read_text())
    (stopped / "summary.json").write_text(json.dumps({**summary, "stopped": "budget"}))
    assert lbt("report", str(stopped)) == 0
    assert "note: run 'm1-budget' stopped early (budget)" in capsys.readouterr().out

    for name in ("tps", "pairs", "exams", "shards"):  # nothing saved yet: nothing to show
        shutil.rmtree(run / name, ignore_errors=True)
    assert lbt("report", str(run)) != 0 and "error: run 'm1-stopped' has not finished" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["m1", "m3"])
def test_run_commands_end_with_the_reports_path(command: str, runs: dict[str, Path], tmp_path: Path, capsys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from lbt_agents.m1 import M1Result
    from lbt_agents.m3 import M3Result

    run = tmp_path / command
    shutil.copytree(runs[command], run, ignore=shutil.ignore_patterns("report", ".lock"))
    summary = json.loads((run / "summary.json").read_text())
    done = {"m1": lambda cfg, **kw: M1Result(run, summary, {}),
            "m3": lambda cfg, **kw: M3Result(run, [], summary, {})}[command]
    monkeypatch.setattr(f"lbt_agents.{command}.run_{command}", done)
    assert lbt(command, "--output-dir", str(tmp_path), "--no-progress") == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == f"report: {run / 'report' / 'report.html'}"
    assert (run / "report" / "report.html").is_file()
    if command == "m1":
        assert "AUROC of LbT scores, right vs wrong pairs: 1.00 [1.00, 1.00]" in out


def test_m2_report_has_pair_statistics_and_the_held_out_table(tmp_path: Path) -> None:
    from lbt_agents import M1Config, RunConfig
    from lbt_agents.m2 import arun_m2_prefs
    from tests.graphs.test_m1_scoring import ITEMS, classroom
    from tests.graphs.test_m2_preferences import models

    cfg = RunConfig(run_id="p", output_dir=tmp_path, classroom=classroom(students=1), m1=M1Config(pairs_per_tp=4),
                    task={"name": "gsm8k", "limit": 2}, max_concurrency=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("lbt_agents.tasks.load_task", lambda c: ITEMS)
        prefs = asyncio.run(arun_m2_prefs(cfg, models=models(), progress=False))
    held_out = tmp_path / "eval"  # what `lbt m2 eval --out eval` writes
    held_out.mkdir()
    (held_out / "m2_eval.json").write_text(json.dumps({"task": {"name": "gsm8k"}, "problems": 20, "models": {
        "base": {"model": "smollm2-135m", "accuracy": 0.25, "correct": 5, "truncated": 1},
        "m2": {"model": "runs/dpo/merged", "accuracy": 0.4, "correct": 8, "truncated": 0}}}))
    page, stats = report_of(tmp_path, prefs.run_dir, held_out)
    assert stats["runs"]["p"]["kind"] == "m2" and stats["runs"]["p"]["prefs"]["m2"] == {"pairs": 6, "tps": 2,
                                                                                        "mean_gap": 1.0}
    heldout = stats["runs"]["eval"]["heldout"]
    assert heldout["m2"]["value"] == 0.4 and heldout["m2"]["low"] < 0.4 < heldout["m2"]["high"]
    assert "M2 preference pairs" in page and "M2 held-out evaluation: greedy accuracy on 20 problems" in page


def test_a_code_runs_report_has_the_s_score_table(runs: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "code"
    shutil.copytree(runs["m1"], run, ignore=shutil.ignore_patterns("report", ".lock"))
    summary = json.loads((run / "summary.json").read_text())
    code = {"avg": 0.5, "m1_max": 0.75, "avg_v1": 0.6, "m1_max_v1": 0.8, "tps_with_v1": 4}
    (run / "summary.json").write_text(json.dumps({**summary, "code": code}))
    page, _ = report_of(tmp_path, run)
    assert "Hidden-test pass rate (S-score)" in page and "<td>75.0%</td><td>60.0%</td>" in page


def test_a_failing_report_leaves_the_run_a_success(runs: dict[str, Path], tmp_path: Path, capsys,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from lbt_agents.cli.report import report_line

    def broken(*args, **kwargs):
        raise KeyError("pairs")

    monkeypatch.setattr("lbt_agents.report.write_report", broken)
    report_line(runs["m1"])
    err = capsys.readouterr().err
    assert err.startswith("warning: no report: 'pairs'") and f"lbt report {runs['m1']}" in err


def test_m3_repeats_are_reported_one_repeat_each(runs: dict[str, Path], tmp_path: Path) -> None:
    parent = tmp_path / "liar"  # what an M3 run with m3.repeats=2 leaves: config.yaml, repeats.json, rep<i>/
    for i in range(2):
        shutil.copytree(runs["m3"], parent / f"rep{i}", ignore=shutil.ignore_patterns("report", ".lock"))
    shutil.copy(runs["m3"] / "config.yaml", parent / "config.yaml")
    by_round = [{"lane": "teacher", "round": r, "n": 2, "mean": m, "std": 0.0, "sem": 0.0, "values": [m, m]}
                for r, m in ((0, 0.5), (1, 1.0))]
    (parent / "repeats.json").write_text(json.dumps({"repeats": 3, "finished": 2, "seeds": [0, 1, 2], "metric": "f1",
                                                     "by_round": by_round}))
    page, stats = report_of(tmp_path, parent)
    assert list(stats["runs"]) == ["liar/rep0", "liar/rep1"] and page.count('<details class="round"') == 4
    assert 'id="repeats-liar"' in page and "<td>teacher</td><td>1</td><td>2</td><td>100.0%</td>" in page
    assert stats["notes"] == ["M3 run 'liar': 2 of 3 repeats finished"]


def test_replayed_ties_follow_the_runs_tie_break() -> None:
    pairs = [{"tp_id": "t", "index": i, "answer": a, "group": g, "correct": c, "lbt": 0.5}
             for i, (a, g, c) in enumerate([("1", 0, True), ("2", 1, False)])]
    assert choose("sum", pairs).answer == "group 0" and choose("sum", pairs).correct  # first seen
    assert not choose("sum", pairs, tie_break="last_seen").correct  # the official rule: the last of a stable sort
