"""Runs ``lbt`` with vLLM replaced by ``_fake_server.py`` (for the `lbt serve` life-cycle test).

Usage: python _fake_lbt.py ARGS...
"""

import sys
from pathlib import Path

from lbt_agents.cli import main
from lbt_agents.serving import VllmServer

FAKE = Path(__file__).with_name("_fake_server.py")
VllmServer._command = lambda self, model_dir, port: [sys.executable, str(FAKE), str(port), self.name]  # type: ignore[method-assign]
main(sys.argv[1:])
