"""One vLLM OpenAI-compatible server for one model, on loopback, as its own process group.

The group dies with the process that started it, whichever way that ends: a parent-death signal
(started from the main thread) and a watcher process (always) SIGKILL it.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from lbt_agents.errors import ServeError
from lbt_agents.serving._guards import (
    check_memory,
    check_port_free,
    check_torch_stack,
    die_with_parent,
    free_port,
    watch_parent,
)
from lbt_agents.serving.pull import default_cache_dir, folder_size, pull_model
from lbt_agents.serving.registry import MODELS, get_model

HOST = "127.0.0.1"
_OVERHEAD_BYTES = 5 << 29  # 2.5 GiB: measured ~2.1 GiB RSS for API server + engine core + worker
"""RAM a vLLM-CPU server needs besides weights and KV cache (API server + engine + worker processes)."""
_LIVE: set[VllmServer] = set()


@dataclass(frozen=True)
class Endpoint:
    """A running OpenAI-compatible endpoint."""

    model: str
    base_url: str
    port: int
    pid: int
    log_path: Path


def serving_dtype() -> str:
    """bfloat16, except on CPUs without native bf16 math (no AVX-512-BF16/AMX), where
    float32 is about 3x faster (measured with Qwen2.5-0.5B on a 2-core AVX2 machine:
    ~9 vs ~29 completion tokens/s at 32 concurrent requests).  ``LBT_VLLM_DTYPE`` overrides."""
    if env := os.environ.get("LBT_VLLM_DTYPE"):
        return env
    if not is_cpu_build():
        return "bfloat16"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "bfloat16"
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def cpu_core_sets(n: int) -> list[str]:
    """Disjoint core lists (vLLM's ``VLLM_CPU_OMP_THREADS_BIND`` syntax) for ``n`` CPU engines.

    vLLM's ``auto`` binding pins every engine to the same cores and keeps one core for the front
    end: two engines on a 2-core machine both ran on core 0, at ~8 instead of ~35 tokens/s for
    Qwen2.5-0.5B.  One engine gets every core; several get contiguous, even shares (round-robin
    single cores when there are more engines than cores)."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    if n < 1:
        return []
    if n >= len(cores):
        return [str(cores[i % len(cores)]) for i in range(n)]
    size, extra = divmod(len(cores), n)
    sets, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        sets.append(",".join(map(str, cores[start:end])))
        start = end
    return sets


def is_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (``vllm-cpu``) or no CUDA vLLM is installed."""
    if os.environ.get("VLLM_TARGET_DEVICE") == "cpu":
        return True
    try:
        importlib.metadata.distribution("vllm-cpu")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


class VllmServer:
    """One server for one model: a registry name, or a path to an HF model folder (then ``served_name`` is required)."""

    def __init__(
        self,
        model: str | Path,
        *,
        served_name: str | None = None,
        port: int | None = None,
        kv_cache_gib: float = 2.0,
        max_model_len: int = 4096,
        startup_timeout_s: float = 900,
        log_dir: Path | None = None,
        cache_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        torch_compile: bool | None = None,
        cpu_cores: str | None = None,
        block_size: int | None = None,
    ) -> None:
        """``torch_compile=None``: vLLM's default torch.compile, unless ``$LBT_VLLM_EAGER=1`` (``--enforce-eager``:
        start-up in ~1.5 instead of 2-9 minutes on 2 shared cores, but >10x fewer tokens/s at 16-64 concurrent
        requests on the vLLM-CPU build; see ``experiments/results/bench_serve.md``).  ``cpu_cores``: the cores
        a CPU engine's threads use, e.g. ``"0,1"`` (default: all; ``$VLLM_CPU_OMP_THREADS_BIND`` wins).
        ``block_size``: KV cache block in tokens (vLLM's default: 128 on CPU); the prefix cache reuses whole
        blocks only, so smaller blocks serve more of each exam prompt (multiples of 32 on CPU)."""
        self._registry_name: str | None = None
        self._model_dir: Path | None = None
        if isinstance(model, str) and model in MODELS:
            self._registry_name = model
            self.name = served_name or model
        elif isinstance(model, Path) or (isinstance(model, str) and ("/" in model or Path(model).is_dir())):
            self._model_dir = Path(model).expanduser()
            if not (self._model_dir / "config.json").is_file():
                raise ServeError(f"{self._model_dir} is not a Hugging Face model folder (no config.json)")
            if not served_name:
                raise ServeError(f"serving the folder {self._model_dir} needs a served_name")
            self.name = served_name
        else:
            get_model(str(model))  # raises the unknown-model error
            raise AssertionError("unreachable")
        if kv_cache_gib <= 0:
            raise ServeError(f"kv_cache_gib must be positive, got {kv_cache_gib}")
        self.port = port
        self._port_is_free_choice = port is None  # until first ready: a lost race for the port may pick another
        self.kv_cache_gib = kv_cache_gib
        self.max_model_len = max_model_len
        self.startup_timeout_s = startup_timeout_s
        self.cache_dir = cache_dir
        self.log_dir = Path(log_dir) if log_dir is not None else default_cache_dir(cache_dir) / "logs"
        self.extra_args = tuple(extra_args)
        if torch_compile is None:
            torch_compile = os.environ.get("LBT_VLLM_EAGER", "") != "1"
        self.torch_compile = torch_compile
        self.cpu_cores = cpu_cores
        if block_size is not None and block_size < 1:
            raise ServeError(f"block_size must be positive, got {block_size}")
        self.block_size = block_size
        self.endpoint: Endpoint | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._cmd: list[str] = []

    # -- public ------------------------------------------------------------------------------------------

    def start(self) -> Endpoint:
        """Launch the server and block until ``GET /v1/models`` lists the model."""
        if self.endpoint is not None and self._proc is not None and self._proc.poll() is None:
            return self.endpoint
        self.launch()
        return self.wait_ready()

    def stop(self) -> None:
        """Stop the server and every process it spawned; idempotent."""
        proc, self._proc, self.endpoint = self._proc, None, None
        watcher, self._watcher = self._watcher, None
        _LIVE.discard(self)
        if proc is not None:
            kill_tree(proc.pid)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - kill_tree already SIGKILLed it
                pass
        if watcher is not None:
            watcher.kill()
            watcher.wait()

    def restart(self) -> Endpoint:
        """Stop and start again on the same port."""
        if self.endpoint is not None:
            self.port = self.endpoint.port
        self.stop()
        return self.start()

    @property
    def returncode(self) -> int | None:
        """``None`` while the server process runs (or was never launched), else its exit code."""
        return None if self._proc is None else self._proc.poll()

    @property
    def cmdline(self) -> list[str]:
        """The command line of the running (or last launched) server."""
        return list(self._cmd)

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"VllmServer({self.name!r}, port={self.port}, running={self._proc is not None})"

    # -- start-up in two halves (a Classroom launches all, then waits for all) --------------------------

    def required_memory(self) -> int:
        """Bytes of RAM this server needs: weights + KV cache + process overhead."""
        weights = self._weights_bytes()
        kv = int(self.kv_cache_gib * 2**30) if is_cpu_build() else 0
        return weights + kv + _OVERHEAD_BYTES

    def prepare(self) -> Path:
        """Pull the model if needed and return its HF folder."""
        if self._model_dir is None:
            assert self._registry_name is not None
            self._model_dir = pull_model(self._registry_name, cache_dir=self.cache_dir)
        return self._model_dir

    def launch(self, *, check_mem: bool = True) -> None:
        """Spawn the server process (non-blocking); :meth:`wait_ready` finishes start-up."""
        model_dir = self.prepare()
        check_torch_stack()
        if check_mem:
            check_memory(self.required_memory(), f"serve {self.name}")
        if self.port is not None:
            check_port_free(self.port, HOST)
        port = self.port if self.port is not None else free_port(HOST)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{self.name.replace('/', '_')}-{port}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        self._cmd = self._command(model_dir, port)
        env = dict(os.environ)
        if is_cpu_build():
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{self.kv_cache_gib:g}"
            env.setdefault("VLLM_CPU_OMP_THREADS_BIND", self.cpu_cores or cpu_core_sets(1)[0])
            # On a shared, overloaded CPU one engine step can take minutes: vLLM's defaults (300 s per step,
            # 600 s to get ready) kill the engine there ("RPC call to execute_model timed out").
            env.setdefault("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "3600")
            env.setdefault("VLLM_ENGINE_READY_TIMEOUT_S", str(int(max(600, self.startup_timeout_s))))
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        with log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=die_with_parent(),
            )  # fmt: skip
        if self._watcher is not None:  # the last server died by itself; so did its watcher
            self._watcher.kill()
            self._watcher.wait()
        self._watcher = watch_parent(self._proc.pid)  # its own session: the group id is its pid
        _LIVE.add(self)
        self.port, self._log_path = port, log_path
        self.endpoint = None

    def wait_ready(self) -> Endpoint:
        """Block until the launched server answers ``/v1/models``; ServeError if it dies or times out."""
        assert self._proc is not None and self._log_path is not None and self.port is not None, "launch() first"
        deadline = time.monotonic() + self.startup_timeout_s
        url = f"http://{HOST}:{self.port}/v1/models"
        retries = 0
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = last_lines(self._log_path, 5)
                self.stop()
                if self._port_is_free_choice and "address already in use" in tail.lower() and retries < 3:
                    retries += 1  # another process took the port we picked: pick another
                    self.port = None
                    self.launch(check_mem=False)
                    url = f"http://{HOST}:{self.port}/v1/models"
                    continue
                raise ServeError(
                    f"vLLM server for {self.name} exited during start-up (code {code}): {tail} [log: {self._log_path}]"
                )
            if self._answers(url):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise ServeError(
                    f"vLLM server for {self.name} not ready after {self.startup_timeout_s:.0f}s [log: {self._log_path}]"
                )
            time.sleep(1.0)
        self._port_is_free_choice = False  # from now on restarts keep this port
        self.endpoint = Endpoint(self.name, f"http://{HOST}:{self.port}/v1", self.port, self._proc.pid, self._log_path)
        return self.endpoint

    # -- private -----------------------------------------------------------------------------------------

    def _command(self, model_dir: Path, port: int) -> list[str]:
        return [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--served-model-name", self.name,
            "--host", HOST, "--port", str(port),
            "--dtype", serving_dtype(), "--max-model-len", str(self.max_model_len),
            *([] if self.torch_compile or "--enforce-eager" in self.extra_args else ["--enforce-eager"]),
            *([] if self.block_size is None else ["--block-size", str(self.block_size)]),
            *self.extra_args,
        ]  # fmt: skip

    def _answers(self, url: str) -> bool:
        try:
            resp = httpx.get(url, timeout=2.0)
        except httpx.HTTPError:
            return False
        if resp.status_code != 200:
            return False
        try:
            return any(m.get("id") == self.name for m in resp.json().get("data", []))
        except ValueError:
            return False

    def _weights_bytes(self) -> int:
        if self._model_dir is not None and self._model_dir.is_dir():
            return sum(p.stat().st_size for p in self._model_dir.glob("*.safetensors")) or folder_size(self._model_dir)
        assert self._registry_name is not None
        return get_model(self._registry_name).hf_size_bytes


def last_lines(path: Path, n: int) -> str:
    """The last ``n`` non-empty lines of a log file, joined by `` | `` (one line for an error message)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "(empty log)"


def kill_tree(pid: int, *, timeout: float = 20.0) -> None:
    """SIGTERM the process group led by ``pid`` and all descendants, then SIGKILL whatever survives."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    try:
        os.killpg(pid, signal.SIGKILL)  # stragglers spawned after the snapshot
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()
