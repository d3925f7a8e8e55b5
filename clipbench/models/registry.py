"""``MODELS``: the explicit registry of named checkpoints (OpenAI's nine plus packaged ones)."""

from __future__ import annotations

from clipbench.foundations.registry import Registry
from clipbench.models.checkpoints import OPENAI_CHECKPOINTS, PACKAGED_CHECKPOINTS, CheckpointInfo

MODELS: Registry[CheckpointInfo] = Registry("model")


def register_checkpoint(info: CheckpointInfo) -> CheckpointInfo:
    """Add a checkpoint under its name and aliases (duplicates, in any spelling, are rejected)."""
    return MODELS.register(info.name, info, info.aliases)


for _info in (*OPENAI_CHECKPOINTS, *PACKAGED_CHECKPOINTS):
    register_checkpoint(_info)
