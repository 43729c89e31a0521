from __future__ import annotations

import pytest

from lbt_agents.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_grade_math_match_and_mismatch(capsys):
    code, out = _run(capsys, "grade", "math", "--gold", "\\frac{1}{2}", "--pred", "0.5")
    assert code == 0 and out.strip() == "correct: 0.5 == \\frac{1}{2}"
    code, out = _run(capsys, "grade", "math", "--gold", "\\frac{1}{2}", "--pred", "Thus \\boxed{0.4}.")
    assert code == 1 and out.startswith("wrong: 0.4 != ")


def test_grade_math_reads_a_reply_file(capsys, tmp_path):
    reply = tmp_path / "reply.txt"
    reply.write_text("Steps...\n[[Final Answer]]: 1,000\n")
    code, out = _run(capsys, "grade", "math", "--gold", "1000", "--pred", f"@{reply}")
    assert code == 0 and "1,000 == 1000" in out
    code, out = _run(capsys, "grade", "math", "--gold", "1", "--pred", f"@{tmp_path / 'missing'}")
    assert code == 2 and out.startswith("error: --pred: cannot read")


def test_grade_label(capsys):
    code, out = _run(capsys, "grade", "label", "--gold", "Yes", "--choices", "Yes,No", "--pred", "[[Final Answer]]: true")
    assert code == 0 and "Yes == Yes" in out
    code, _ = _run(capsys, "grade", "label", "--gold", "valid", "--choices", "valid,invalid", "--pred", "It is invalid.")
    assert code == 1


def test_grade_without_answer_and_bad_kind(capsys):
    code, out = _run(capsys, "grade", "math", "--gold", "3", "--pred", "  ")
    assert code == 1 and "no answer" in out
    code, _ = _run(capsys, "grade", "poetry", "--gold", "3", "--pred", "3")
    assert code != 0


def test_tasks_lists_every_builtin_task_with_its_kind(capsys):
    code, out = _run(capsys, "tasks")
    rows = {line.split()[0]: line.split()[1] for line in out.strip().splitlines()}
    for name in ("math_functional", "math500", "gsm8k", "gsm8k_functional"):
        assert rows[name] == "math"
    for name in ("formal_fallacies", "causal_judgment", "knights_knaves"):
        assert rows[name] == "label"
