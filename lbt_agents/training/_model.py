"""Find and check the model folder that DPO starts from (never downloads from a hub)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lbt_agents.errors import ConfigError

log = logging.getLogger("lbt_agents.training")

_WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def resolve_model(name_or_path: str) -> Path:
    """A model folder for ``name_or_path``: an existing folder, or a registry name pulled by ``lbt_agents.serving``.

    Unknown registry names raise the serving package's :class:`~lbt_agents.errors.ServeError`.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists():
        raise ConfigError(f"model {name_or_path!r} is a file; give a Hugging Face model folder or a registry name")
    if os.sep in name_or_path or name_or_path.startswith((".", "~")):
        raise ConfigError(f"model folder not found: {path}")
    try:  # the serving package is optional here: import it only for registry names
        from lbt_agents import serving
    except ImportError as exc:
        raise ConfigError(
            f"model {name_or_path!r} is not a folder, and registry names need lbt_agents.serving ({exc})"
        ) from None
    pulled = getattr(serving, "pulled_model_dir", None)
    found = pulled(name_or_path) if pulled is not None else None
    if found is not None and Path(found).is_dir():
        return Path(found).resolve()
    log.info("model %s is not pulled yet; pulling it", name_or_path)
    return Path(serving.pull_model(name_or_path, progress=log.info)).resolve()


def check_causal_lm(path: Path) -> Any:
    """The folder's ``PretrainedConfig``; :class:`ConfigError` unless it is a causal LM with weights."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if not (path / "config.json").is_file():
        raise ConfigError(f"{path} is not a Hugging Face model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (ValueError, OSError, KeyError) as exc:
        raise ConfigError(f"cannot read the model config in {path}: {str(exc).splitlines()[0]}") from None
    causal = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    archs = list(getattr(config, "architectures", None) or [])
    if archs:
        ok = any(a in causal or a.endswith("ForCausalLM") for a in archs)
    else:
        ok = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    if not ok:
        what = ", ".join(archs) or config.model_type
        raise ConfigError(f"{path} holds a {what} model, not a causal LM (…ForCausalLM); DPO needs a causal LM")
    if not any(next(path.glob(g), None) for g in _WEIGHT_GLOBS):
        raise ConfigError(f"{path} has a config but no weights (*.safetensors or *.bin)")
    return config


def load_tokenizer(path: Path) -> Any:
    """The folder's tokenizer, with a pad token and a chat template (the pairs are chat messages)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"cannot load the tokenizer in {path}: {str(exc).splitlines()[0]}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"the tokenizer in {path} has no chat template; DPO on chat-formatted pairs needs one (an instruct model)"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
