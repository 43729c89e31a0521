"""M2 preference pairs: turn scored TR-TA samples into DPO data (TRL's conversational format).

Each teaching problem (TP) contributes the teacher's N sampled replies, each scored
``score = w * correctness + (1 - w) * LbT`` (M2) or ``score = correctness`` (the
correctness-only DPO baseline).  Every two replies whose scores differ by more than
``min_gap`` form a pair (the higher one is *chosen*); at most ``max_pairs_per_tp``
pairs per TP are kept, largest gaps first.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from lbt_agents.errors import DataError

PreferenceMode = Literal["m2", "correctness"]

PAIR_COLUMNS = (
    "prompt",
    "chosen",
    "rejected",
    "tp_id",
    "chosen_id",
    "rejected_id",
    "chosen_score",
    "rejected_score",
    "gap",
    "mode",
)

_GAP_DECIMALS = 9  # scores are rounded before the strict gap test, so 1.0 - 0.7 counts as 0.3


class Message(TypedDict):
    role: str
    content: str


class ScoredSample(TypedDict):
    """One teacher reply (TR-TA) with its grades."""

    id: str
    text: str
    correct: bool | float
    lbt: float


class ScoredTP(TypedDict):
    """One teaching problem: the chat messages the teacher saw and its scored replies."""

    tp_id: str
    prompt: list[Message]
    samples: list[ScoredSample]


class PreferenceRow(TypedDict):
    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tp_id: str
    chosen_id: str
    rejected_id: str
    chosen_score: float
    rejected_score: float
    gap: float
    mode: str


class PreferenceSettings(BaseModel):
    """How scored samples become preference pairs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weight: float = Field(
        0.5, ge=0.0, le=1.0, description="w in score = w*correctness + (1-w)*LbT (mode m2 only)."
    )
    min_gap: float = Field(
        0.3, ge=0.0, description="A pair needs a score gap strictly greater than this."
    )
    max_pairs_per_tp: int = Field(8, ge=1, description="Most pairs kept per TP (largest gaps first).")
    mode: PreferenceMode = Field(
        "m2", description="'m2': score mixes correctness and LbT; 'correctness': score = correctness only."
    )


def score(sample: Mapping[str, Any], settings: PreferenceSettings) -> float:
    """The sample's score under ``settings.mode``, rounded to remove float noise."""
    correct = float(sample["correct"])
    if settings.mode == "correctness":
        value = correct
    else:
        value = settings.weight * correct + (1.0 - settings.weight) * float(sample["lbt"])
    return round(value, _GAP_DECIMALS)


def pairs_for_tp(tp: Mapping[str, Any], settings: PreferenceSettings | None = None) -> list[PreferenceRow]:
    """Preference rows for one TP (maybe none); deterministic for the same input."""
    settings = settings or PreferenceSettings()
    tp_id = str(_field(tp, "tp_id", "TP"))
    prompt = _messages(_field(tp, "prompt", f"TP {tp_id}"), f"TP {tp_id}")
    need_lbt = settings.mode == "m2"
    samples = [_sample(s, tp_id, need_lbt) for s in _field(tp, "samples", f"TP {tp_id}")]
    ids = [s["id"] for s in samples]
    if len(set(ids)) != len(ids):
        raise DataError(f"TP {tp_id}: sample ids are not unique: {ids}")
    scores = {s["id"]: score(s, settings) for s in samples}

    candidates: list[tuple[float, str, str, ScoredSample, ScoredSample]] = []
    for a, b in combinations(samples, 2):
        if a["text"].strip() == b["text"].strip():
            continue
        hi, lo = (a, b) if scores[a["id"]] >= scores[b["id"]] else (b, a)
        gap = round(scores[hi["id"]] - scores[lo["id"]], _GAP_DECIMALS)
        if gap > settings.min_gap:
            candidates.append((gap, hi["id"], lo["id"], hi, lo))
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))

    rows: list[PreferenceRow] = []
    seen: set[tuple[str, str]] = set()
    for gap, _, _, hi, lo in candidates:
        key = (hi["text"].strip(), lo["text"].strip())
        if key in seen:  # duplicate replies under other ids would repeat the same pair
            continue
        seen.add(key)
        rows.append(
            PreferenceRow(
                prompt=[Message(role=m["role"], content=m["content"]) for m in prompt],
                chosen=[Message(role="assistant", content=hi["text"])],
                rejected=[Message(role="assistant", content=lo["text"])],
                tp_id=tp_id,
                chosen_id=hi["id"],
                rejected_id=lo["id"],
                chosen_score=scores[hi["id"]],
                rejected_score=scores[lo["id"]],
                gap=gap,
                mode=settings.mode,
            )
        )
        if len(rows) == settings.max_pairs_per_tp:
            break
    return rows


