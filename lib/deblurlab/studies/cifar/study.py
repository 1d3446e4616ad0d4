"""The CIFAR-10 gaussian-blur study as a few calls, shared by every CIFAR chapter notebook: the
data, training (or the shipped reference weights), evaluation and restorations.

    study = prepare_study(profile)                  # data, splits, fixed blurred val/test sets
    model, result = train_model(study, "resunet1")  # resumable training, best weights loaded
    evaluation = evaluate(study, {"resunet1": model})  # per-image metrics on the held-out test set

The same calls, with the same signatures, as ``motion_study``; the tables and saved results are in
``cifar_results``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from ...core import metrics as M
from ...core.results import BLURRED_INPUT, Evaluation
from ...data.blur import TEST_SEED, make_blurred_set, training_stream
from ...data.cifar import CifarSplits, load_cifar10, split_cifar10
from ...models import build_model
from ...runtime import compute
from ...runtime.provenance import provenance
from ...training import zoo
from ...training.checkpoints import resumed_setup
from ...training.profiles import CifarPlan, resolve_profile
from ...training.train import (
    TrainResult,
    local_copy,
    predict,
    run_directory,
    set_seeds,
    train,
)

VAL_SEED = TEST_SEED + 1


@dataclass
class CifarStudy:
    """The CIFAR-10 data of one profile: splits, the fixed blurred validation and test sets
    (with the test sigmas) and the provenance of the run."""

    plan: CifarPlan
    splits: CifarSplits
    val_blurred: np.ndarray
    test_blurred: np.ndarray
    test_sigmas: np.ndarray
    provenance: dict = field(default_factory=dict)

    @property
    def profile(self) -> str:
        """The profile name (``smoke``, ``default`` or ``full``)."""
        return self.plan.profile

    def describe(self) -> str:
        """One line: the data, their split and the profile."""
        return f"{self.splits.describe()}; profile {self.profile}"


def prepare_study(profile: str | None = None, data_dir=None, *, seed: int = 0) -> CifarStudy:
    """Load CIFAR-10, split it at the profile's sizes and blur the val/test sets once with fixed
    seeds. Returns a ``CifarStudy``."""
    plan = CifarPlan.for_profile(resolve_profile(profile))
    data = load_cifar10(data_dir)
    splits = split_cifar10(
        data,
        n_train=plan.n_train,
        n_val=plan.n_val,
        n_test=plan.n_test,
        seed=seed,
        min_test=plan.min_test,
    )
    val_blurred, _ = make_blurred_set(splits.val, seed=VAL_SEED)
    test_blurred, test_sigmas = make_blurred_set(splits.test, seed=TEST_SEED)
    return CifarStudy(
        plan,
        splits,
        val_blurred,
        test_blurred,
        test_sigmas,
        provenance(splits.describe(), plan.profile),
    )


def run_name(study: CifarStudy, model_name: str, *, seed: int = 0) -> str:
    """The training run's folder name under runs/."""
    return f"cifar-{model_name}-{study.profile}" + (f"-seed{seed}" if seed else "")


def train_model(
    study: CifarStudy,
    model_name: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    callbacks: list | None = None,
    weights: str = "train",
    precision: str | None = None,
    continue_from=None,
) -> tuple[keras.Model, TrainResult]:
    """Build ``model_name`` from the registry and train it (or resume, or load a finished run).

    ``weights="zoo"`` skips training and loads the shipped reference weights instead (its result
    comes from the reference run's record); a model without shipped weights trains, and says so.
    ``epochs`` overrides the profile's epoch limit (the reference run's cap); ``callbacks`` are
    added to training's own (e.g. a time limit); ``precision`` (a Keras dtype policy) overrides the
    machine's choice, in a run of its own name; ``continue_from`` (a ``train.Continuation``)
    continues a run whose checkpoints are gone."""
    if weights == "zoo":
        if model_name in zoo.available():
            return zoo_model(model_name)
        print(
            f"{model_name}: no shipped reference weights "
            f"({zoo.status([model_name])[model_name]}), so it "
            f"trains at the {study.profile} profile instead"
        )
    elif weights != "train":
        raise ValueError(
            f"weights={weights!r}: use 'train' (train at the profile) or 'zoo' (shipped weights)"
        )
    config = study.plan.train_config(model_name, seed=seed)
    if epochs is not None:
        config.epochs = epochs
    train_images = study.splits.train[
        : study.plan.train_images(model_name)
    ]  # all unless the profile caps

    def make_stream(first_epoch, last_epoch):
        return training_stream(train_images, config.batch_size, seed, first_epoch, last_epoch)

    setup = compute.current(model_name)
    name = run_name(study, model_name, seed=seed)
    if precision is not None and precision != setup.precision:
        setup = compute.replace_precision(setup, precision)
        name += f"-{precision}"
    elif precision is None:  # a resumed run keeps its precision
        setup = resumed_setup(setup, run_directory(name), continuing=continue_from)
    with setup.scope():  # precision and, on several GPUs or workers, the distribution
        set_seeds(seed)  # before building, so the initial weights are reproducible
        model = build_model(model_name, input_shape=study.splits.train.shape[1:])
        result = train(
            model,
            make_stream,
            (study.val_blurred, study.splits.val),
            name,
            config,
            setup=setup,
            callbacks=callbacks,
            continue_from=continue_from,
        )
    input_shape = study.splits.train.shape[1:]
    model = local_copy(model, lambda: build_model(model_name, input_shape=input_shape), setup)
    print(f"{model_name} ({setup.describe()}): {result.summary()}")
    return model, result


