"""Module-level responders (they pickle, so StubServer(process=True) can serve them)."""

from __future__ import annotations

from typing import Any


def numbered(body: dict[str, Any], choice_index: int) -> str:
    return f"choice {choice_index} of {body.get('n') or 1}"
