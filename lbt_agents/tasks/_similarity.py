"""A small numpy TF-IDF cosine nearest-neighbour helper (deterministic, no sklearn)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+|\\[a-z]+")
_CHUNK = 512


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def tfidf_matrix(texts: Sequence[str], max_features: int = 4096) -> np.ndarray:
    """Rows: L2-normalised TF-IDF vectors (sublinear tf, smooth idf) over the most frequent terms."""
    docs = [Counter(tokenize(t)) for t in texts]
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    vocab = [w for w, _ in sorted(df.items(), key=lambda kv: (-kv[1], kv[0]))[:max_features]]
    index = {w: i for i, w in enumerate(vocab)}
    n = len(texts)
    idf = np.array([np.log((1 + n) / (1 + df[w])) + 1.0 for w in vocab], dtype=np.float32)
    mat = np.zeros((n, len(vocab)), dtype=np.float32)
    for row, d in enumerate(docs):
        for w, c in d.items():
            col = index.get(w)
            if col is not None:
                mat[row, col] = 1.0 + np.log(c)
    mat *= idf
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms == 0, 1.0, norms)


def nearest_neighbours(
    texts: Sequence[str], k: int, groups: Sequence[str] | None = None, max_features: int = 4096
) -> list[list[int]]:
    """For each text, the indices of its ``k`` most similar *other* texts.

    With ``groups``, texts of the same group come first (each part ranked by cosine).
    Ties break by index, so the result is deterministic.
    """
    n = len(texts)
    if n == 0:
        return []
    mat = tfidf_matrix(texts, max_features)
    group_ids = None
    if groups is not None:
        labels = {g: i for i, g in enumerate(sorted(set(groups)))}
        group_ids = np.array([labels[g] for g in groups])
    out: list[list[int]] = []
    k = min(k, n - 1)
    for start in range(0, n, _CHUNK):
        sims = mat[start : start + _CHUNK] @ mat.T
        for r, row in enumerate(sims):
            i = start + r
            score = row.astype(np.float64)
            if group_ids is not None:
                score = score + 10.0 * (group_ids == group_ids[i])  # same group first
            score[i] = -np.inf
            if k == 0:
                out.append([])
                continue
            kth = np.partition(score, n - k)[n - k]
            cand = np.flatnonzero(score >= kth)
            cand = cand[np.lexsort((cand, -score[cand]))]
            out.append([int(j) for j in cand[:k]])
    return out
