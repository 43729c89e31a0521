"""The call cache: correct under sampling, and never trusts a corrupt entry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lbt_agents.cache import CallCache, cache_key


def test_round_trip_and_distinct_keys(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite")
    k0 = cache_key(model="m", messages=[{"role": "user", "content": "x"}], index=0, seed=1)
    k1 = cache_key(model="m", messages=[{"role": "user", "content": "x"}], index=1, seed=2)
    assert k0 != k1
    cache.put(k0, {"text": "a"})
    assert cache.get(k0) == {"text": "a"}
    assert cache.get(k1) is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_corrupt_or_partial_entries_are_ignored_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = CallCache(path)
    for key in ("tampered", "partial", "not-an-object"):
        cache.put(key, {"text": "good"})
    cache.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE calls SET value = ? WHERE key = 'tampered'", ('{"text": "evil"}',))
        db.execute("UPDATE calls SET value = substr(value, 1, 5) WHERE key = 'partial'")
        db.execute("UPDATE calls SET value = '[1]', checksum = ? WHERE key = 'not-an-object'",
                   (__import__("hashlib").sha256(b"[1]").hexdigest(),))
    cache = CallCache(path)
    assert cache.get("tampered") is None
    assert cache.get("partial") is None
    assert cache.get("not-an-object") is None
    assert len(cache) == 0
