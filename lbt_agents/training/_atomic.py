"""Write a folder atomically, and never over a folder this project did not write.

A folder written by :func:`atomic_dir` carries a marker file, ``.lbt-owned``, that names
what it holds (its *kind*: ``dataset``, ``m2-train``, ...).  A later write may replace
the folder only when it is absent, empty, or marked with the same kind; anything else
(a user's folder, a run folder, another kind of output) is refused with one line, before
any work is done, and again just before the swap.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lbt_agents.errors import ConfigError

OWNED_MARKER = ".lbt-owned"
"""File inside every folder :func:`atomic_dir` wrote: JSON ``{"kind": ..., "created": ...}``."""

Legacy = Callable[[Path], bool]
"""Recognises an unmarked folder this project wrote before markers existed."""


def owned_kind(folder: str | os.PathLike[str]) -> str | None:
    """The kind in ``folder``'s marker; None when it has no readable marker."""
    try:
        kind = json.loads((Path(folder) / OWNED_MARKER).read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def mark_owned(folder: str | os.PathLike[str], kind: str) -> None:
    """Write the marker that lets a later write of the same ``kind`` replace ``folder``."""
    record = {"kind": kind, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "by": "lbt-agents"}
    (Path(folder) / OWNED_MARKER).write_text(json.dumps(record) + "\n")


def saved_dataset_folder(folder: Path) -> bool:
    """A legacy test: an unmarked ``datasets.save_to_disk`` folder (state.json, dataset_info.json, data-*.arrow only)."""
    names = [p.name for p in folder.iterdir()]
    known = all(n in ("state.json", "dataset_info.json") or (n.startswith("data-") and n.endswith(".arrow")) for n in names)
    return known and "state.json" in names


def check_replaceable(target: str | os.PathLike[str], *, kind: str, legacy: Legacy | None = None) -> None:
    """Raise :class:`ConfigError` (one line) unless ``target`` is absent, an empty folder, or a
    folder marked as ``kind`` (or, unmarked, one that ``legacy`` recognises)."""
    target = Path(target)
    if target.is_symlink():
        raise ConfigError(f"refusing to write to {target}: it is a symbolic link; give a new folder")
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"refusing to write to {target}: it is a file, not a folder; give a new folder")
    try:
        empty = next(target.iterdir(), None) is None
    except OSError as exc:
        raise ConfigError(f"cannot read the output folder {target}: {exc.strerror}") from None
    if empty:
        return
    found = owned_kind(target)
    if found == kind or (found is None and legacy is not None and legacy(target)):
        return
    held = f"lbt's {found!r} output, not {kind!r}" if found else f"files lbt did not write there (no {OWNED_MARKER})"
    raise ConfigError(
        f"refusing to replace {target}: it is not empty and holds {held}; give a new folder (or empty it yourself)"
    )


@contextmanager
def atomic_dir(target: str | os.PathLike[str], *, kind: str = "dataset", legacy: Legacy | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target``; on success it replaces ``target``, marked as ``kind``.

    Refuses (see :func:`check_replaceable`) before yielding and again before the swap.  On an
    exception the temporary folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    check_replaceable(target, kind=kind, legacy=legacy)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        mark_owned(tmp, kind)
        check_replaceable(target, kind=kind, legacy=legacy)  # something may have appeared there meanwhile
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(tmp: Path, target: Path) -> None:
    # os.replace cannot replace a non-empty folder: move the old one aside first.
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
