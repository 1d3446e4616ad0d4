"""The three sizes every notebook runs at, chosen by one ``profile`` parameter.

- ``smoke``: seconds, for CI and nbval. The numbers mean nothing.
- ``default``: CPU minutes (about 5 minutes of training a model on 2 cores).
- ``full``: the report's hyperparameters (all the data, up to 70 epochs with early stopping), for a GPU.

Only sizes live here; architectures and optimiser settings are the same at every size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from .models import get_spec
from .train import TrainConfig

PROFILES = ("smoke", "default", "full")
ENV_VAR = "DEBLURLAB_PROFILE"

CIFAR_SIZES = {
    "smoke": dict(n_train=96, n_val=32, n_test=48, batch_size=32, epochs=1),
    "default": dict(n_train=None, n_val=400, n_test=500, batch_size=32, epochs=None),
    # None: 10% of the training images for validation; the test batch (or 10%) for test.
    "full": dict(n_train=None, n_val=None, n_test=None, batch_size=None, epochs=70),
}
# Epochs of the default profile, measured to fit about 5 minutes of training on 2 CPU cores.
DEFAULT_EPOCHS = {"resunet1": 6, "resunet3": 3}
DEFAULT_EPOCHS_FALLBACK = 3


def resolve_profile(profile: str | None = None) -> str:
    """The profile passed in, else ``$DEBLURLAB_PROFILE``, else ``default``; checked."""
    profile = profile or os.environ.get(ENV_VAR) or "default"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True)
class CifarPlan:
    profile: str
    n_train: int | None
    n_val: int | None
    n_test: int | None

    @classmethod
    def for_profile(cls, profile: str) -> "CifarPlan":
        sizes = CIFAR_SIZES[resolve_profile(profile)]
        return cls(profile, sizes["n_train"], sizes["n_val"], sizes["n_test"])

    def train_config(self, model_name: str, seed: int = 0) -> TrainConfig:
        sizes = CIFAR_SIZES[self.profile]
        training = get_spec(model_name).training
        epochs = sizes["epochs"] or DEFAULT_EPOCHS.get(model_name, DEFAULT_EPOCHS_FALLBACK)
        return TrainConfig(epochs=epochs, batch_size=sizes["batch_size"] or training.get("batch_size", 128),
                           learning_rate=training.get("learning_rate", 1e-3),
                           patience=training.get("patience", 7), seed=seed)
