"""Output folders: written atomically, and only over folders this project wrote (no user data deleted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lbt_agents.cli import main
from lbt_agents.errors import ConfigError
from lbt_agents.training import DPOSettings, train_dpo
from lbt_agents.training._atomic import (
    OWNED_MARKER,
    atomic_dir,
    check_replaceable,
    owned_kind,
    saved_dataset_folder,
)


def _user_folder(path: Path) -> dict[str, str]:
    """A folder of someone's files; returns what it holds, to check nothing changed."""
    files = {"notes.txt": "mine", "sub/data.csv": "1,2,3", "summary.json": "{}"}
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return files


def _unchanged(path: Path, files: dict[str, str]) -> bool:
    return all((path / n).read_text() == t for n, t in files.items())


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_new_folder_is_written_and_marked(tmp_path: Path) -> None:
    target = tmp_path / "a" / "out"
    with atomic_dir(target, kind="m2-train") as tmp:
        (tmp / "x.txt").write_text("new")
        assert not target.exists()  # nothing visible until the body finished
    assert (target / "x.txt").read_text() == "new" and owned_kind(target) == "m2-train"
    assert json.loads((target / OWNED_MARKER).read_text())["kind"] == "m2-train"
    assert _leftovers(target.parent) == []


def test_own_folder_of_the_same_kind_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "out"
    for text in ("first", "second"):
        with atomic_dir(target, kind="dataset") as tmp:
            (tmp / text).write_text(text)
    assert sorted(p.name for p in target.iterdir()) == [OWNED_MARKER, "second"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:  # an empty folder holds nothing to lose
        (tmp / "y").write_text("y")
    assert (empty / "y").is_file()


@pytest.mark.parametrize("kind_there", [None, "dataset"])
def test_a_folder_it_did_not_write_is_refused_and_untouched(tmp_path: Path, kind_there: str | None) -> None:
    target = tmp_path / "user"
    target.mkdir()
    files = _user_folder(target)
    if kind_there:  # lbt wrote it, but as something else (a preference dataset, not a training output)
        (target / OWNED_MARKER).write_text(json.dumps({"kind": kind_there}))
    with pytest.raises(ConfigError) as err, atomic_dir(target, kind="m2-train") as tmp:
        (tmp / "x").write_text("x")
    assert "\n" not in str(err.value) and "refusing to replace" in str(err.value)
    assert _unchanged(target, files) and _leftovers(tmp_path) == []


def test_files_symlinks_and_late_arrivals_are_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("keep")
    with pytest.raises(ConfigError, match="is a file"):
        check_replaceable(a_file, kind="dataset")
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(ConfigError, match="symbolic link"):
        check_replaceable(link, kind="dataset")
    late = tmp_path / "late"
    with pytest.raises(ConfigError, match="refusing to replace"), atomic_dir(late) as tmp:
        (tmp / "x").write_text("x")
        late.mkdir()
        (late / "theirs.txt").write_text("theirs")  # written by someone else while we worked
    assert (late / "theirs.txt").read_text() == "theirs" and a_file.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "late", "link"]


def test_failure_in_the_body_leaves_the_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "new").write_text("new")
        raise RuntimeError("boom")
    assert (target / "old").read_text() == "old" and not (target / "new").exists()
    assert _leftovers(tmp_path) == []


def test_save_pairs_never_replaces_a_user_folder(tmp_path: Path) -> None:
    from lbt_agents.preferences import load_pairs, save_pairs

    from .conftest import tiny_pairs

    target = tmp_path / "prefs"
    target.mkdir()
    files = _user_folder(target)
    with pytest.raises(ConfigError, match="refusing to replace"):
        save_pairs(tiny_pairs(2), target)
    assert _unchanged(target, files)
    fresh = save_pairs(tiny_pairs(2), tmp_path / "fresh")
    assert len(load_pairs(save_pairs(tiny_pairs(3), fresh))) == 3  # its own folder: replaced


def test_an_unmarked_dataset_of_an_older_version_can_be_recognised(tmp_path: Path) -> None:
    from datasets import Dataset

    old = tmp_path / "results"
    Dataset.from_list([{"a": 1}]).save_to_disk(str(old))
    assert saved_dataset_folder(old)
    with atomic_dir(old, legacy=saved_dataset_folder) as tmp:
        Dataset.from_list([{"a": 2}]).save_to_disk(str(tmp))
    assert owned_kind(old) == "dataset"
    (tmp_path / "mine").mkdir()
    _user_folder(tmp_path / "mine")
    (tmp_path / "mine" / "state.json").write_text("{}")
    assert not saved_dataset_folder(tmp_path / "mine")


def _train_args(data: Path, out: Path) -> list[str]:
    return ["m2", "train", "--data", str(data), "--model", "/nonexistent/model", "--out", str(out), "--max-steps", "1"]


def test_m2_train_refuses_the_preference_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bug: `--out` pointed at the preference run's folder deleted it all, data included, and exited 0."""
    from lbt_agents.preferences import save_pairs

    from .conftest import tiny_pairs

    run = tmp_path / "runs" / "prefs-run"
    run.mkdir(parents=True)
    files = _user_folder(run)
    data = save_pairs(tiny_pairs(2), run / "preferences_m2")
    capsys.readouterr()  # the dataset's progress bar
    for out in (run, tmp_path / "runs"):
        with pytest.raises(SystemExit) as exc:
            main(_train_args(data, out))
        assert exc.value.code != 0
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "inside output_dir" in err
    elsewhere = tmp_path / "mine"
    elsewhere.mkdir()
    mine = _user_folder(elsewhere)
    with pytest.raises(SystemExit) as exc:
        main(_train_args(data, elsewhere))
    err = capsys.readouterr().err.strip()
    assert exc.value.code != 0 and err.startswith("error: refusing to replace") and "\n" not in err
    assert _unchanged(run, files) and _unchanged(elsewhere, mine) and (data / "state.json").is_file()


def test_train_dpo_checks_the_output_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    files = _user_folder(out)
    settings = DPOSettings(model="/nonexistent/model", data=tmp_path / "no-data", output_dir=out)
    with pytest.raises(ConfigError, match="refusing to replace"):  # not the missing data or model
        train_dpo(settings)
    assert _unchanged(out, files)
    (out / "notes.txt").unlink()
    (out / "summary.json").unlink()
    (out / "sub" / "data.csv").unlink()
    (out / "sub").rmdir()
    (out / "train_summary.json").write_text("{}")
    (out / "merged").mkdir()  # an unmarked output of an older `lbt m2 train`: still its own
    from lbt_agents.training.dpo import check_output_dir

    check_output_dir(settings)
