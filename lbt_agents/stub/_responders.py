"""What the stub answers: the last user message, a fixed text, or a scripted ``respond(body, choice_index)``."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lbt_agents.errors import ConfigError

Responder = Callable[[dict[str, Any], int], str | Awaitable[str]]
"""``respond(request_body, choice_index) -> str`` (or an awaitable of one)."""


def text_of(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def echo(body: dict[str, Any], choice_index: int) -> str:
    """The last user message (chat), or the prompt (completions); empty when there is none."""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return text_of(message.get("content"))
        return ""
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


class FixedText:
    """Always the same text (picklable, so it also works with ``StubServer(process=True)``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, body: dict[str, Any], choice_index: int) -> str:
        return self.text


def load_script(path: str | Path) -> Responder:
    """The ``respond`` function of a Python file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"stub script {path} does not exist")
    name = f"_lbt_stub_script_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"stub script {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: say what broke in one line
        sys.modules.pop(name, None)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"stub script {path} failed to load: {type(exc).__name__}: {first}") from None
    respond = getattr(module, "respond", None)
    if not callable(respond):
        raise ConfigError(f"stub script {path} defines no function respond(request_body, choice_index) -> str")
    return respond
