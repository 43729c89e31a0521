"""Flat tables of an M1 run: one row per TP (``tps/``), per TR-TA pair (``pairs/``), per exam (``exams/``).

Each is saved with explicit ``datasets.Features``, so the tables of several runs
(or shards of one) concatenate with ``datasets.concatenate_datasets``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lbt_agents.types import TPResult

MODES = ("greedy", "sc", "max", "sum", "avg")


def _features() -> dict[str, Any]:
    from datasets import Features, Value

    text, f64, i64, flag = Value("string"), Value("float64"), Value("int64"), Value("bool")
    tps = Features({
        "run_id": text, "tp_id": text, "question": text, "gold": text, "note": text, "pairs": i64, "exams": i64,
        **{f"{m}_{k}": t for m in MODES for k, t in (("answer", text), ("correct", flag), ("votes", i64))},
    })
    pairs = Features({
        "run_id": text, "tp_id": text, "pair_id": text, "index": i64, "answer": text, "correct": flag, "score": f64,
        "hidden_score": f64, "lbt": f64, "votes": i64, "group": i64, "chosen_by": [text], "scored_as": text,
        "exams_taken": i64,
        "per_student": [{"student": text, "score": f64}], "truncated": flag, "prompt_tokens": i64,
        "completion_tokens": i64, "text": text,
    })
    exams = Features({
        "run_id": text, "tp_id": text, "pair_id": text, "exam_id": text, "student": text, "ep_id": text, "rep": i64,
        "rung": i64, "answer": text, "correct": flag, "score": f64, "hidden_score": f64, "detail": text,
        "truncated": flag, "prompt_tokens": i64, "completion_tokens": i64, "text": text,
    })  # fmt: skip
    return {"tps": tps, "pairs": pairs, "exams": exams}


def tp_rows(results: Mapping[str, TPResult], run_id: str) -> list[dict[str, Any]]:
    rows = []
    for r in results.values():
        row = {"run_id": run_id, "tp_id": r["tp_id"], "question": r["question"], "gold": str(r["gold"]),
               "note": r["note"], "pairs": len(r["pairs"]), "exams": sum(len(p["exams"]) for p in r["pairs"])}
        for mode in MODES:
            sel = r["selections"].get(mode)
            row[f"{mode}_answer"] = sel["answer"] if sel else None
            row[f"{mode}_correct"] = sel["correct"] if sel else None
            row[f"{mode}_votes"] = sel["votes"] if sel else None
        rows.append(row)
    return rows


def pair_rows(results: Mapping[str, TPResult], run_id: str) -> list[dict[str, Any]]:
    rows = []
    for r in results.values():
        chosen: dict[int, list[str]] = {}
        for mode, sel in r["selections"].items():
            if mode != "greedy" and sel["pair_index"] is not None:
                chosen.setdefault(sel["pair_index"], []).append(mode)
        for p in r["pairs"]:
            rows.append({
                "run_id": run_id, "tp_id": r["tp_id"], "pair_id": p["id"], "index": p["index"], "answer": p["answer"],
                "correct": p["correct"], "score": p["score"], "hidden_score": p.get("hidden_score"), "lbt": p["lbt"],
                "votes": p.get("votes", 0), "group": p.get("group"), "chosen_by": chosen.get(p["index"], []),
                "scored_as": p.get("scored_as"),
                "exams_taken": len(p["exams"]),
                "per_student": [{"student": s, "score": v} for s, v in p["per_student"].items()],
                "truncated": p["truncated"], "prompt_tokens": p["prompt_tokens"],
                "completion_tokens": p["completion_tokens"], "text": p["text"],
            })  # fmt: skip
    return rows


def exam_rows(results: Mapping[str, TPResult], run_id: str) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id, "tp_id": e["tp_id"], "pair_id": e["pair_id"], "exam_id": e["id"], "student": e["student"],
            "ep_id": e["ep_id"], "rep": e["rep"], "rung": e["rung"], "answer": e["answer"], "correct": e["correct"],
            "score": e["score"], "hidden_score": e.get("hidden_score"), "detail": e.get("detail"),
            "truncated": e["truncated"], "prompt_tokens": e["prompt_tokens"],
            "completion_tokens": e["completion_tokens"], "text": e["text"],
        }  # fmt: skip
        for r in results.values()
        for p in r["pairs"]
        for e in p["exams"]
    ]


def write_tables(run_dir: Path, results: Mapping[str, TPResult], run_id: str) -> dict[str, Path]:
    """``tps/``, ``pairs/`` and ``exams/`` in ``run_dir`` (HF datasets with explicit features); a table
    without rows (e.g. no exam was needed) is not written (``datasets`` cannot store an empty one)."""
    from lbt_agents.runs import save_dataset

    features = _features()
    out = {}
    for name, rows in (("tps", tp_rows(results, run_id)), ("pairs", pair_rows(results, run_id)),
                       ("exams", exam_rows(results, run_id))):
        if not rows:
            continue
        save_dataset(rows, run_dir / name, features=features[name])
        out[name] = run_dir / name
    return out


def features(name: str) -> Any:
    """The ``datasets.Features`` of table ``name`` (``tps``, ``pairs`` or ``exams``)."""
    return _features()[name]


def _parts(root: Path) -> list[Path]:
    """Dataset folders (with ``state.json``) and loose ``*.arrow`` files under ``root``, in path order."""
    if (root / "state.json").is_file():
        return [root]
    if root.is_file() and root.suffix == ".arrow":
        return [root]
    if not root.is_dir():
        return []
    found: list[Path] = []
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):  # a shard being written (atomic writes use dot-names)
            continue
        found += _parts(child)
    return found


def read_table(run_dir: Path, name: str) -> Any:
    """Table ``name`` of a run as one ``datasets.Dataset`` (its shards concatenated), or None when
    the run has none yet.  Reads ``run_dir/name`` whether it is one saved dataset or a folder of
    shards (dataset folders or ``*.arrow`` files, in any depth); without it, the finished TPs'
    shards ``run_dir/shards/*/name`` (a run still in progress)."""
    from datasets import Dataset, concatenate_datasets, load_from_disk

    run_dir = Path(run_dir)
    found = _parts(run_dir / name)
    if not found and (run_dir / "shards").is_dir():
        found = [p for shard in sorted((run_dir / "shards").iterdir()) if not shard.name.startswith(".")
                 for p in _parts(shard / name)]
    parts = [load_from_disk(str(p)) if p.is_dir() else Dataset.from_file(str(p)) for p in found]
    parts = [p for p in parts if len(p)]
    if not parts:
        return None
    if name in ("tps", "pairs", "exams"):
        want = features(name)
        parts = [p.cast(want) if set(p.column_names) == set(want) and p.features != want else p for p in parts]
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


__all__: Sequence[str] = ["MODES", "exam_rows", "features", "pair_rows", "read_table", "tp_rows", "write_tables"]
