"""The settings of ``clipbench train-tiny`` and the shipped recipes, torch-free so the CLI can show their
defaults without importing torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from clipbench.foundations.errors import ClipbenchError

#: Dataset the tiny model is trained on (its train split only).
TRAIN_DATASET = "digits"
#: Epochs of the shapes recipe (``clipbench-shapes``).
SHAPES_EPOCHS = 8


@dataclass(frozen=True)
class TrainSettings:
    """Everything that decides the trained weights besides the data and the code."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_epochs: int = 1
    #: random translation of each training image by up to this many pixels (at model resolution)
    max_shift: int = 0
    #: stop after this many optimiser steps (None: run all epochs); for quick checks and tests
    max_steps: int | None = None
    threads: int = 2

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ClipbenchError(f"train-tiny: {name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ClipbenchError(f"train-tiny: steps must be at least 1, got {self.max_steps}")
        if self.lr <= 0:
            raise ClipbenchError(f"train-tiny: learning rate must be positive, got {self.lr}")
        if self.max_shift < 0:
            raise ClipbenchError(f"train-tiny: max shift must be >= 0, got {self.max_shift}")


#: The shipped recipe per training dataset: ``clipbench-tiny`` (digits) and ``clipbench-shapes`` (shapes).
RECIPES: dict[str, TrainSettings] = {
    "digits": TrainSettings(),
    "shapes": TrainSettings(epochs=SHAPES_EPOCHS, batch_size=64, lr=2e-3, threads=1),
}
TRAIN_DATASETS = tuple(RECIPES)


def recipe(dataset: str = TRAIN_DATASET) -> TrainSettings:
    """The shipped training settings for ``dataset``."""
    if dataset not in RECIPES:
        raise ClipbenchError(f"train-tiny: unknown dataset {dataset!r}; expected one of {', '.join(RECIPES)}")
    return RECIPES[dataset]


def settings_with(dataset: str = TRAIN_DATASET, **overrides: object) -> TrainSettings:
    """``dataset``'s recipe with the non-None ``overrides`` applied (what the CLI passes through)."""
    return dataclasses.replace(recipe(dataset), **{k: v for k, v in overrides.items() if v is not None})
