"""DPO on the real smollm2-135m folder, then serve the tuned folder with vLLM and chat with it."""

from __future__ import annotations

import importlib.util

import pytest

from lbt_agents.training import DPOSettings, train_dpo

pytestmark = pytest.mark.integration


def test_dpo_smollm2_then_serve_with_vllm(tiny_pairs_dir, tmp_path):
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install -e '.[serve]')")
    import torch
    from langchain_openai import ChatOpenAI
    from safetensors.torch import load_file

    from lbt_agents.serving import VllmServer, pull_model

    base = pull_model("smollm2-135m")
    settings = DPOSettings(
        model=str(base), data=tiny_pairs_dir, output_dir=tmp_path / "dpo", max_steps=2, learning_rate=1e-3
    )
    result = train_dpo(settings)
    assert result.steps == 2 and result.merged_dir is not None

    before = load_file(str(next(base.glob("*.safetensors"))))
    after = load_file(str(result.merged_dir / "model.safetensors"))
    assert all(t.dtype == torch.bfloat16 for t in after.values())
    changed = [k for k in after if k in before and not torch.equal(before[k].to(torch.bfloat16), after[k])]
    assert any("q_proj" in k for k in changed), changed

    with VllmServer(result.merged_dir, served_name="smollm2-135m-dpo", kv_cache_gib=1.0, max_model_len=2048) as endpoint:
        llm = ChatOpenAI(
            base_url=endpoint.base_url, model="smollm2-135m-dpo", api_key="EMPTY", temperature=0, max_tokens=24,
            timeout=300,
        )
        reply = llm.invoke("What is 2 + 3? Answer briefly.")
    assert isinstance(reply.content, str) and reply.content.strip()
