"""The official pipeline's sampling settings, as its configs and scripts set them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


def _frozen(tree: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: _frozen(v) if isinstance(v, Mapping) else v for k, v in tree.items()})


PAPER_SAMPLING: Mapping[str, Any] = _frozen(
    {
        # examples/config/math/*_trgen.yaml, *_exam.yaml; scripts/math/search_rationale.py
        "math": {
            "teacher": {
                "pairs": 256,
                "temperature": 0.7,
                "top_k": 20,
                "top_p": 1.0,
                "max_tokens": 1024,
            },
            "student": {
                "temperature": 0.7,
                "top_k": 20,
                "top_p": 1.0,
                "max_tokens": 1024,
                "exam_problems": 3,  # the TP's three MATH() snapshots (Oct/Nov/Dec 2023)
                "repetitions": 3,  # each EP taken 3 times: 9 exams per pair, scores 0..9
            },
        },
        # examples/config/code/*_trgen.yaml, *_exam.yaml; scripts/code/search_rationale.py
        "code": {
            "teacher": {"pairs": 8, "temperature": 0.6, "top_p": 0.9},
            "student": {"temperature": 0.0, "repetitions": 1},  # greedy
        },
    }
)
"""``max_tokens`` 1024 is the HF models' default ``max_new_tokens`` there (API models: unset)."""
