"""The adapters are optional: importing them pulls in neither library, and a missing one is one clear line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lbt_agents import ConfigError
from tests.integrations._classroom import scripted_classroom


def test_importing_the_adapters_imports_neither_library() -> None:
    code = (
        "import sys, lbt_agents.integrations, lbt_agents.integrations.trl, lbt_agents.integrations.dspy\n"
        "print(sorted(m for m in ('trl', 'dspy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "factory", "extra"), [("trl", "lbt_reward", "trl"), ("dspy", "lbt_metric", "dspy")])
def test_a_missing_library_names_the_extra(monkeypatch, module: str, factory: str, extra: str) -> None:
    import importlib

    adapter = importlib.import_module(f"lbt_agents.integrations.{module}")
    monkeypatch.setitem(sys.modules, module, None)  # what `import trl` meets when it is not installed
    room, _ = scripted_classroom()
    with pytest.raises(ConfigError, match=rf"{factory} needs {module}: pip install 'lbt-agents\[{extra}\]'"):
        getattr(adapter, factory)(room)
