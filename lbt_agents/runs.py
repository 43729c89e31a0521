"""Durable runs: run directories, embedded servers, checkpointers, outputs.

Every run lives in ``<output_dir>/<run_id>/``: ``config.yaml`` (what was asked),
``checkpoints.sqlite`` (LangGraph checkpoints: finished work survives a crash),
``cache.sqlite`` (model calls), ``logs/`` and, at the end, the results.
``run_id`` is a name, never a path; ``.lock`` is held by the one process running
the run (:func:`lock_run`); a resumed run keeps its work (:data:`RESUME_MAY_CHANGE`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Iterator, Sequence

import yaml

from lbt_agents._serde import compressed_serde
from lbt_agents.cache import CallCache
from lbt_agents.config import EMBEDDED, CheckpointConfig, RunConfig, check_run_id, load_config
from lbt_agents.errors import ConfigError

CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class RunDir:
    """A run's folder and its well-known files."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints.sqlite"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def default_cache(self) -> Path:
        return self.path / "cache.sqlite"


def new_run_id(prefix: str = "run") -> str:
    return f"{prefix}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 10000:04d}"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def prepare_run(cfg: RunConfig, *, resume: str | None = None, prefix: str = "run") -> tuple[RunConfig, RunDir]:
    """Create a new run directory, or reopen ``resume`` with its saved config.

    A resumed run keeps its saved config: only overrides that do not change the work
    (:data:`RESUME_MAY_CHANGE`) are taken from ``cfg``, anything else is refused."""
    if resume:
        run = RunDir(cfg.output_dir / check_run_id(resume))
        if not run.config.is_file():
            raise ConfigError(f"no run {resume!r} to resume in {cfg.output_dir} (missing {run.config})")
        saved = load_config(run.config, model=type(cfg))
        if cfg.run_id == resume:  # the caller's config for this run (see resume_config): same work only
            check_resume_changes(saved, cfg)
        else:
            cfg = saved
        cfg = cfg.model_copy(update={"output_dir": run.path.parent, "run_id": resume})
        write_atomic(run.config, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        return cfg, run
    run_id = check_run_id(cfg.run_id or new_run_id(prefix))
    run = RunDir(cfg.output_dir / run_id)
    if run.checkpoints.exists():
        raise ConfigError(f"run {run_id!r} already exists in {cfg.output_dir}; resume it with --resume {run_id}")
    cfg = cfg.model_copy(update={"run_id": run_id})
    run.path.mkdir(parents=True, exist_ok=True)
    write_atomic(run.config, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return cfg, run


@contextlib.contextmanager
def open_run(cfg: RunConfig, *, resume: str | None = None, prefix: str = "run") -> Iterator[tuple[RunConfig, RunDir]]:
    """:func:`prepare_run` under the run's lock (:func:`lock_run`), held until the block ends."""
    run_id = check_run_id(resume or cfg.run_id or new_run_id(prefix))
    if not resume:
        cfg = cfg.model_copy(update={"run_id": run_id})
    path = cfg.output_dir / run_id
    if resume and not (path / CONFIG_FILE).is_file():
        raise ConfigError(f"no run {resume!r} to resume in {cfg.output_dir} (missing {path / CONFIG_FILE})")
    path.mkdir(parents=True, exist_ok=True)
    with lock_run(path):
        yield prepare_run(cfg, resume=resume, prefix=prefix)


LOCK_FILE = ".lock"


@contextlib.contextmanager
def lock_run(path: Path) -> Iterator[None]:
    """Hold ``<path>/.lock`` (an advisory ``flock``) while the block runs: a second process on
    the same run directory gets a ConfigError naming the holder's pid.  The kernel drops the
    lock when the holder exits, however it ends (kill -9 included)."""
    import fcntl

    lock = path / LOCK_FILE
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"cannot open the lock of run {path.name!r} ({lock}): {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise ConfigError(
                f"run {path.name!r} is in use by process {holder} (lock {lock}); wait for it to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


RESUME_MAY_CHANGE = (
    r"classroom\.(teacher|teachers\.\d+|students\.\d+)\.(base_url|api_key_env|timeout_s|max_retries)(\..+)?",
    r"max_concurrency",
    r"budget(\..+)?",
    r"serve(\..+)?",
    r"checkpoint\.url",
    r"executor(\..+)?",
    r"output_dir",
)
"""Config fields (dotted paths, as regular expressions) a resumed run may change: where and how
the work is done (endpoints, timeouts, concurrency, budget), never what the work is."""


def check_resume_changes(saved: Any, cfg: Any) -> None:
    """Refuse, with one line, a resumed config ``cfg`` that changes the work of ``saved``."""
    import re

    before, after = _flatten(saved.model_dump(mode="json")), _flatten(cfg.model_dump(mode="json"))
    allowed = re.compile("|".join(f"(?:{p})" for p in RESUME_MAY_CHANGE))
    for key in [*before, *(k for k in after if k not in before)]:
        if key == "run_id" or allowed.fullmatch(key):
            continue
        if before.get(key, _MISSING) != after.get(key, _MISSING):
            raise ConfigError(f"--resume cannot change {key} (it changes the work); start a new run instead")


_MISSING = object()


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(data, list) and data:
        out = {}
        for i, v in enumerate(data):
            out.update(_flatten(v, f"{prefix}{i}."))
        return out
    return {prefix[:-1]: data}


def resume_config(output_dir: Path, run_id: str, overrides: Sequence[str] = (), model: type = RunConfig) -> Any:
    """A stopped run's saved config with ``overrides`` applied (e.g. a new ``base_url``); overrides
    that change the work (anything but :data:`RESUME_MAY_CHANGE`) are refused."""
    path = RunDir(output_dir / check_run_id(run_id)).config
    if not path.is_file():
        raise ConfigError(f"no run {run_id!r} to resume in {output_dir} (missing {path})")
    saved = load_config(path, model=model)
    cfg = load_config(path, list(overrides), model=model)
    check_resume_changes(saved, cfg)
    return cfg.model_copy(update={"run_id": run_id, "output_dir": output_dir})


@contextlib.contextmanager
def embedded_endpoints(cfg: RunConfig, log_dir: Path) -> Iterator[RunConfig]:
    """Start the embedded classroom for agents whose base_url is 'embedded'
    and yield the config with their real URLs; servers stop on exit."""
    agents = cfg.classroom.agents()
    wanted = sorted({a.model for a in agents if EMBEDDED in a.base_urls})
    if not wanted:
        yield cfg
        return
    from lbt_agents.serving import serve_classroom

    with serve_classroom(
        wanted,
        cache_dir=cfg.serve.cache_dir,
        kv_cache_gib=cfg.serve.kv_cache_gib,
        max_model_len=cfg.serve.max_model_len,
        startup_timeout_s=cfg.serve.startup_timeout_s,
        block_size=cfg.serve.block_size,
        log_dir=log_dir,
    ) as classroom:
        yield with_base_urls(cfg, {m: classroom.base_url(m) for m in wanted})


def with_base_urls(cfg: RunConfig, urls: dict[str, str]) -> RunConfig:
    """``cfg`` with every 'embedded' agent pointed at ``urls[agent.model]``."""

    def fix(agent):  # type: ignore[no-untyped-def]
        if EMBEDDED not in agent.base_urls:
            return agent
        return agent.model_copy(update={"base_url": urls[agent.model]})

    classroom = cfg.classroom.model_copy(
        update={
            "teacher": fix(cfg.classroom.teacher),
            "teachers": [fix(t) for t in cfg.classroom.teachers],
            "students": [fix(s) for s in cfg.classroom.students],
        }
    )
    return cfg.model_copy(update={"classroom": classroom})


async def check_checkpointer(cfg: CheckpointConfig) -> None:
    """A Postgres checkpointer is reachable (and its tables made), or one ConfigError line."""
    if cfg.backend != "postgres":
        return
    if not cfg.url:
        raise ConfigError("checkpoint.backend=postgres needs checkpoint.url (a Postgres connection string)")
    try:
        import psycopg
        from psycopg.rows import dict_row
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    except ImportError:
        raise ConfigError("the Postgres checkpointer needs: pip install 'lbt-agents[postgres]'") from None
    import re

    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", cfg.url)
    try:
        conn = await psycopg.AsyncConnection.connect(cfg.url, connect_timeout=5, autocommit=True, prepare_threshold=0,
                                                     row_factory=dict_row)
    except (psycopg.Error, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"cannot reach the Postgres checkpointer at {shown}: {reason}") from None
    async with conn:
        await AsyncPostgresSaver(conn).setup()  # once here, so workers starting together never race on it


@contextlib.asynccontextmanager
async def checkpointer(cfg: CheckpointConfig, run: RunDir) -> AsyncIterator[Any]:
    """The LangGraph checkpointer a run's graph compiles with (SQLite and Postgres values zlib-compressed).

    Each finished task's writes (an exam, a TP's teaching) are saved as soon as the task
    finishes, so a crash loses only the tasks in flight; on exit every write has landed
    before the connection closes, whatever ended the run.
    """
    if cfg.backend == "none":
        yield None
    elif cfg.backend == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        async with _writes_at_once(InMemorySaver()) as saver:
            yield saver
    elif cfg.backend == "sqlite":
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        # WAL and a long busy timeout: a write still in flight from a crashed step (or another
        # reader) makes the next writer wait instead of failing with "database is locked".
        # synchronous=NORMAL: a commit survives the process being killed (not a power cut)
        # without an fsync per finished task.
        conn = await aiosqlite.connect(str(run.checkpoints), timeout=60.0)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=60000")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = AsyncSqliteSaver(conn, serde=compressed_serde())
            saver.aput_writes = _SqliteWriteBatches(saver).aput_writes  # type: ignore[method-assign]
            async with _writes_at_once(saver) as eager:
                yield eager
        finally:
            await conn.close()
    else:
        if not cfg.url:
            raise ConfigError("checkpoint.backend=postgres needs checkpoint.url (a Postgres connection string)")
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise ConfigError("the Postgres checkpointer needs: pip install 'lbt-agents[postgres]'") from None
        async with AsyncPostgresSaver.from_conn_string(cfg.url, serde=compressed_serde()) as saver:
            await saver.setup()
            async with _writes_at_once(saver) as eager:
                yield eager


@contextlib.asynccontextmanager
async def _writes_at_once(saver: Any) -> AsyncIterator[Any]:
    """``saver`` with each task's writes started the moment LangGraph hands them over.

    LangGraph submits a finished task's writes to the executor that runs the step's tasks,
    behind the same ``max_concurrency`` semaphore (FIFO): in a step with more tasks than the
    limit (thousands of exams) no write starts before nearly every task has, and a crash
    loses them all.  Here the write starts at once; the executor only waits for it.  On exit
    the writes still in flight are awaited, so the connection never closes under one.
    """
    put = saver.aput_writes
    in_flight: set[asyncio.Future[None]] = set()

    def aput_writes(config: Any, writes: Any, task_id: str, task_path: str = "") -> Any:
        started = asyncio.ensure_future(put(config, writes, task_id, task_path))
        in_flight.add(started)
        started.add_done_callback(in_flight.discard)

        async def saved() -> None:
            await started

        return saved()

    saver.aput_writes = aput_writes
    try:
        yield saver
    finally:
        if in_flight:
            await asyncio.wait(set(in_flight))


class _SqliteWriteBatches:
    """``AsyncSqliteSaver.aput_writes`` with the writes that queue up while one commit runs saved
    together in the next: one commit per batch instead of four round trips to SQLite's thread per
    finished task, so on a loaded CPU the saved exams keep up with the finished ones."""

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.queue: list[tuple[str, list[tuple[Any, ...]], asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    def aput_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> asyncio.Future[None]:
        from langgraph.checkpoint.base import WRITES_IDX_MAP

        replace = all(w[0] in WRITES_IDX_MAP for w in writes)  # as AsyncSqliteSaver.aput_writes does
        query = (f"INSERT OR {'REPLACE' if replace else 'IGNORE'} INTO writes (thread_id, checkpoint_ns, "
                 "checkpoint_id, task_id, task_path, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        conf = config["configurable"]
        rows = [(str(conf["thread_id"]), str(conf["checkpoint_ns"]), str(conf["checkpoint_id"]), task_id, task_path,
                 WRITES_IDX_MAP.get(channel, idx), channel, *self.saver.serde.dumps_typed(value))
                for idx, (channel, value) in enumerate(writes)]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.append((query, rows, done))
        if self.flusher is None:
            self.flusher = asyncio.ensure_future(self._flush())
        return done

    async def _flush(self) -> None:
        try:
            while self.queue:
                batch, self.queue = self.queue, []
                try:
                    await self.saver.setup()
                    async with self.saver.lock:
                        start = 0
                        while start < len(batch):  # runs of one query, in order
                            end = start
                            while end < len(batch) and batch[end][0] == batch[start][0]:
                                end += 1
                            rows = [r for _, some, _ in batch[start:end] for r in some]
                            await self.saver.conn.executemany(batch[start][0], rows)
                            start = end
                        await self.saver.conn.commit()
                except BaseException as exc:
                    for _, _, done in batch + self.queue:
                        if not done.done():
                            done.cancel() if isinstance(exc, asyncio.CancelledError) else done.set_exception(exc)
                    self.queue = []
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for _, _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self.flusher = None


def call_cache(cfg: RunConfig, run: RunDir) -> CallCache | None:
    if not cfg.cache.enabled:
        return None
    return CallCache(cfg.cache.path or run.default_cache())


def save_dataset(rows: Any, path: Path, features: Any = None) -> None:
    """Save rows (or a ``datasets.Dataset``) as an HF dataset (with ``features`` when given, so runs
    concatenate), atomically; a folder lbt did not write is never replaced."""
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar

    from lbt_agents.training._atomic import atomic_dir, saved_dataset_folder

    disable_progress_bar()  # the run's own progress display is enough
    if isinstance(rows, Dataset):
        dataset = rows if features is None or rows.features == features else rows.cast(features)
    else:
        dataset = Dataset.from_list(list(rows), features=features)
    with atomic_dir(path, kind="dataset", legacy=saved_dataset_folder) as tmp:
        dataset.save_to_disk(str(tmp))


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
