"""VllmServer life cycle against a fake server process (offline, fast)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from lbt_agents.errors import ServeError
from lbt_agents.serving import Classroom, VllmServer
from lbt_agents.serving import _guards

FAKE = Path(__file__).with_name("_fake_server.py")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    return folder


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[str]]:
    """Swap the vLLM command line for the fake server; extra_args pass through."""
    launched: dict[str, list[str]] = {}

    def command(self: VllmServer, model_dir: Path, port: int) -> list[str]:
        cmd = [sys.executable, str(FAKE), str(port), self.name, *self.extra_args]
        launched[self.name] = cmd
        return cmd

    monkeypatch.setattr(VllmServer, "_command", command)
    return launched


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_start_serves_and_stop_kills_the_whole_tree(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    pidfile = tmp_path / "child.pid"
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path / "logs", extra_args=["--child-pidfile", str(pidfile)])
    endpoint = server.start()
    assert endpoint.base_url == f"http://127.0.0.1:{endpoint.port}/v1"
    assert endpoint.log_path.parent == tmp_path / "logs" and endpoint.log_path.exists()
    assert httpx.get(endpoint.base_url + "/models").json()["data"][0]["id"] == "tiny"
    child = int(pidfile.read_text())
    assert _alive(endpoint.pid) and _alive(child)
    assert psutil.Process(endpoint.pid).cmdline() == server.cmdline
    server.stop()
    assert not _alive(endpoint.pid) and not _alive(child)
    assert server.endpoint is None
    server.stop()  # idempotent


def test_restart_keeps_the_port(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path)
    with server as first:
        assert server.endpoint == first
        second = server.restart()
        assert second.port == first.port and second.pid != first.pid
        assert not _alive(first.pid)
        assert httpx.get(second.base_url + "/models").status_code == 200
    assert not _alive(second.pid)


def test_death_during_startup_reports_last_log_lines(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path, extra_args=["--die"])
    with pytest.raises(ServeError) as err:
        server.start()
    msg = str(err.value)
    assert "exited during start-up (code 3)" in msg and "the fake engine refused to start" in msg
    assert "\n" not in msg and str(tmp_path) in msg
    assert server.endpoint is None


def test_startup_timeout_stops_the_process(model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(VllmServer, "_command", lambda self, d, p: [sys.executable, "-c", "import time; time.sleep(60)"])
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path, startup_timeout_s=1.5)
    with pytest.raises(ServeError, match="not ready after"):
        server.start()
    assert not any("time.sleep(60)" in " ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"]))


def test_port_in_use_is_refused_before_spawning(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = VllmServer(model_dir, served_name="tiny", port=port, log_dir=tmp_path)
        with pytest.raises(ServeError, match=f"port {port} on 127.0.0.1 is already in use"):
            server.start()
    assert fake_vllm == {}


def test_too_little_memory_is_refused(model_dir: Path, tmp_path: Path, fake_vllm, monkeypatch) -> None:
    class Tiny:
        available = 512 << 20

    monkeypatch.setattr(_guards.psutil, "virtual_memory", lambda: Tiny())
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path, kv_cache_gib=4)
    with pytest.raises(ServeError, match="not enough memory to serve tiny") as err:
        server.start()
    assert "0.5 GiB" in str(err.value)
    assert fake_vllm == {}


def test_folder_needs_a_served_name_and_a_config(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="needs a served_name"):
        VllmServer(model_dir)
    with pytest.raises(ServeError, match="no config.json"):
        VllmServer(tmp_path / "nowhere", served_name="x")
    with pytest.raises(ServeError, match="unknown model 'nope'"):
        VllmServer("nope")


def test_classroom_starts_all_and_stops_all(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    servers = [VllmServer(model_dir, served_name="a", log_dir=tmp_path), VllmServer(other, served_name="b", log_dir=tmp_path)]
    classroom = Classroom(servers).start()
    try:
        assert set(classroom.endpoints) == {"a", "b"}
        assert classroom.base_url("a") != classroom.base_url("b")
        with pytest.raises(ServeError, match="not in this classroom"):
            classroom.base_url("c")
        pids = [e.pid for e in classroom.endpoints.values()]
    finally:
        classroom.stop()
    assert not any(_alive(p) for p in pids)
    assert classroom.endpoints == {}


def test_broken_torchvision_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    _guards.check_torch_stack.cache_clear()
    monkeypatch.setattr(_guards.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(
        _guards.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "operator torchvision::nms does not exist")
    )
    try:
        with pytest.raises(ServeError, match="torchvision is installed but broken.*scripts/install.sh"):
            _guards.check_torch_stack()
    finally:
        _guards.check_torch_stack.cache_clear()


def test_compiled_by_default_eager_on_request(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LBT_VLLM_EAGER", raising=False)
    cmd = VllmServer(model_dir, served_name="t")._command(model_dir, 8000)
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "--enforce-eager" not in cmd
    assert cmd[cmd.index("--port") + 1] == "8000" and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "--enforce-eager" in VllmServer(model_dir, served_name="t", torch_compile=False)._command(model_dir, 1)
    monkeypatch.setenv("LBT_VLLM_EAGER", "1")
    assert "--enforce-eager" in VllmServer(model_dir, served_name="t")._command(model_dir, 1)
    assert "--enforce-eager" not in VllmServer(model_dir, served_name="t", torch_compile=True)._command(model_dir, 1)


@pytest.mark.parametrize(
    ("cores", "n", "expected"),
    [
        ({0, 1}, 1, ["0,1"]),
        ({0, 1}, 2, ["0", "1"]),
        ({0, 1}, 3, ["0", "1", "0"]),
        ({2, 3, 4, 5, 6}, 2, ["2,3,4", "5,6"]),
    ],
)
def test_cpu_engines_get_disjoint_cores(monkeypatch: pytest.MonkeyPatch, cores: set[int], n: int, expected: list[str]) -> None:
    from lbt_agents.serving import server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: cores)
    assert server.cpu_core_sets(n) == expected


def test_classroom_engines_run_on_their_own_cores(monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path) -> None:
    from lbt_agents.serving import classroom, server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(server, "is_cpu_build", lambda: True)
    monkeypatch.setattr(server, "check_torch_stack", lambda: None)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.setattr(classroom.Classroom, "start", lambda self: self)
    other = tmp_path / "other-model"
    other.mkdir()
    for f in model_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    with classroom.serve_classroom([model_dir, other], log_dir=tmp_path) as room:
        assert [room.server(n).cpu_cores for n in ("tiny-model", "other-model")] == ["0", "1"]

    envs: dict[str, str] = {}

    class Launched(Exception):
        pass

    def popen(cmd: list[str], **kwargs: object) -> None:
        env = kwargs["env"]
        assert isinstance(env, dict)
        envs[cmd[cmd.index("--served-model-name") + 1]] = env["VLLM_CPU_OMP_THREADS_BIND"]
        raise Launched

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    for name, cores in (("lone", None), ("pinned", "1")):
        with pytest.raises(Launched):
            VllmServer(other, served_name=name, log_dir=tmp_path, cpu_cores=cores).launch(check_mem=False)
    assert envs == {"lone": "0,1", "pinned": "1"}  # one engine: every core


def test_block_size_goes_to_vllm(model_dir: Path) -> None:
    cmd = VllmServer(model_dir, served_name="t", block_size=32)._command(model_dir, 1)
    assert cmd[cmd.index("--block-size") + 1] == "32"
    assert "--block-size" not in VllmServer(model_dir, served_name="t")._command(model_dir, 1)
    with pytest.raises(ServeError, match="block_size must be positive"):
        VllmServer(model_dir, served_name="t", block_size=0)


# -- no process left behind: the server dies with the process that started it, however that ends ------------

_LAUNCHER = """
import json, sys, threading, time
from pathlib import Path
from lbt_agents.serving import VllmServer

