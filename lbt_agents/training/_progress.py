"""A trainer callback that reports one line per logging step and keeps the loss history."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

_SHOWN = (
    ("loss", "loss", "{:.4f}"),
    ("rewards/margins", "margin", "{:+.4f}"),
    ("rewards/accuracies", "acc", "{:.2f}"),
    ("learning_rate", "lr", "{:.2e}"),
)


class ProgressLog(TrainerCallback):
    """Calls ``emit`` with a line like ``step 3/10 loss 0.6925 margin +0.0021 acc 0.50 lr 5.00e-05 (1.2 s/step)``."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self.emit = emit
        self.history: list[dict[str, float]] = []
        self._start = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.monotonic()
        self.emit(f"training: {state.max_steps} steps, batch {args.per_device_train_batch_size} "
                  f"x accumulation {args.gradient_accumulation_steps}")

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:  # the final train_runtime/train_loss record
            return
        row = {"step": float(state.global_step)}
        row.update({k: float(v) for k, v in logs.items() if isinstance(v, (int, float))})
        self.history.append(row)
        parts = [f"step {state.global_step}/{state.max_steps}"]
        parts += [f"{label} {fmt.format(logs[key])}" for key, label, fmt in _SHOWN if key in logs]
        if state.global_step:
            parts.append(f"({(time.monotonic() - self._start) / state.global_step:.2f} s/step)")
        self.emit(" ".join(parts))
