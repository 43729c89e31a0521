"""Training the teacher on LbT feedback: M2's offline DPO (TRL + peft).

Heavy libraries (torch, transformers, trl, peft) load only when training runs.
"""

from lbt_agents.training.dpo import DPOSettings, TrainError, TrainResult, train_dpo

__all__ = ["DPOSettings", "TrainError", "TrainResult", "train_dpo"]
