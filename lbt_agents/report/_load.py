"""What a run folder holds, read from its files only (config, summary, tables, M3 rounds, M2 outputs)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lbt_agents.errors import DataError


@dataclass
class RunData:
    """One run (or ``lbt m2 eval`` output folder) as the report sees it."""

    path: Path
    run_id: str
    kind: str
    """``m1``, ``m2`` (preference run), ``m2-eval``, ``m3`` or ``unknown`` (unfinished, nothing saved yet)."""
    task: str | None
    config: dict[str, Any]
    summary: dict[str, Any] | None
    finished: bool
    tps: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    exams: list[dict[str, Any]] = field(default_factory=list)
    m3: dict[str, Any] | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    prefs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    m2_eval: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


def _rows(run_dir: Path, name: str) -> list[dict[str, Any]]:
    from lbt_agents.tables import read_table

    table = read_table(run_dir, name)
    return [] if table is None else table.to_list()


def expand(path: Path) -> list[Path]:
    """The run folders behind ``path``: itself, or for M3 repeats (``repeats.json``) each repeat ``rep<i>/``."""
    path = Path(path)
    if (path / "repeats.json").is_file():
        reps = sorted((p for p in path.glob("rep*") if (p / "config.yaml").is_file()),
                      key=lambda p: int(p.name[3:]) if p.name[3:].isdigit() else 0)
        if reps:
            return reps
    return [path]


def load_run(path: Path) -> RunData:
    """Read a run folder; a folder that is not a run is a DataError (one line)."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder (give a run folder such as runs/<run_id>)")
    if (path / "m2_eval.json").is_file() and not (path / "config.yaml").is_file():
        result = _json(path / "m2_eval.json")
        return RunData(path, path.name, "m2-eval", (result.get("task") or {}).get("name"), {}, None, True,
                       m2_eval=result)
    if not (path / "config.yaml").is_file():
        raise DataError(f"{path} is not a run folder (no config.yaml): give a folder written by lbt m1, m2 or m3")
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"cannot read {path / 'config.yaml'}: {str(exc).splitlines()[0]}") from None
    summary = _json(path / "summary.json") if (path / "summary.json").is_file() else None
    task = (summary or {}).get("task") or (config.get("task") or {}).get("name")
    stopped = bool(summary and summary.get("stopped"))
    run = RunData(path, path.name, "unknown", task, config, summary, summary is not None and not stopped)
    run.tps, run.pairs, run.exams = (_rows(path, n) for n in ("tps", "pairs", "exams"))
    if (path / "results.json").is_file() or (path / "rounds.jsonl").is_file() or (summary and "lanes" in summary):
        run.kind = "m3"
        if (path / "results.json").is_file():
            run.m3 = _json(path / "results.json")
            run.rounds = sorted(run.m3.get("rounds", {}).values(), key=lambda r: (r["lane"], r["round"]))
        elif (path / "rounds.jsonl").is_file():
            lines = (path / "rounds.jsonl").read_text().splitlines()
            rows = {(r["lane"], r["round"]): r for r in (json.loads(x) for x in lines if x.strip())}
            run.rounds = [rows[k] for k in sorted(rows)]
    elif summary and "m1" in summary and "pairs" in summary or any(path.glob("preferences_*")):
        run.kind = "m2"
        from datasets import load_from_disk

        for folder in sorted(path.glob("preferences_*")):
            if (folder / "state.json").is_file():
                rows = load_from_disk(str(folder)).remove_columns(["prompt", "chosen", "rejected"]).to_list()
                run.prefs[folder.name.removeprefix("preferences_")] = rows
    elif run.tps or run.pairs or (summary and "accuracy" in summary):
        run.kind = "m1"
    if summary and summary.get("stopped"):
        run.notes.append(f"run {run.run_id!r} stopped early ({summary['stopped']}): this report shows the work "
                         f"done before it stopped; --resume continues it")
    if not run.finished and not stopped:
        have = [n for n in ("tps", "pairs", "exams") if getattr(run, n)] + (["rounds"] if run.rounds else [])
        if not have:
            raise DataError(f"run {run.run_id!r} has not finished and has saved no results yet (no summary.json, "
                            f"no tables): nothing to report; resume it, or wait for it to finish")
        run.notes.append(f"run {run.run_id!r} has not finished (no summary.json): this report shows what it has "
                         f"saved so far ({', '.join(have)})")
    return run
