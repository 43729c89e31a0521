"""`lbt m1` end to end on the real embedded vLLM classroom (smollm2-135m)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from tests.integration._helpers import lbt, m1_config

pytestmark = pytest.mark.integration


def test_lbt_m1_on_real_vllm(tmp_path: Path, embedded_classroom) -> None:
    cfg = m1_config(tmp_path / "m1.yaml", embedded_classroom.base_url("smollm2-135m"), tps=2, pairs=2, eps=2)
    out = lbt("m1", "--config", str(cfg), "--run-id", "it", "--no-progress", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "it"

    tps, pairs, exams = (load_from_disk(str(run / name)) for name in ("tps", "pairs", "exams"))
    assert len(tps) == 2
    assert {f"{m}_answer" for m in ("greedy", "sc", "max", "sum", "avg")} <= set(tps.column_names)
    for tp in tps:
        mine = [p for p in pairs if p["tp_id"] == tp["tp_id"]]
        assert [p["index"] for p in mine] == [0, 1]
        for pair in mine:
            assert pair["text"]
            assert 0.0 <= pair["lbt"] <= 1.0
            taken = [e for e in exams if e["pair_id"] == pair["pair_id"]]
            if pair["answer"] is not None:
                assert len(taken) == 2  # 2 EPs x 1 student x 1 repetition
                assert pair["lbt"] == sum(e["score"] for e in taken) / 2
            else:
                assert taken == []

    summary = json.loads((run / "summary.json").read_text())
    answered = sum(p["answer"] is not None for p in pairs)
    assert summary["exams"] == answered * 2
    assert summary["tokens"]["teacher"]["calls"] == 2 * (2 + 1)
    assert summary["tokens"]["teacher"]["completion_tokens"] > 0
    assert "M1-MAX" in (run / "summary.md").read_text()
    assert "M1-MAX" in out.stdout


def test_unreachable_server_is_one_clear_line(tmp_path: Path) -> None:
    cfg = m1_config(tmp_path / "m1.yaml", "http://127.0.0.1:9/v1", tps=1, pairs=1, eps=1)
    out = lbt("m1", "--config", str(cfg), "--no-progress", timeout=120)
    assert out.returncode == 3
    assert out.stderr.strip().startswith("error: agent 'teacher': cannot reach http://127.0.0.1:9/v1")
    assert "Traceback" not in out.stderr
