"""The three sizes every notebook runs at, chosen by one ``profile`` parameter.

- ``smoke``: seconds, for CI and nbval. The numbers mean nothing.
- ``default``: CPU minutes (about 5 minutes of training a model on 2 cores).
- ``full``: the report's hyperparameters (all the data, up to 70 epochs with early stopping), for
  a GPU.

Only sizes live here; architectures and optimiser settings are the same at every size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..models import get_spec


@dataclass
class TrainConfig:
    """Training settings. Every field but ``epochs``, ``patience`` and ``steps_per_execution``
    goes into a run's resume fingerprint (``train._fingerprint``): adding a field changes it."""

    epochs: int
    batch_size: int
    learning_rate: float = 1e-3
    patience: int = 7
    seed: int = 0
    steps_per_execution: int = 1
    loss: str = "mse"  # "mse", "l1" or "charbonnier", on every output
    lr_schedule: str = "constant"  # or "cosine": from learning_rate to 0 over the run's steps


PROFILES = ("smoke", "default", "full")
ENV_VAR = "DEBLURLAB_PROFILE"

CIFAR_SIZES = {
    "smoke": dict(n_train=96, n_val=32, n_test=48, batch_size=32, epochs=1),
    "default": dict(n_train=None, n_val=400, n_test=400, batch_size=32, epochs=None),
    # None: 10% of the training images for validation; the test batch (or 10%) for test.
    # The reference run (python -m deblurlab.reference) is this profile: batch 32 (see README), the
    # report's learning rates and patience, early stopping, 70 epochs only as a safety cap.
    "full": dict(n_train=None, n_val=None, n_test=None, batch_size=32, epochs=70),
}
# The default profile's epochs (None above) and training-image cap are per model, set in its
# ``@register`` call (``default_epochs``, ``default_train_images``): about 5 minutes of training a
# model on 2 CPU cores (batch 32, float32, XLA per deblurlab.runtime.compute.CPU_XLA).


def resolve_profile(profile: str | None = None) -> str:
    """The profile passed in, else ``$DEBLURLAB_PROFILE``, else ``default``; checked."""
    profile = profile or os.environ.get(ENV_VAR) or "default"
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True)
class CifarPlan:
    """The CIFAR-10 sizes of one profile: training, validation and test images (None: all)."""

    profile: str
    n_train: int | None
    n_val: int | None
    n_test: int | None

    @classmethod
    def for_profile(cls, profile: str) -> CifarPlan:
        """The plan of ``profile``."""
        sizes = CIFAR_SIZES[resolve_profile(profile)]
        return cls(profile, sizes["n_train"], sizes["n_val"], sizes["n_test"])

    @property
    def min_test(self) -> int:
        """Without a test batch the test images are the first of one permutation at every profile,
        so a test split at least as large as every other profile's keeps all of them out of this
        profile's training and validation (the reference run's promise)."""
        return max((s["n_test"] or 0) for s in CIFAR_SIZES.values())

    def train_images(self, model_name: str) -> int | None:
        """The cap on ``model_name``'s training images at this profile (the first N of the training
        split; the model's ``default_train_images`` at the default profile); None means all of
        them."""
        return get_spec(model_name).default_train_images if self.profile == "default" else None

    def train_config(self, model_name: str, seed: int = 0) -> TrainConfig:
        """The ``TrainConfig`` of ``model_name`` at this profile (epochs, batch size, learning
        rate, patience), with ``seed``."""
        sizes = CIFAR_SIZES[self.profile]
        spec = get_spec(model_name)
        training = spec.training
        epochs = sizes["epochs"] or spec.default_epochs  # the default profile: the model's own
        if not epochs:
            raise ValueError(
                f"{model_name}: a {spec.dataset} model has no default_epochs; CifarPlan trains "
                "CIFAR-10 models (register it with default_epochs=N)"
            )
        return TrainConfig(
            epochs=epochs,
            batch_size=sizes["batch_size"] or training.get("batch_size", 128),
            learning_rate=training.get("learning_rate", 1e-3),
            patience=training.get("patience", 7),
            seed=seed,
        )


