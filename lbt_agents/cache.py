"""An on-disk cache of model calls that stays correct under sampling.

The key covers the model, the messages, every sampling setting and the
sample's index (and seed), so ``n`` samples stay ``n`` distinct samples and a
repeated exam is a new exam.  Each entry carries a checksum; an entry that is
corrupt or partial is ignored (and dropped), never trusted.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, checksum TEXT NOT NULL)"


def cache_key(**parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _checksum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class CallCache:
    """A SQLite file mapping call keys to JSON replies."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value, checksum FROM calls WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        value, checksum = row
        try:
            if _checksum(value) != checksum:
                raise ValueError("checksum mismatch")
            data = json.loads(value)
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except (ValueError, TypeError):
            self.delete(key)
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls (key, value, checksum) VALUES (?, ?, ?)", (key, text, _checksum(text))
            )

    def delete(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM calls WHERE key = ?", (key,))

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
