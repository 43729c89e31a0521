"""MATH tasks: the paper's MATH() functional setup and plain MATH-500."""

from __future__ import annotations

import copy
import json
import tarfile
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbt_agents.errors import DataError
from lbt_agents.grading.math import last_boxed
from lbt_agents.tasks._data import data_file, kind, neighbour_items, options, read_jsonl, require_split
from lbt_agents.tasks._similarity import nearest_neighbours
from lbt_agents.tasks.base import task
from lbt_agents.types import Problem, TeachingItem

if TYPE_CHECKING:
    from lbt_agents.config import TaskConfig

MATH500 = "math/math500.jsonl"
SNAPSHOTS = ("Oct-2023", "Nov-2023", "Dec-2023")


def _snapshot_file(month: str) -> str:
    return f"math/functional-{month}.tar.gz"


@lru_cache(maxsize=4)
def _math500(path: Path) -> tuple[Problem, ...]:
    problems = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            uid = row["unique_id"]
            problems.append(
                Problem(
                    id=f"math/{uid.removesuffix('.json')}",
                    question=row["problem"],
                    answer=str(row["answer"]),
                    kind="math",
                    solution=row.get("solution", ""),
                    meta={"subject": row.get("subject"), "level": row.get("level"), "unique_id": uid},
                )
            )
        except (KeyError, AttributeError):
            raise DataError(f"{path}:{n}: a MATH-500 row needs problem, answer and unique_id") from None
    if not problems:
        raise DataError(f"{path}: no problems")
    return tuple(problems)


@lru_cache(maxsize=8)
def _snapshot(path: Path) -> dict[str, dict[str, Any]]:
    """``test/<subject>/<n>.json`` -> the variant record of one functional snapshot tarball."""
    records: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                _, _, key = member.name.partition("/")
                fh = tar.extractfile(member)
                if fh is not None:
                    records[key] = json.loads(fh.read().decode("utf-8"))
    except (tarfile.TarError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read functional snapshot ({exc})") from None
    return records


@task("math_functional")
@kind("math")
def math_functional(cfg: TaskConfig) -> list[TeachingItem]:
    """MATH() functional: the 181 MATH-500 TPs with a variant in all 3 snapshots; EPs = the variants."""
    options(cfg, {})
    require_split(cfg, ("test",))
    tps = _math500(data_file(cfg, MATH500))
    snapshots = {m: _snapshot(data_file(cfg, _snapshot_file(m))) for m in SNAPSHOTS}
    items: list[TeachingItem] = []
    for tp in tps:
        uid = tp["meta"]["unique_id"]
        if not all(uid in snap for snap in snapshots.values()):
            continue
        eps = []
        for month, snap in snapshots.items():
            rec = snap[uid]
            answer = last_boxed(rec.get("solution", ""))
            if answer is None:
                raise DataError(f"{_snapshot_file(month)}: {uid} has no \\boxed{{}} answer in its solution")
            eps.append(
                Problem(
                    id=f"{tp['id']}@{month}",
                    question=rec["problem"],
                    answer=answer,
                    kind="math",
                    solution=rec.get("solution", ""),
                    meta={**tp["meta"], "snapshot": month, "is_static": rec.get("is_static")},
                )
            )
        items.append(TeachingItem(tp=tp, eps=eps[: cfg.eps_per_tp]))
    return copy.deepcopy(items)


@lru_cache(maxsize=8)
def _math500_neighbours(path: Path, k: int) -> tuple[tuple[int, ...], ...]:
    tps = _math500(path)
    nn = nearest_neighbours([p["question"] for p in tps], k, groups=[str(p["meta"]["subject"]) for p in tps])
    return tuple(tuple(row) for row in nn)


@task("math500")
@kind("math")
def math500(cfg: TaskConfig) -> list[TeachingItem]:
    """MATH-500; EPs = the most similar other problems (same subject first, then TF-IDF cosine)."""
    options(cfg, {})
    require_split(cfg, ("test",))
    path = data_file(cfg, MATH500)
    tps = list(_math500(path))
    return copy.deepcopy(neighbour_items(tps, [list(r) for r in _math500_neighbours(path, cfg.eps_per_tp)]))
