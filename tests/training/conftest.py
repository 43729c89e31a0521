"""Fixtures: a tiny randomly initialised Llama chat model built offline, and preference rows."""

from __future__ import annotations

from pathlib import Path

import pytest

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = [
    "Solve the problem step by step. The answer is 42.",
    "Teacher: 12 + 7 = 19, so the answer is 19.",
    "Student rationale: multiply both sides by two, then subtract three.",
    "user assistant system question answer boxed fraction sqrt pi",
] * 20


def tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(_CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = CHATML
    return fast


def tiny_llama(folder: Path, seed: int = 0) -> Path:
    """Write a 2-layer Llama (hidden 32) plus a ChatML tokenizer to ``folder``; returns it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_pairs(n: int = 8) -> list[dict]:
    """``n`` preference rows in TRL's conversational format (plus the M2 metadata columns)."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": "Solve the problem step by step."},
                    {"role": "user", "content": f"What is {i} + 7?"},
                ],
                "chosen": [{"role": "assistant", "content": f"{i} + 7 = {i + 7}, so the answer is {i + 7}."}],
                "rejected": [{"role": "assistant", "content": f"The answer is {i * 3}."}],
                "tp_id": f"tp{i}",
                "chosen_id": f"tp{i}-s0",
                "rejected_id": f"tp{i}-s1",
                "chosen_score": 1.0,
                "rejected_score": 0.0,
                "gap": 1.0,
                "mode": "m2",
            }
        )
    return rows


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="session")
def tiny_pairs_dir(tmp_path_factory) -> Path:
    from lbt_agents.preferences import save_pairs

    return save_pairs(tiny_pairs(8), tmp_path_factory.mktemp("prefs") / "pairs")