# --- the motion-blur chapter (REDS / GoPro / synthetic camera shake) --------------------------
# patch_size, batch_size and patches_per_image shape the training batches (the report: 256x256,
# 10 = 5 images x 2 patches); images_per_epoch None means every training frame once an epoch;
# n_eval test frames are deblurred at full resolution (eval_crop, when set, crops them first:
# smoke only); analysis_* size the patch-SSIM study; runs lists the chapter's training runs as
# (recipe, lr_decay) (a key of MOTION_RECIPES; True adds the exponential learning-rate decay that
# the report left out, to the report's recipe); light_epoch_cap caps the epochs of the light network
# trained for SRNDeblur_reds's training seconds (deblurlab.studies.motion.compare; None: no cap;
# smoke: 1, so a smoke run trains it once).
MOTION_SIZES = {
    "smoke": dict(
        patch_size=64,
        batch_size=4,
        patches_per_image=2,
        images_per_epoch=4,
        epochs=1,
        n_val=4,
        n_eval=1,
        eval_crop=(180, 252),
        synthetic_kernels=2,
        analysis_frames=4,
        analysis_patches_per_image=2,
        runs=(("mse-cosine-flips", False),),
        light_epoch_cap=1,
    ),
    "default": dict(
        patch_size=128,
        batch_size=8,
        patches_per_image=2,
        images_per_epoch=40,
        epochs=10,
        n_val=20,
        n_eval=10,
        eval_crop=None,
        synthetic_kernels=8,
        analysis_frames=None,
        analysis_patches_per_image=16,
        runs=(("report", False), ("mse-cosine-flips", False)),
        light_epoch_cap=None,
    ),
    "full": dict(
        patch_size=256,
        batch_size=10,
        patches_per_image=2,
        images_per_epoch=None,
        epochs=150,
        n_val=100,
        n_eval=500,
        eval_crop=None,
        synthetic_kernels=8,
        analysis_frames=2000,
        analysis_patches_per_image=2,
        runs=(("report", False), ("report", True), ("mse-cosine-flips", False)),
        light_epoch_cap=None,
    ),
}
# How the motion models train. "report": the original's MSE at a constant 1e-4 (the model's own
# rate), no augmentation. "l1-cosine-flips": the light restoration networks' option files (L1 on
# every scale, a cosine decay from 2e-4, flips and 90-degree rotations). "mse-cosine-flips": their
# schedule and augmentation with the report's MSE. The chapter's recipe is the one that measured
# best on both test groups (python -m deblurlab.motion_recipes; its record in records/).
MOTION_RECIPES = {
    "report": dict(loss="mse", learning_rate=None, lr_schedule="constant", augment=False),
    "l1-cosine-flips": dict(loss="l1", learning_rate=2e-4, lr_schedule="cosine", augment=True),
    "mse-cosine-flips": dict(loss="mse", learning_rate=2e-4, lr_schedule="cosine", augment=True),
}
MOTION_RECIPE = "mse-cosine-flips"  # the chapter's, the reference run's and the deblur command's
MOTION_FINAL_LR = 1e-6  # where the optional exponential decay ends (SRN-DeblurNet: 1e-4 -> 1e-6)


@dataclass(frozen=True)
class MotionPlan:
    """The motion chapter's sizes of one profile: patches, batches, epochs and the numbers
    of validation and test frames."""

    profile: str
    patch_size: int
    batch_size: int
    patches_per_image: int
    images_per_epoch: int | None
    epochs: int
    n_val: int
    n_eval: int
    eval_crop: tuple | None
    synthetic_kernels: int
    analysis_frames: int | None
    analysis_patches_per_image: int
    runs: tuple  # ((recipe, lr_decay), ...): the chapter's training runs
    light_epoch_cap: int | None = None  # the most epochs of the time-matched light network

    @classmethod
    def for_profile(cls, profile: str | None = None) -> MotionPlan:
        """The plan of ``profile`` (default: the resolved current profile)."""
        profile = resolve_profile(profile)
        return cls(profile, **MOTION_SIZES[profile])

    def train_config(
        self, model_name: str, seed: int = 0, recipe: str = MOTION_RECIPE
    ) -> TrainConfig:
        """The report trained SRNDeblur_reds for a fixed number of epochs (no early stopping);
        ``recipe`` (a key of ``MOTION_RECIPES``) sets the loss, learning rate and schedule."""
        if recipe not in MOTION_RECIPES:
            raise ValueError(f"recipe {recipe!r}: choose one of {', '.join(MOTION_RECIPES)}")
        recipe = MOTION_RECIPES[recipe]
        rate = recipe["learning_rate"] or get_spec(model_name).training.get("learning_rate", 1e-4)
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=rate,
            patience=self.epochs,
            seed=seed,
            loss=recipe["loss"],
            lr_schedule=recipe["lr_schedule"],
        )
