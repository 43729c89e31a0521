"""Examiners: one grader per task kind (``math``, ``label``, ``code``)."""

import contextlib

from lbt_agents.grading import label, math  # noqa: F401  (register the built-in graders)
from lbt_agents.grading.base import Grader, get_grader, grader

with contextlib.suppress(ImportError):
    from lbt_agents.grading import code  # noqa: F401

__all__ = ["Grader", "get_grader", "grader"]
