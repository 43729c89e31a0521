"""M2 end to end on the real embedded vLLM: preference pairs from a tiny M1 run,
2 DPO steps, the tuned model served by vLLM again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from datasets import load_from_disk
from safetensors.torch import load_file

from tests.integration._helpers import LABEL_TASK, lbt

pytestmark = pytest.mark.integration


def test_prefs_train_serve(tmp_path: Path, embedded_classroom) -> None:
    url = embedded_classroom.base_url("smollm2-135m")
    agent = {"model": "smollm2-135m", "base_url": url, "timeout_s": 120}
    cfg = tmp_path / "m2.yaml"
    cfg.write_text(yaml.safe_dump({
        "task": {**LABEL_TASK, "split": "train", "limit": 3, "eps_per_tp": 2},
        "classroom": {
            "teacher": {**agent, "name": "teacher", "sampling": {"temperature": 1.0, "n": 4, "max_tokens": 160}},
            "students": [{**agent, "name": "student", "sampling": {"temperature": 0.0, "max_tokens": 96}}],
        },
        "m1": {"pairs_per_tp": 4},
        "m2": {"min_gap": 0.0},  # any score difference makes a pair: a 135M teacher gives few wide gaps
        "output_dir": str(tmp_path / "runs"),
    }))
    out = lbt("m2", "prefs", "--config", str(cfg), "--run-id", "p", "--no-progress", timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    run = tmp_path / "runs" / "p"
    pairs = load_from_disk(str(run / "preferences_m2"))
    summary = json.loads((run / "summary.json").read_text())
    assert len(pairs) == summary["pairs"]["m2"] > 0
    for row in pairs:
        assert row["gap"] > 0.0 and row["chosen_score"] > row["rejected_score"]
        assert row["prompt"][0]["role"] == "system" and row["chosen"][0]["role"] == "assistant"
        assert row["chosen"][0]["content"] != row["rejected"][0]["content"]

    out = lbt("m2", "train", "--data", str(run / "preferences_m2"), "--model", "smollm2-135m",
              "--out", str(tmp_path / "dpo"), "--max-steps", "2", "--lr", "1e-3", "--threads", "1", timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    merged = tmp_path / "dpo" / "merged"
    from lbt_agents.serving import pull_model

    base = pull_model("smollm2-135m")  # already pulled: returns its folder
    before = load_file(str(next(base.glob("*.safetensors"))))
    after = load_file(str(merged / "model.safetensors"))
    changed = [k for k in after if k in before and not torch.equal(before[k].to(after[k].dtype), after[k])]
    assert any("q_proj" in k for k in changed), changed

    from langchain_openai import ChatOpenAI

    from lbt_agents.serving import VllmServer

    with VllmServer(merged, served_name="smollm2-135m-m2", kv_cache_gib=1.0, max_model_len=2048) as endpoint:
        llm = ChatOpenAI(base_url=endpoint.base_url, model="smollm2-135m-m2", api_key="EMPTY", temperature=0,
                         max_tokens=24, timeout=300)
        reply = llm.invoke("Alice says: Bob is a knave. Bob says: we are both knights. Is Alice a knight?")
    assert isinstance(reply.content, str) and reply.content.strip()
