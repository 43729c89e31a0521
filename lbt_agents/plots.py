"""PNG plots of M3 runs (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence


def plot_rounds(
    rows: Sequence[dict[str, Any]], path: Path, *, labels: Mapping[str, str] | None = None, title: str = "M3"
) -> Path:
    """Test metric (left) and pooled minibatch accuracy (right) per round, one line per lane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = labels or {}
    lanes = list(dict.fromkeys(r["lane"] for r in rows))
    metric = next((r["metric"] for r in rows if r.get("metric")), "metric")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for lane in lanes:
        mine = sorted((r for r in rows if r["lane"] == lane), key=lambda r: r["round"])
        label = labels.get(lane, lane)
        pts = [(r["round"], 100 * r["test_value"]) for r in mine if r["test_value"] is not None]
        if pts:
            left.plot(*zip(*pts), marker="o", label=label)
        pooled = [(r["round"], 100 * r["pooled_accuracy"]) for r in mine if r["pooled_accuracy"] is not None]
        if pooled:
            right.plot(*zip(*pooled), marker="s", label=label)
    left.set(title=f"teacher's test {metric} (best set)", xlabel="round", ylabel=f"{metric} (%)")
    right.set(title="students' pooled minibatch accuracy", xlabel="round", ylabel="accuracy (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, names = left.get_legend_handles_labels()
    if handles:
        fig.legend(handles, names, loc="lower center", ncol=1, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.04 * len(lanes), 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
