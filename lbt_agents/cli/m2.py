"""``lbt m2``: M2, learning from LbT scores by preference optimisation.  One command per function below.

Options are also read from ``LBT_M2_<COMMAND>_<OPTION>`` (for example ``LBT_M2_TRAIN_OUT``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.group()
def m2() -> None:
    """M2: preference pairs from LbT scores, then offline DPO of the teacher."""


# -- lbt m2 train ---------------------------------------------------------------------------------------

# CLI option -> DPOSettings field (only options the user actually gave override the YAML file);
# DPOSettings fields without a flag are set with --set KEY=VALUE or in the YAML file.
_TRAIN_FLAGS = {
    "profile": "profile",
    "data": "data",
    "model": "model",
    "out": "output_dir",
    "full": "lora",
    "max_steps": "max_steps",
    "epochs": "epochs",
    "beta": "beta",
    "learning_rate": "learning_rate",
    "batch_size": "per_device_batch_size",
    "grad_accum": "gradient_accumulation_steps",
    "max_length": "max_length",
    "nll_weight": "nll_weight",
    "merge": "merge",
    "seed": "seed",
    "threads": "num_threads",
}


@m2.command("train")
@click.option("--profile", help="Training defaults: default (LoRA) or paper (the paper's full-DPO recipe).")
@click.option("--data", type=click.Path(path_type=Path), help="Preference dataset folder (from `lbt m2 prefs`).")
@click.option("--model", help="Start model: HF model folder or registry name [default: smollm2-135m].")
@click.option("--out", type=click.Path(path_type=Path),
              help="Output folder: new, or an earlier `lbt m2 train` output (replaced atomically); others are refused.")  # fmt: skip
@click.option("--full/--lora", "full", default=None, help="Full fine-tuning instead of a LoRA adapter [default: --lora].")
@click.option("--max-steps", type=int, help="Optimizer steps (-1: train for --epochs).")
@click.option("--epochs", type=float, help="Passes over the pairs [default: 1].")
@click.option("--beta", type=float, help="DPO beta [default: 0.1].")
@click.option("--learning-rate", "--lr", "learning_rate", type=float, help="Learning rate [default: 5e-5 LoRA, 5e-7 full].")
@click.option("--batch-size", type=int, help="Pairs per forward pass [default: 2].")
@click.option("--grad-accum", type=int, help="Gradient accumulation steps [default: 1].")
@click.option("--max-length", type=int, help="Tokens kept per prompt+reply [default: 1024].")
@click.option("--nll-weight", type=float, help="Weight of an NLL term on chosen replies (RPO) [default: 0].")
@click.option("--merge/--no-merge", default=None, help="Write merged/ (LoRA merged into the base) [default: --merge].")
@click.option("--seed", type=int, help="Random seed [default: 0].")
@click.option("--threads", type=int, help="CPU threads for torch; 1 when vLLM servers share the cores [default: all].")
@click.option("--config", type=click.Path(path_type=Path), help="YAML file whose keys are DPOSettings fields.")
@click.option("--set", "set_", multiple=True, envvar="LBT_M2_TRAIN_SET", metavar="KEY=VALUE", help="Set any DPOSettings field (repeatable).")
def train(config: Path | None, set_: tuple[str, ...], **flags: Any) -> None:
    """DPO-tune a teacher on preference pairs; writes OUT/merged (servable), OUT/adapter, OUT/train_summary.json.

    Example: lbt m2 train --data runs/x/prefs --model smollm2-135m --out runs/x/dpo --max-steps 50
    """
    from lbt_agents.config import apply_overrides, read_yaml, validate
    from lbt_agents.training import DPOSettings

    data = read_yaml(config) if config is not None else {}  # YAML file, then flags, then --set
    for option, field in _TRAIN_FLAGS.items():
        value = flags[option]
        if value is None:
            continue
        data[field] = (not value) if option == "full" else value  # --full means lora: false
    apply_overrides(data, list(set_))
    settings = validate(DPOSettings, data, source=str(config) if config else "lbt m2 train")
    _run_train(settings)


def _run_train(settings: Any) -> None:
    import datasets
    from rich.console import Console
    from rich.table import Table

    from lbt_agents.training import train_dpo

    console = Console(stderr=True, highlight=False)
    datasets.disable_progress_bars()
    result = train_dpo(settings, emit=lambda line: console.print(line, markup=False))
    table = Table(title="lbt m2 train", show_header=False)
    table.add_row("pairs", str(result.pairs))
    table.add_row("steps", f"{result.steps} ({result.steps_per_s:.3f} steps/s, {result.train_s:.1f} s training)")
    table.add_row("final loss", "-" if result.final_loss is None else f"{result.final_loss:.4f}")
    table.add_row("merged model", str(result.merged_dir or "- (--no-merge)"))
    table.add_row("adapter", str(result.adapter_dir or "- (full fine-tuning)"))
    table.add_row("summary", str(result.summary_path))
    Console().print(table)


# -- lbt m2 prefs / lbt m2 eval ------------------------------------------------------------------------

from lbt_agents.cli._m2_runs import evaluate as _evaluate  # noqa: E402
from lbt_agents.cli._m2_runs import prefs as _prefs  # noqa: E402

m2.add_command(_prefs)
m2.add_command(_evaluate)