def _result_from_record(record: dict) -> TrainResult:
    from pathlib import Path

    history = pd.DataFrame(record["history"])
    return TrainResult(
        history=history,
        epochs_run=record["epochs"],
        best_epoch=record["best_epoch"] - 1,
        train_seconds=record["train_seconds"],
        stopped_early=record["stopped"].startswith("early"),
        resumed_at=None,
        run_dir=Path(zoo.weights_path(record["model"])),
    )


def zoo_model(model_name: str) -> tuple[keras.Model, TrainResult]:
    """The shipped reference model and its training as its record tells it (``zoo.ZooError`` if
    none)."""
    model, record = zoo.load(model_name), zoo.read_record(model_name)
    print(
        f"{model_name}: shipped reference weights (zoo/{model_name}.weights.h5): "
        f"{record['epochs']} epochs, "
        f"{record['stopped']}, {record['train_seconds'] / 60:.0f} min on {record['machine']}"
    )
    return model, _result_from_record(record)


def reference_models(model_names: list[str]) -> dict[str, keras.Model]:
    """The shipped reference models among ``model_names``; says which are missing and why."""
    status = zoo.status(model_names)
    for name, state in status.items():
        if state not in zoo.SHIPPED:
            print(
                f"{name}: no shipped reference run ({state}); "
                f"`python -m deblurlab.reference --models {name}`"
            )
    return {name: zoo.load(name) for name, state in status.items() if state in zoo.SHIPPED}


def gpu_reference_runs(study: CifarStudy, model_names) -> dict[str, tuple[dict, dict]]:
    """The GPU reference runs (``zoo/gpu/``) among ``model_names``: name -> (per-image scores on
    the study's test images, record). Scored once per study and model (kept on the study)."""
    out, scored = {}, study.__dict__.setdefault("_gpu_scores", {})
    with zoo.located(zoo.gpu_dir()):
        shipped = set(zoo.available())
        for name in model_names:
            if name not in shipped:
                continue
            if name not in scored:
                model = zoo.load(name)
                scored[name] = evaluate(study, {name: model}, blurred_input=False)[name]
            out[name] = (scored[name], zoo.read_record(name))
    return out


def evaluate(
    study: CifarStudy, models: dict[str, keras.Model], *, blurred_input: bool = True
) -> Evaluation:
    """Per-image MSE, PSNR and SSIM on the held-out test set, the blurred input first (unless
    ``blurred_input=False``). Returns an ``Evaluation`` (a mapping: row -> metric -> values)."""
    scores = (
        {BLURRED_INPUT: M.per_image_metrics(study.test_blurred, study.splits.test)}
        if blurred_input
        else {}
    )
    for name, model in models.items():
        scores[name] = M.per_image_metrics(predict(model, study.test_blurred), study.splits.test)
    return Evaluation(scores)


def evaluate_models(study: CifarStudy, models: dict[str, keras.Model]) -> Evaluation:
    """``evaluate`` without the blurred-input row (e.g. the reference models)."""
    return evaluate(study, models, blurred_input=False)


def restorations(
    study: CifarStudy, models: dict[str, keras.Model], indices
) -> dict[str, np.ndarray]:
    """Each model's restoration of the test images ``indices``: name -> float32 images."""
    return {name: predict(model, study.test_blurred[indices]) for name, model in models.items()}


def hardest_examples(
    study: CifarStudy, n: int = 6, min_sigma: float = 1.5, seed: int = 0
) -> np.ndarray:
    """Test indices of strongly blurred images (sigma >= min_sigma), in a fixed random order."""
    pool = np.flatnonzero(study.test_sigmas >= min_sigma)
    pool = pool if len(pool) >= n else np.argsort(-study.test_sigmas)
    return np.random.default_rng(seed).permutation(pool)[:n]
