"""Offline DPO of the teacher on M2 preference pairs, with TRL (+ peft LoRA), CPU-friendly.

:func:`train_dpo` writes ``output_dir/`` atomically::

    merged/              Hugging Face folder vLLM serves (safetensors, tokenizer, chat template)
    adapter/             the LoRA adapter (LoRA runs only; vLLM ``--enable-lora`` can serve it)
    train_summary.json   settings, steps, loss history, timings
    .lbt-owned           marks the folder as an ``m2-train`` output

``output_dir`` must be new, empty, or an earlier ``m2-train`` output (then it is replaced);
any other folder is refused before training starts, so no user data is ever deleted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lbt_agents.errors import ConfigError, DataError, LbtError

log = logging.getLogger("lbt_agents.training")

Dtype = Literal["float32", "bfloat16", "float16"]
Device = Literal["auto", "cpu", "cuda"]

DEFAULT_LR_LORA = 5e-5
DEFAULT_LR_FULL = 5e-7

OUTPUT_KIND = "m2-train"
"""The ``.lbt-owned`` kind of a training output folder."""
_OUTPUT_ENTRIES = {"merged", "adapter", "train_summary.json", ".trainer"}


class TrainError(LbtError):
    """Training could not run or finish (for example: out of memory)."""

    exit_code = 5


class DPOSettings(BaseModel):
    """Everything one DPO run needs (a YAML file's keys for ``lbt m2 train --config``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    profile: str = Field(
        "default",
        description="Named defaults (lbt_agents/profiles, section dpo): 'default' (LoRA, lr 5e-5, batch 2) or "
        "'paper' (the paper's recipe: full fine-tuning, lr 5e-7, batch 16, 1 epoch, beta 0.1, NLL weight 1); "
        "the run's own settings override the profile's.",
    )
    model: str = Field(
        "smollm2-135m", description="Start model: a Hugging Face model folder or a registry name (see `lbt models`)."
    )
    data: Path = Field(description="Preference dataset folder (written by save_pairs / `lbt m2 prefs`).")
    output_dir: Path = Field(
        description="Output folder: merged/, adapter/ and train_summary.json. A new folder, or an earlier "
        "training output (replaced atomically); any other non-empty folder is refused."
    )
    lora: bool = Field(True, description="Train a LoRA adapter (peft); False: full fine-tuning.")
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA path.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Modules LoRA adapts: 'all-linear' or names like [q_proj, v_proj]."
    )
    beta: float = Field(0.1, gt=0.0, description="DPO beta: higher keeps the model closer to the reference.")
    epochs: float = Field(1.0, gt=0.0, description="Passes over the pairs (ignored when max_steps > 0).")
    learning_rate: float | None = Field(
        None, gt=0.0, description=f"AdamW learning rate; default {DEFAULT_LR_LORA} with LoRA, {DEFAULT_LR_FULL} full."
    )
    lr_scheduler: str = Field("linear", description="transformers scheduler name (linear, cosine, constant, ...).")
    warmup_steps: float = Field(0.0, ge=0.0, description="Warm-up: steps, or a fraction of all steps if < 1.")
    per_device_batch_size: int = Field(2, ge=1, description="Pairs per forward pass.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Forward passes per optimizer step.")
    max_steps: int = Field(-1, description="Optimizer steps; -1 trains for `epochs` instead.")
    max_length: int | None = Field(1024, ge=8, description="Prompt + reply tokens kept per sequence (truncated).")
    max_prompt_length: int | None = Field(
        None, ge=1, description="Skip pairs whose chat-formatted prompt is longer than this many tokens."
    )
    nll_weight: float = Field(
        0.0, ge=0.0, description="Weight of an extra NLL loss on the chosen reply (RPO; TRL loss_type 'sft')."
    )
    seed: int = Field(0, description="Seed for LoRA init, data order and dropout.")
    merge: bool = Field(True, description="Also write merged/: the LoRA merged into the base (what vLLM serves).")
    train_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Weights dtype while training; auto: float32 on CPU, bfloat16 on CUDA."
    )
    save_dtype: Dtype = Field("bfloat16", description="dtype of merged/ (vLLM serves bfloat16).")
    device: Device = Field("auto", description="auto: CUDA when available, else CPU.")
    num_threads: int | None = Field(
        None, ge=1, description="CPU threads for torch; None: torch's default (all cores). Use 1 when other "
        "busy processes (vLLM servers) share the cores: oversubscribed threads slow training down many times."
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (slower; for big models).")
    logging_steps: int = Field(1, ge=1, description="Report the loss every this many steps.")

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        from lbt_agents.profiles import as_data, dpo_defaults, profile_name, under

        return under(dpo_defaults(profile_name(data)), as_data(data))


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_dpo` wrote and measured."""

    output_dir: Path
    merged_dir: Path | None
    adapter_dir: Path | None
    summary_path: Path
    steps: int
    pairs: int
    final_loss: float | None
    losses: tuple[float, ...]
    train_s: float
    wall_s: float

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.train_s if self.train_s > 0 else 0.0


def train_dpo(settings: DPOSettings, emit: Callable[[str], None] | None = None) -> TrainResult:
    """Run DPO as ``settings`` say and write ``settings.output_dir``; ``emit`` gets one line per logging step."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    emit = emit or log.info
    start = time.monotonic()
    check_output_dir(settings)

    from lbt_agents.preferences import load_pairs
    from lbt_agents.training._model import (
        check_causal_lm,
        load_tokenizer,
        resolve_model,
    )

    dataset = load_pairs(settings.data)
    model_dir = resolve_model(settings.model)
    check_causal_lm(model_dir)
    tokenizer = load_tokenizer(model_dir)
    n_all = len(dataset)
    dataset = dataset.select_columns(["prompt", "chosen", "rejected"])
    if settings.max_prompt_length is not None:
        limit = settings.max_prompt_length
        dataset = dataset.filter(lambda row: _prompt_tokens(tokenizer, row["prompt"]) <= limit)
        if len(dataset) == 0:
            raise DataError(f"all {n_all} pairs have prompts longer than max_prompt_length={limit} tokens")
    emit(f"DPO on {len(dataset)} pairs ({n_all - len(dataset)} skipped) from {settings.data}; model {model_dir}")

    from lbt_agents.training._atomic import atomic_dir

    with atomic_dir(settings.output_dir, kind=OUTPUT_KIND, legacy=_legacy_output) as out:
        result = _train(settings, model_dir, tokenizer, dataset, out, emit)
        summary = {
            "settings": settings.model_dump(mode="json"),
            "model_dir": str(model_dir),
            "pairs": len(dataset),
            "pairs_skipped": n_all - len(dataset),
            **result,
            "wall_s": round(time.monotonic() - start, 3),
            "versions": _versions(),
        }
        (out / "train_summary.json").write_text(json.dumps(summary, indent=2))

    final = settings.output_dir
    losses = tuple(row["loss"] for row in result["history"])
    return TrainResult(
        output_dir=final,
        merged_dir=final / "merged" if result["merged"] else None,
        adapter_dir=final / "adapter" if settings.lora else None,
        summary_path=final / "train_summary.json",
        steps=result["steps"],
        pairs=len(dataset),
        final_loss=losses[-1] if losses else None,
        losses=losses,
        train_s=result["train_s"],
        wall_s=summary["wall_s"],
    )


def check_output_dir(settings: DPOSettings) -> None:
    """Refuse (one line, before any work) an ``output_dir`` that training must not replace.

    That is a non-empty folder it did not write, or one that holds the data or the start model.
    """
    from lbt_agents.training._atomic import check_replaceable

    out = settings.output_dir.expanduser().resolve()
    model = Path(settings.model).expanduser()
    for what, path in (("preference data", settings.data), ("start model", model if model.is_dir() else None)):
        if path is None:
            continue
        where = Path(path).expanduser().resolve()
        if where == out or out in where.parents:
            raise ConfigError(
                f"the {what} {path} is inside output_dir {settings.output_dir}, which training replaces; "
                "write the output to another folder"
            )
    check_replaceable(settings.output_dir, kind=OUTPUT_KIND, legacy=_legacy_output)


def _legacy_output(folder: Path) -> bool:
    """An unmarked output of an ``lbt m2 train`` from before the ``.lbt-owned`` marker."""
    names = {p.name for p in folder.iterdir()}
    return "train_summary.json" in names and names <= _OUTPUT_ENTRIES


def _train(
    settings: DPOSettings, model_dir: Path, tokenizer: Any, dataset: Any, out: Path, emit: Callable[[str], None]
) -> dict[str, Any]:
    import torch
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOTrainer

    from lbt_agents.training._progress import ProgressLog

    use_cuda = settings.device == "cuda" or (settings.device == "auto" and torch.cuda.is_available())
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise TrainError("device is 'cuda' but torch sees no CUDA GPU; use device: cpu (or auto)")
    train_dtype = _train_dtype(settings, use_cuda)
    lr = learning_rate(settings)

    progress = ProgressLog(emit)
    work = out / ".trainer"
    threads = torch.get_num_threads()
    if settings.num_threads is not None and not use_cuda:
        torch.set_num_threads(settings.num_threads)
    config = dpo_config(settings, work, use_cuda=use_cuda)
    try:
        model = _load_model(model_dir, train_dtype)
        ref_model = None if settings.lora else _load_model(model_dir, train_dtype)
        trainer = DPOTrainer(
            model=model,
            ref_model=ref_model,
            args=config,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=_lora_config(settings) if settings.lora else None,
            callbacks=[progress],
        )
        trainer.remove_callback(PrinterCallback)  # ProgressLog reports instead of raw log dicts
        t0 = time.monotonic()
        trainer.train()
        train_s = time.monotonic() - t0
        policy = trainer.accelerator.unwrap_model(trainer.model)
        merged = _save(settings, policy, tokenizer, model_dir, out)
    except (torch.OutOfMemoryError, MemoryError):
        raise TrainError(_OOM_ADVICE) from None
    except RuntimeError as exc:
        if "out of memory" in str(exc) or "can't allocate memory" in str(exc):
            raise TrainError(_OOM_ADVICE) from None
        raise
    finally:
        torch.set_num_threads(threads)
        shutil.rmtree(work, ignore_errors=True)
    steps = int(trainer.state.global_step)
    emit(f"done: {steps} steps in {train_s:.1f} s ({steps / train_s if train_s else 0:.3f} steps/s)")
    return {
        "steps": steps,
        "train_s": round(train_s, 3),
        "steps_per_s": round(steps / train_s, 4) if train_s else None,
        "learning_rate": lr,
        "train_dtype": train_dtype,
        "device": "cuda" if use_cuda else "cpu",
        "num_threads": settings.num_threads or threads,
        "history": progress.history,
        "final_loss": progress.history[-1]["loss"] if progress.history else None,
        "merged": merged,
    }


def learning_rate(settings: DPOSettings) -> float:
    """The learning rate a run uses: ``settings.learning_rate``, else the LoRA or full fine-tuning default."""
    return settings.learning_rate or (DEFAULT_LR_LORA if settings.lora else DEFAULT_LR_FULL)


def _train_dtype(settings: DPOSettings, use_cuda: bool) -> str:
    return settings.train_dtype if settings.train_dtype != "auto" else ("bfloat16" if use_cuda else "float32")


def dpo_config(settings: DPOSettings, work: Path, *, use_cuda: bool = False) -> Any:
    """The TRL ``DPOConfig`` that ``settings`` train with (trainer files under ``work``); builds no model.

    The NLL term (``nll_weight > 0``) is TRL 1.16's ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1, nll_weight]`` (the older ``rpo_alpha`` field is gone)."""
    from trl import DPOConfig

    loss_type, loss_weights = ["sigmoid"], None
    if settings.nll_weight > 0:
        loss_type, loss_weights = ["sigmoid", "sft"], [1.0, settings.nll_weight]
    return DPOConfig(
        output_dir=str(work),
        beta=settings.beta,
        loss_type=loss_type,
        loss_weights=loss_weights,
        learning_rate=learning_rate(settings),
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_steps,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=_train_dtype(settings, use_cuda) == "bfloat16",
        fp16=False,
        use_cpu=not use_cuda,
        gradient_checkpointing=settings.gradient_checkpointing,
        logging_steps=settings.logging_steps,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=use_cuda,
        dataset_num_proc=None,
        optim="adamw_torch",
    )


_OOM_ADVICE = (
    "out of memory while training; lower per_device_batch_size (raise gradient_accumulation_steps instead), "
    "lower max_length, keep lora: true, or turn on gradient_checkpointing"
)


def _load_model(model_dir: Path, dtype: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype), local_files_only=True)


def _lora_config(settings: DPOSettings) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


def _save(settings: DPOSettings, policy: Any, tokenizer: Any, model_dir: Path, out: Path) -> bool:
    """Write adapter/ and merged/; returns whether merged/ was written."""
    import torch

    if settings.lora:
        policy.save_pretrained(out / "adapter")
        tokenizer.save_pretrained(out / "adapter")
        if not settings.merge:
            return False
        policy = policy.merge_and_unload()
    policy = policy.to(getattr(torch, settings.save_dtype))
    policy.config.use_cache = True
    merged = out / "merged"
    policy.save_pretrained(merged, safe_serialization=True)
    tokenizer.save_pretrained(merged)
    base_gen = model_dir / "generation_config.json"
    if base_gen.is_file():  # keep the base model's sampling defaults, which vLLM reads
        shutil.copy2(base_gen, merged / "generation_config.json")
    return True


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return len(ids)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("trl", "transformers", "peft", "torch", "datasets"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
