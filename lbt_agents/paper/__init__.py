"""The official LbT pipeline's rules as pure functions (the ``paper`` profile's building blocks).

Re-implemented from the behaviour of imagination-research/lbt: answer
extraction (first marker), Minerva normalisation as the exact grouping key,
MATH ``is_equiv`` grading, MAJ/MAX/SUM/AVG selection with the official tie
rule (exact, integer scores), the prompt layout and the sampling settings.
"""

from lbt_agents.paper._equiv import is_equiv, strip_string
from lbt_agents.paper._extract import (
    FINAL_ANSWER_MARKER,
    Graded,
    answer_line,
    extract_answer,
    gold_answer,
    grade,
    grade_reply,
)
from lbt_agents.paper._normalize import normalize_final_answer
from lbt_agents.paper._prompts import (
    CONTINUE_FINAL_MESSAGE,
    Demo,
    Message,
    Shot,
    demo_of,
    paper_prompt,
    shots,
    student_messages,
    teacher_messages,
)
from lbt_agents.paper._select import (
    AnswerGroup,
    Pair,
    PaperSelection,
    group_pairs,
    select,
    select_all,
)
from lbt_agents.paper._settings import PAPER_SAMPLING

__all__ = [
    "CONTINUE_FINAL_MESSAGE",
    "FINAL_ANSWER_MARKER",
    "PAPER_SAMPLING",
    "AnswerGroup",
    "Demo",
    "Graded",
    "Message",
    "Pair",
    "PaperSelection",
    "Shot",
    "answer_line",
    "demo_of",
    "extract_answer",
    "gold_answer",
    "grade",
    "grade_reply",
    "group_pairs",
    "is_equiv",
    "normalize_final_answer",
    "paper_prompt",
    "select",
    "select_all",
    "shots",
    "strip_string",
    "student_messages",
    "teacher_messages",
]
