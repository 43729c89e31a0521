"""`pull_data` and the data dir chain, on small fixtures served from 127.0.0.1 (no network)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lbt_agents.config import TaskConfig
from lbt_agents.errors import ConfigError, DataError
from lbt_agents.tasks import (
    DATASETS,
    DataFile,
    DataSet,
    data_cache_dir,
    dataset_present,
    get_dataset,
    load_task,
    pull_data,
    resolve_data_dir,
)

GSM8K_ROWS = [
    {"question": f"Tom has {i} apples and buys {i + 1} more. How many apples does he have?",
     "answer": f"{i} + {i + 1} = {2 * i + 1}\n#### {2 * i + 1}"}
    for i in range(6)
]


class FixtureHub:
    """A folder served over HTTP on 127.0.0.1, recording the paths it was asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        hub = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                hub.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def add(self, path: str, data: bytes) -> DataFile:
        """Serve ``data`` at ``path``; the DataFile that describes it (its own URL on an unreachable host)."""
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return DataFile(path, f"http://upstream.invalid/{path}", hashlib.sha256(data).hexdigest(), len(data))


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FixtureHub]:
    served = FixtureHub(tmp_path / "served")
    served.root.mkdir()
    served.thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()
    served.thread.join(timeout=10)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: a private cache, no data dir set, a working dir with no ../shared beside it."""
    cwd = tmp_path / "nowhere" / "work"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("LBT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LBT_DATA_DIR", raising=False)
    monkeypatch.delenv("LBT_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


def register(monkeypatch: pytest.MonkeyPatch, name: str, *files: DataFile, requires: tuple[str, ...] = ()) -> DataSet:
    spec = DataSet(name=name, title=f"fixture {name}", source="a test", license="MIT", files=files, requires=requires)
    monkeypatch.setitem(DATASETS, name, spec)
    return spec


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def test_pull_stores_verified_files_in_the_cache_layout(hub: FixtureHub, env: Path, monkeypatch) -> None:
    body = "".join(json.dumps(r) + "\n" for r in GSM8K_ROWS).encode()
    spec = register(monkeypatch, "fixture", hub.add("fix/a.jsonl", body), hub.add("fix/deep/b.json", b'{"b": 1}'))
    monkeypatch.setenv("LBT_DATA_MIRROR", hub.url)
    folder = pull_data("fixture")
    assert folder == env / "data" == data_cache_dir()
    assert (folder / "fix" / "a.jsonl").read_bytes() == body
    assert (folder / "fix" / "deep" / "b.json").read_bytes() == b'{"b": 1}'
    assert sorted(hub.requests) == ["/fix/a.jsonl", "/fix/deep/b.json"]
    assert leftovers(folder) == [] and dataset_present(spec, folder)

    assert pull_data("fixture") == folder  # verified files are kept: nothing fetched again
    assert len(hub.requests) == 2


def test_a_damaged_file_in_the_cache_is_fetched_again(hub: FixtureHub, env: Path, monkeypatch) -> None:
    register(monkeypatch, "fixture", hub.add("fix/a.txt", b"published bytes"))
    pull_data("fixture", mirror=hub.url)
    (env / "data" / "fix" / "a.txt").write_bytes(b"PUBLISHED BYTES")  # same size, other content
    pull_data("fixture", mirror=hub.url)
    assert (env / "data" / "fix" / "a.txt").read_bytes() == b"published bytes"
    assert len(hub.requests) == 2


def test_required_sets_are_pulled_too(hub: FixtureHub, env: Path, monkeypatch) -> None:
    register(monkeypatch, "base", hub.add("base/x.txt", b"x"))
    register(monkeypatch, "variants", hub.add("variants/y.txt", b"y"), requires=("base",))
    folder = pull_data("variants", mirror=hub.url)
    assert (folder / "base" / "x.txt").read_bytes() == b"x" and (folder / "variants" / "y.txt").read_bytes() == b"y"


def test_a_checksum_mismatch_is_refused_and_stores_nothing(hub: FixtureHub, env: Path, monkeypatch) -> None:
    good = hub.add("fix/a.txt", b"the published file")
    register(monkeypatch, "fixture", good)
    (hub.root / "fix" / "a.txt").write_bytes(b"the tampered! file")  # same size, other bytes
    with pytest.raises(DataError) as err:
        pull_data("fixture", mirror=hub.url)
    message = str(err.value)
    assert "\n" not in message and "fix/a.txt" in message and "checksum" in message and "nothing stored" in message
    assert not (env / "data").exists()  # no file, no temp file, no empty folder


def test_a_longer_download_is_cut_off_and_refused(hub: FixtureHub, env: Path, monkeypatch) -> None:
    register(monkeypatch, "fixture", hub.add("fix/a.txt", b"short"))
    (hub.root / "fix" / "a.txt").write_bytes(b"short" + b"x" * 5_000_000)
    with pytest.raises(DataError, match="checksum"):
        pull_data("fixture", mirror=hub.url)
    assert not (env / "data").exists()


def test_a_broken_download_keeps_the_file_that_was_there(hub: FixtureHub, env: Path, monkeypatch) -> None:
    spec = register(monkeypatch, "fixture", hub.add("fix/a.txt", b"v1"), hub.add("fix/b.txt", b"b"))
    pull_data("fixture", mirror=hub.url)
    (env / "data" / "fix" / "b.txt").unlink()
    (hub.root / "fix" / "b.txt").unlink()  # now a 404
    with pytest.raises(DataError, match=r"HTTP 404"):
        pull_data("fixture", mirror=hub.url)
    assert (env / "data" / "fix" / "a.txt").read_bytes() == b"v1"
    assert leftovers(env / "data") == [] and not dataset_present(spec, env / "data")


def test_offline_is_one_clear_line(env: Path, monkeypatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    register(monkeypatch, "fixture", DataFile("fix/a.txt", f"{dead}/a.txt", "0" * 64, 3))
    with pytest.raises(DataError) as err:
        pull_data("fixture")  # no mirror: the file's own URL
    message = str(err.value)
    assert "\n" not in message and "cannot download" in message and f"{dead}/a.txt" in message
    assert "LBT_DATA_MIRROR" in message
    assert not (env / "data").exists()


def test_a_folder_is_a_mirror_too(tmp_path: Path, env: Path, monkeypatch) -> None:
    data = b"from a folder"
    (tmp_path / "copy" / "fix").mkdir(parents=True)
    (tmp_path / "copy" / "fix" / "a.txt").write_bytes(data)
    register(monkeypatch, "fixture", DataFile("fix/a.txt", "http://upstream.invalid/a", hashlib.sha256(data).hexdigest(),
                                              len(data)))
    assert (pull_data("fixture", mirror=str(tmp_path / "copy")) / "fix" / "a.txt").read_bytes() == data


def test_unknown_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown data set 'nope'; known: math500, math_functional, gsm8k, bigbench"):
        get_dataset("nope")


def test_registry_entries_are_complete() -> None:
    paths = [f.path for spec in DATASETS.values() for f in spec.files]
    assert len(paths) == len(set(paths))
    for spec in DATASETS.values():
        assert spec.files and spec.license and spec.source
        assert all(r in DATASETS for r in spec.requires)
        for f in spec.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0
            assert f.url.startswith("https://") and not f.path.startswith("/")


def test_loaders_read_the_cache_when_no_data_dir_is_given(env: Path) -> None:
    folder = env / "data" / "gsm8k"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GSM8K_ROWS))
    items = load_task(TaskConfig(name="gsm8k", eps_per_tp=2))
    assert [it["tp"]["answer"] for it in items] == [str(2 * i + 1) for i in range(6)]


def test_a_missing_file_names_the_pull_command(env: Path) -> None:
    with pytest.raises(DataError) as err:
        load_task(TaskConfig(name="formal_fallacies"))
    message = str(err.value)
    assert str(env / "data" / "bigbench" / "formal_fallacies_syllogisms_negation.json") in message
    assert "`lbt data pull bigbench`" in message and "task.data_dir" in message


def test_data_dir_chain(tmp_path: Path, env: Path, monkeypatch) -> None:
    assert resolve_data_dir(None) == resolve_data_dir(Path("../shared/data")) == env / "data"  # nothing else there
    shared = tmp_path / "nowhere" / "shared" / "data"
    shared.mkdir(parents=True)
    assert resolve_data_dir(None) == Path("../shared/data")
    assert resolve_data_dir(None).resolve() == shared.resolve()
    monkeypatch.setenv("LBT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "given") == tmp_path / "given"
    assert TaskConfig().data_dir is None  # not given: loaders follow the chain ($LBT_DATA_DIR first)
    assert resolve_data_dir(TaskConfig().data_dir) == tmp_path / "env"


NOT_IN_REFERENCE_DATA = {"paper-m3"}
REFERENCE_SETS = ("math500", "math_functional", "gsm8k", "bigbench")
"""Sets ../shared/data does not hold (their checksums were taken from the pinned upstream commits)."""


def in_reference_data() -> list[DataSet]:
    assert set(DATASETS) == set(REFERENCE_SETS) | NOT_IN_REFERENCE_DATA
    return [DATASETS[name] for name in REFERENCE_SETS]


@pytest.mark.needs_reference_data(*REFERENCE_SETS)
def test_registered_checksums_are_those_of_the_reference_files(reference_data_dir: Path) -> None:
    assert not any((reference_data_dir / f.path).exists() for name in NOT_IN_REFERENCE_DATA
                   for f in DATASETS[name].files)  # else check them here too
    for spec in in_reference_data():
        for f in spec.files:
            data = (reference_data_dir / f.path).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (f.size, f.sha256), f.path


@pytest.mark.needs_reference_data(*REFERENCE_SETS)
def test_pull_all_from_a_copy_of_the_reference_data(reference_data_dir: Path, env: Path) -> None:
    for spec in in_reference_data():
        pull_data(spec.name, mirror=str(reference_data_dir))
    assert all(dataset_present(spec, env / "data") for spec in in_reference_data())
    assert len(load_task(TaskConfig(name="math_functional"))) == 181  # read from the cache: no data dir given
    assert len(load_task(TaskConfig(name="causal_judgment"))) == 57


def test_an_unwritable_cache_is_one_line(hub: FixtureHub, env: Path, monkeypatch) -> None:
    register(monkeypatch, "fixture", hub.add("fix/a.txt", b"a"))
    env.mkdir()
    (env / "data").write_text("a file where the data folder should be")
    with pytest.raises(DataError, match=r"cannot write into .*data/fix"):
        pull_data("fixture", mirror=hub.url)
