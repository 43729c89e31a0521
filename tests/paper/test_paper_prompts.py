"""The official prompt layout and sampling settings.

The two SHA-256 digests are of the user message the official
``ExamPrompter.make_exam_prompt_chat_template`` (imagination-research/lbt,
``lbt/exam_maker.py`` with the ``examples/config/math/*_exam.yaml`` prompter
config) builds for the same problems; they were computed by running it in a
scratch folder outside this repo.  The system message and prefill matched too.
"""

import hashlib

import pytest

from lbt_agents.paper import (
    CONTINUE_FINAL_MESSAGE,
    PAPER_SAMPLING,
    Demo,
    demo_of,
    shots,
    student_messages,
    teacher_messages,
)

PREFILL = "[[Solution]]:\nLet's think step by step.\n\n"
TP, EP = "What is $1+1$?", "What is $2+2$?"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_teacher_prompt_is_the_official_one():
    system, user, prefill = teacher_messages(TP)
    assert system == {"role": "system", "content": "You are a helpful assistant."}
    assert prefill == {"role": "assistant", "content": PREFILL}
    assert user["role"] == "user"
    assert sha(user["content"]) == "07c9c45b539398e1532992f001170be034506b51978a34daefa6d4c577a03cb5"
    assert user["content"].startswith("Your task is to answer the last question below.")
    assert user["content"].endswith(f"\n\n\n[[Question]]:\n{TP}\n\n")
    assert user["content"].count("[[Question]]:\n") == 5  # 4 shots + the TP


def test_student_prompt_is_the_official_one():
    system, user, prefill = student_messages(TP, Demo("1+1=2.", "2"), EP)
    assert sha(user["content"]) == "4cfda9677192069addf0eb134e6e47d42dd149f452701f5853fa04dabe9a45c9"
    assert user["content"].endswith(
        f"[[Question]]:\n{TP}\n\n{PREFILL}1+1=2.\n\n[[Final Answer]]:\n$2$\n\n\n\n[[Question]]:\n{EP}\n\n"
    )
    assert prefill["content"] == PREFILL and system["content"] == "You are a helpful assistant."


def test_demo_is_cut_at_the_first_marker_with_the_normalised_answer():
    reply = "We add.\n\n[[Final Answer]]:\n$\\boxed{2}$\n\n[[Question]]:\ninvented\n[[Final Answer]]:\n$9$\n"
    assert demo_of(reply) == Demo("We add.", "2")
    user = student_messages(TP, reply, EP)[1]["content"]
    assert "invented" not in user and "$2$" in user
    assert user == student_messages(TP, demo_of(reply), EP)[1]["content"]


def test_a_reply_without_the_marker_loses_its_last_character_as_upstream():
    assert demo_of("so it is 2") == Demo("so it is", "soitis2")


def test_shots_are_the_four_minerva_problems():
    fixed = shots()
    assert len(fixed) == 4
    assert [s.answer for s in fixed] == ["[2,5)", "24", "16", "-\\frac{2}{3}"]
    assert fixed[0].question.startswith("Find the domain of the expression")


def test_prefill_is_continued_not_answered():
    assert CONTINUE_FINAL_MESSAGE == {
        "continue_final_message": True,
        "add_generation_prompt": False,
    }


def test_sampling_settings_are_the_official_ones_and_frozen():
    teacher, student = (
        PAPER_SAMPLING["math"]["teacher"],
        PAPER_SAMPLING["math"]["student"],
    )
    assert (
        teacher["pairs"],
        teacher["temperature"],
        teacher["top_k"],
        teacher["top_p"],
    ) == (256, 0.7, 20, 1.0)
    assert (
        student["temperature"],
        student["top_k"],
        student["exam_problems"],
        student["repetitions"],
    ) == (0.7, 20, 3, 3)
    with pytest.raises(TypeError):
        PAPER_SAMPLING["math"]["teacher"]["pairs"] = 64  # type: ignore[index]
