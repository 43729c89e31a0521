"""Reducers shared by the teaching graphs' states."""

from __future__ import annotations

from typing import Any


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: records keyed by id; a later write for the same id wins."""
    return {**(left or {}), **(right or {})}
