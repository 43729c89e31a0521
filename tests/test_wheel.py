"""The built wheel: only the project's own top-level name, graph variants and prompts inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel needs hatchling (the dev extra has it)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out)], check=True, timeout=300)
    [built] = out.glob("lbt_agents-*.whl")
    return built


def test_the_wheel_adds_no_generic_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"lbt_agents"}
    assert "lbt_agents/graphs/m1_scoring.py" in names and "lbt_agents/py.typed" in names
    assert "lbt_agents/prompts/math/teacher_system.md" in names


def test_installed_wheel_imports_graphs_under_its_own_name(wheel: Path, tmp_path: Path) -> None:
    """Installed apart from the source tree: `import graphs` fails, the variants import, prompts load."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    probe = (
        "import importlib.util, lbt_agents, sys\n"
        f"assert lbt_agents.__file__.startswith({str(target)!r}), lbt_agents.__file__\n"
        "assert importlib.util.find_spec('graphs') is None\n"
        "from lbt_agents.graphs import m1_scoring, m2_preferences, m3_refinement, tutor_app, server\n"
        "from lbt_agents.prompts import load_prompt\n"
        "assert 'teacher' in load_prompt('teacher_system', kind='math').lower()\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