def make_pairs(tps: Iterable[Mapping[str, Any]], settings: PreferenceSettings | None = None) -> list[PreferenceRow]:
    """Preference rows for all TPs; raises :class:`DataError` when no pair passes the gap rule."""
    settings = settings or PreferenceSettings()
    rows: list[PreferenceRow] = []
    n_tps = 0
    for tp in tps:
        n_tps += 1
        rows.extend(pairs_for_tp(tp, settings))
    if not rows:
        raise DataError(
            f"no preference pairs: none of {n_tps} TPs has two different replies whose scores differ by more "
            f"than {settings.min_gap} (mode {settings.mode}); sample more replies per TP or lower min_gap"
        )
    return rows


def save_pairs(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Save rows as a Hugging Face ``datasets`` folder at ``path``, atomically; returns the path."""
    from datasets import Dataset

    from lbt_agents.training._atomic import atomic_dir

    if not rows:
        raise DataError(f"no preference pairs to save to {path}; nothing was written")
    path = Path(path)
    dataset = Dataset.from_list([dict(r) for r in rows])
    with atomic_dir(path) as tmp:
        dataset.save_to_disk(str(tmp))
    return path


def load_pairs(path: str | os.PathLike[str]) -> Any:
    """Load a preference dataset folder written by :func:`save_pairs` (a ``datasets.Dataset``)."""
    from datasets import Dataset

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"preference data folder not found: {path} (build it with save_pairs / `lbt m2 prefs`)")
    if not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        raise DataError(f"{path} is not a saved `datasets` folder (no state.json); build it with save_pairs")
    try:
        dataset = Dataset.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise DataError(f"cannot read preference data in {path}: {str(exc).splitlines()[0]}") from None
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in dataset.column_names]
    if missing:
        raise DataError(f"preference data in {path} lacks column(s) {missing}; it has {dataset.column_names}")
    if len(dataset) == 0:
        raise DataError(f"preference data in {path} is empty")
    return dataset


def _field(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise DataError(f"{where}: missing field {key!r}")
    return obj[key]


def _messages(value: Any, where: str) -> list[Message]:
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: prompt must be a non-empty list of {{role, content}} messages")
    for m in value:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: every prompt message needs string 'role' and 'content', got {m!r}")
    return value


def _sample(value: Any, tp_id: str, need_lbt: bool) -> ScoredSample:
    where = f"TP {tp_id} sample"
    sample_id = str(_field(value, "id", where))
    where = f"TP {tp_id} sample {sample_id}"
    text = _field(value, "text", where)
    if not isinstance(text, str):
        raise DataError(f"{where}: text must be a string")
    correct = _unit(_field(value, "correct", where), "correct", where)
    lbt = _unit(_field(value, "lbt", where), "lbt", where) if need_lbt or "lbt" in value else 0.0
    return ScoredSample(id=sample_id, text=text, correct=correct, lbt=lbt)


def _unit(value: Any, name: str, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: {name} must be a number in [0, 1], got {value!r}") from None
    if math.isnan(x) or not 0.0 <= x <= 1.0:
        raise DataError(f"{where}: {name} must be in [0, 1], got {value!r}")
    return x
