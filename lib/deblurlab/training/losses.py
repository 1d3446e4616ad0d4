"""The losses and learning-rate schedules a ``TrainConfig`` names (``loss``, ``lr_schedule``):
MSE (the report's), L1 and Charbonnier, on every output of a model; a constant rate or a cosine
decay over the run's steps."""

from __future__ import annotations

import keras
from keras import ops

from .profiles import TrainConfig

CHARBONNIER_EPS = 1e-3


def charbonnier(y_true, y_pred):
    """Charbonnier loss, sqrt((y - x)^2 + eps^2) averaged: a smooth L1 (eps = 1e-3, as in
    LapSRN, MPRNet and NAFNet's option files)."""
    diff = ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")
    return ops.mean(ops.sqrt(ops.square(diff) + CHARBONNIER_EPS**2), axis=(-3, -2, -1))


LOSSES = {"mse": "mse", "l1": "mae", "charbonnier": charbonnier}


def learning_rate(config: TrainConfig, total_steps: int | None = None):
    """``config.learning_rate``, or with ``lr_schedule="cosine"`` a cosine decay from it to 0
    over ``total_steps`` optimiser steps (the optimiser's step count survives a resume)."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if config.lr_schedule == "cosine":
        if not total_steps:
            raise ValueError("a cosine schedule needs the run's total number of steps")
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, int(total_steps))
    raise ValueError(f"lr_schedule={config.lr_schedule!r}: choose 'constant' or 'cosine'")
