"""A run's result store: one shard per finished TP, written once, atomically.

``<run>/shards/<key>/`` holds ``result.json`` (the TP's full result), ``stats.json``
(what the summary needs) and the flat tables ``tps/``, ``pairs/``, ``exams/`` as HF
datasets with explicit features (:mod:`lbt_agents.tables`), so any shards of any
runs concatenate.  A shard folder exists only once complete: it is the finished-TP
index, and a second writer of the same TP (a retried job) keeps the first one's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

TABLES = ("tps", "pairs", "exams")


def shard_key(tp_id: str) -> str:
    """A folder name for a TP id: readable, unique (a hash of the id), never a path."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", tp_id)[:60].strip(".") or "tp"
    return f"{safe}-{hashlib.sha1(tp_id.encode()).hexdigest()[:10]}"


class ShardStore:
    """The shards of one run folder."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "shards"

    def shard(self, tp_id: str) -> Path:
        return self.path / shard_key(tp_id)

    def finished(self, tp_id: str) -> bool:
        return (self.shard(tp_id) / "stats.json").is_file()

    def write(self, result: Mapping[str, Any], stats: Mapping[str, Any], run_id: str) -> bool:
        """Save one finished TP; False (and nothing changed) when its shard already exists."""
        from lbt_agents.runs import save_dataset
        from lbt_agents.tables import exam_rows, features, pair_rows, tp_rows

        tp_id = result["tp_id"]
        final = self.shard(tp_id)
        if final.exists():
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=f".{final.name}."))
        try:
            results = {tp_id: result}
            for name, rows in (("tps", tp_rows(results, run_id)), ("pairs", pair_rows(results, run_id)),
                               ("exams", exam_rows(results, run_id))):
                if rows:  # datasets cannot store a table without rows
                    save_dataset(rows, tmp / name, features=features(name))
            (tmp / "result.json").write_text(json.dumps(result, default=str))
            (tmp / "stats.json").write_text(json.dumps({"tp_id": tp_id, **stats}))
            try:
                os.rename(tmp, final)  # atomic; fails when another writer got there first
            except OSError:
                if final.exists():
                    return False
                raise
            return True
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def stats(self, tp_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The stats of the finished ones among ``tp_ids``, in that order, one at a time."""
        for tp_id in tp_ids:
            path = self.shard(tp_id) / "stats.json"
            if path.is_file():
                yield json.loads(path.read_text())

    def results(self, tp_ids: Iterable[str]) -> Iterator[dict[str, Any]]:
        """The full results of the finished ones among ``tp_ids``, in that order, one at a time."""
        for tp_id in tp_ids:
            path = self.shard(tp_id) / "result.json"
            if path.is_file():
                yield json.loads(path.read_text())

    def table(self, name: str, tp_ids: Iterable[str]) -> Any:
        """Table ``name`` of the finished ones among ``tp_ids`` (in that order) as one dataset, or None."""
        from datasets import concatenate_datasets, load_from_disk

        parts = [load_from_disk(str(p)) for tp_id in tp_ids if (p := self.shard(tp_id) / name).is_dir()]
        return concatenate_datasets(parts) if parts else None
