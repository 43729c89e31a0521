"""`lbt run MODULE:BUILDER`: a user's own graph gets a run folder, checkpoints, resume and outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lbt_agents.stub import StubServer
from tests.server import _arithmetic as arithmetic

ROOT = Path(__file__).resolve().parents[2]

USER_GRAPH = '''
from lbt_agents import M1Config, m1_graph
from tests.server._arithmetic import item


def build(cfg):
    return m1_graph(cfg.m1, output_key="answers", name="my_graph")


def inputs(cfg):
    return {"items": [item("tp1", 2, 3), item("tp2", 10, 5)]}
'''


def lbt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "lbt_agents", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_lbt_run_drives_a_users_graph_and_resumes(tmp_path: Path) -> None:
    (tmp_path / "my_graph.py").write_text(USER_GRAPH)
    with StubServer(respond=arithmetic.respond, models=(arithmetic.TEACHER_MODEL, arithmetic.STUDENT_MODEL)) as stub:
        config = arithmetic.write_run_config(tmp_path / "run.yaml", stub.base_url)
        done = lbt("run", "my_graph:build", "--config", str(config), "--run-id", "mine", "--no-progress", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert stub.requests == arithmetic.model_calls(2)
        outputs = json.loads((tmp_path / "runs" / "mine" / "outputs.json").read_text())
        assert set(outputs) == {"answers"} and outputs["answers"]["tp1"]["selections"]["max"]["answer"] == "5"
        assert (tmp_path / "runs" / "mine" / "checkpoints.sqlite").is_file()

        again = lbt("run", "my_graph:build", "--resume", "mine", "--no-progress", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert stub.requests == arithmetic.model_calls(2)  # a finished run asks for nothing again


def test_lbt_run_bad_target_is_one_line(tmp_path: Path) -> None:
    done = lbt("run", "no_such_module:build", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: cannot import graph module 'no_such_module': "
                                                "No module named 'no_such_module'"]
    done = lbt("run", "not-a-target", cwd=tmp_path)
    assert done.returncode == 2 and "is not MODULE:BUILDER" in done.stderr
