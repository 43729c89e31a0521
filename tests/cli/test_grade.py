from __future__ import annotations

import json

from lbt_agents.cli import main


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = 0
    try:
        main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


def _json(out: str) -> dict:
    [line] = out.strip().splitlines()
    return json.loads(line)


def test_grade_math_match_and_mismatch(capsys):
    code, out = _run(capsys, "grade", "math", "--gold", "\\frac{1}{2}", "--pred", "0.5")
    assert code == 0 and _json(out) == {"answer": "0.5", "correct": True}
    code, out = _run(capsys, "grade", "math", "--gold", "\\frac{1}{2}", "--pred", "Thus \\boxed{0.4}.")
    assert code == 1 and _json(out) == {"answer": "0.4", "correct": False}


def test_grade_math_reads_a_reply_file(capsys, tmp_path):
    reply = tmp_path / "reply.txt"
    reply.write_text("Steps...\n[[Final Answer]]: 1,000\n")
    code, out = _run(capsys, "grade", "math", "--gold", "1000", "--pred", f"@{reply}")
    assert code == 0 and _json(out)["correct"] is True
    code, out = _run(capsys, "grade", "math", "--gold", "1000", "--reply-file", str(reply))
    assert code == 0 and _json(out)["correct"] is True
    code, out = _run(capsys, "grade", "math", "--gold", "1", "--pred", f"@{tmp_path / 'missing'}")
    assert code == 2 and out.startswith("error: --pred: cannot read")
    code, out = _run(capsys, "grade", "math", "--gold", "1", "--pred", "1", "--reply-file", str(reply))
    assert code == 2 and out.strip() == "error: give one of --pred and --reply-file"


def test_grade_math_paper_profile_prints_the_grouping_key(capsys, tmp_path):
    # Official: grouped by the exact normalised string, graded by MATH is_equiv.
    code, out = _run(capsys, "grade", "math", "--profile", "paper", "--gold", "\\frac{1}{2}", "--pred", "0.5")
    assert code == 0 and _json(out) == {"answer": "0.5", "correct": True}
    code, out = _run(capsys, "grade", "math", "--profile", "paper", "--gold", "2\\sqrt{2}", "--pred", "\\sqrt{8}")
    assert code == 1 and _json(out) == {"answer": "\\sqrt{8}", "correct": False}
    code, out = _run(capsys, "grade", "math", "--gold", "2\\sqrt{2}", "--pred", "\\sqrt{8}")
    assert code == 0 and _json(out)["correct"] is True  # the default profile's math-verify accepts it
    # The first marker wins over a hallucinated continuation.
    reply = tmp_path / "reply.txt"
    reply.write_text("So $x=5$.\n\n[[Final Answer]]:\n$5$\n\n[[Question]]:\nNext?\n\n[[Final Answer]]:\n$7$\n")
    code, out = _run(capsys, "grade", "math", "--profile", "paper", "--gold", "5", "--reply-file", str(reply))
    assert code == 0 and _json(out) == {"answer": "5", "correct": True}
    code, out = _run(capsys, "grade", "math", "--gold", "5", "--reply-file", str(reply))
    assert code == 1 and _json(out) == {"answer": "7", "correct": False}  # the default takes the last marker
    code, out = _run(capsys, "grade", "math", "--profile", "nope", "--gold", "5", "--pred", "5")
    assert code == 2 and out.startswith("error: ") and "unknown profile 'nope'" in out and len(out.splitlines()) == 1


def test_grade_label(capsys):
    code, out = _run(capsys, "grade", "label", "--gold", "Yes", "--choices", "Yes,No", "--pred", "[[Final Answer]]: true")
    assert code == 0 and _json(out) == {"answer": "Yes", "correct": True}
    code, _ = _run(capsys, "grade", "label", "--gold", "valid", "--choices", "valid,invalid", "--pred", "It is invalid.")
    assert code == 1


def test_grade_without_answer_and_bad_kind(capsys):
    code, out = _run(capsys, "grade", "math", "--gold", "3", "--pred", "  ")
    assert code == 1 and _json(out) == {"answer": None, "correct": False}
    code, _ = _run(capsys, "grade", "poetry", "--gold", "3", "--pred", "3")
    assert code != 0


def test_tasks_lists_every_builtin_task_with_its_kind(capsys):
    code, out = _run(capsys, "tasks")
    rows = {line.split()[0]: line.split()[1] for line in out.strip().splitlines()}
    for name in ("math_functional", "math500", "gsm8k", "gsm8k_functional"):
        assert rows[name] == "math"
    for name in ("formal_fallacies", "causal_judgment", "knights_knaves"):
        assert rows[name] == "label"