fake, model_dir, log_dir, grandchild, info, how = sys.argv[1:7]
VllmServer._command = lambda self, d, port: [sys.executable, fake, str(port), self.name, "--child-pidfile", grandchild]
server = VllmServer(Path(model_dir), served_name="tiny", log_dir=Path(log_dir))
if how == "thread":  # started from a thread that then ends: the server must outlive the thread
    worker = threading.Thread(target=server.start)
    worker.start()
    worker.join()
elif how == "starting":  # spawned, not yet ready
    server.launch()
else:
    server.start()
Path(info).write_text(json.dumps({"server": server._proc.pid}))
time.sleep(600)
"""


def _wait(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("how,signum", [("ready", "SIGKILL"), ("starting", "SIGKILL"), ("thread", "SIGKILL"),
                                        ("ready", "SIGTERM")])
def test_server_dies_with_the_process_that_started_it(model_dir: Path, tmp_path: Path, how: str, signum: str) -> None:
    import signal
    import subprocess

    grandchild, info = tmp_path / "grandchild.pid", tmp_path / "info.json"
    tree: set[int] = set()
    launcher = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, str(FAKE), str(model_dir), str(tmp_path / "logs"), str(grandchild), str(info), how]
    )
    try:
        assert _wait(lambda: info.exists() and grandchild.exists() and grandchild.read_text(), 60), "never started"
        server, engine = json.loads(info.read_text())["server"], int(grandchild.read_text())
        tree = {p.pid for p in psutil.Process(launcher.pid).children(recursive=True)} | {engine}
        assert {server, engine} <= tree  # the server, its engine (and the watcher)
        if how == "thread":
            assert not _wait(lambda: not _alive(server), 1.0), "the server died with the thread that started it"
        launcher.send_signal(getattr(signal, signum))
        launcher.wait(timeout=10)
        assert _wait(lambda: not any(_alive(p) for p in tree), 5.0), [p for p in tree if _alive(p)]
    finally:  # whatever the test started, it stops
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def test_stop_ends_the_watcher_too(model_dir: Path, tmp_path: Path, fake_vllm) -> None:
    server = VllmServer(model_dir, served_name="tiny", log_dir=tmp_path)
    with server:
        watcher = server._watcher
        assert watcher is not None and _alive(watcher.pid)
    assert not _alive(watcher.pid) and server._watcher is None
