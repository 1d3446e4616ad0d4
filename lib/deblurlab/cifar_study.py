"""The CIFAR-10 gaussian-blur study as a few calls, shared by every CIFAR chapter notebook.

    study = prepare_study(profile)                 # data, splits, fixed blurred val/test sets
    model, result = train_model(study, "resunet1") # resumable training, best weights loaded
    scores = evaluate(study, {"resunet1": model})  # per-image metrics on the held-out test set
    table = results_table(study, scores, {"resunet1": result}, name="resunet")
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from . import compute
from . import metrics as M
from .data.blur import TEST_SEED, make_blurred_set, training_stream
from .data.cifar import CifarSplits, load_cifar10, split_cifar10
from .models import build_model, get_spec
from .paths import results_dir
from .profiles import CifarPlan, resolve_profile
from .provenance import footnote, provenance
from .tables import write_table
from .train import TrainResult, predict, set_seeds, train

BLURRED_INPUT = "blurred input"
VAL_SEED = TEST_SEED + 1


@dataclass
class CifarStudy:
    plan: CifarPlan
    splits: CifarSplits
    val_blurred: np.ndarray
    test_blurred: np.ndarray
    test_sigmas: np.ndarray
    provenance: dict = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.plan.profile

    def describe(self) -> str:
        return f"{self.splits.describe()}; profile {self.profile}"


def prepare_study(profile: str | None = None, data_dir=None, seed: int = 0) -> CifarStudy:
    plan = CifarPlan.for_profile(resolve_profile(profile))
    data = load_cifar10(data_dir)
    splits = split_cifar10(data, n_train=plan.n_train, n_val=plan.n_val, n_test=plan.n_test, seed=seed,
                           min_test=plan.min_test)
    val_blurred, _ = make_blurred_set(splits.val, seed=VAL_SEED)
    test_blurred, test_sigmas = make_blurred_set(splits.test, seed=TEST_SEED)
    return CifarStudy(plan, splits, val_blurred, test_blurred, test_sigmas,
                      provenance(splits.describe(), plan.profile))


def run_name(study: CifarStudy, model_name: str, seed: int = 0) -> str:
    return f"cifar-{model_name}-{study.profile}" + (f"-seed{seed}" if seed else "")


def train_model(study: CifarStudy, model_name: str, seed: int = 0, epochs: int | None = None,
                callbacks: list | None = None) -> tuple[keras.Model, TrainResult]:
    """Build ``model_name`` from the registry and train it (or resume, or load a finished run).

    ``epochs`` overrides the profile's epoch limit (the reference run's cap); ``callbacks`` are
    added to training's own (e.g. a time limit)."""
    config = study.plan.train_config(model_name, seed=seed)
    if epochs is not None:
        config.epochs = epochs
    train_images = study.splits.train[:study.plan.train_images(model_name)]  # all unless the profile caps

    def make_stream(first_epoch, last_epoch):
        return training_stream(train_images, config.batch_size, seed, first_epoch, last_epoch)

    setup = compute.current(model_name)
    with setup.scope():  # precision and, on several GPUs, MirroredStrategy
        set_seeds(seed)  # before building, so the initial weights are reproducible
        model = build_model(model_name, input_shape=study.splits.train.shape[1:])
        result = train(model, make_stream, (study.val_blurred, study.splits.val), run_name(study, model_name, seed),
                       config, setup=setup, callbacks=callbacks)
    print(f"{model_name} ({setup.describe()}): {result.summary()}")
    return model, result


def evaluate(study: CifarStudy, models: dict[str, keras.Model]) -> dict[str, dict[str, np.ndarray]]:
    """Per-image MSE, PSNR and SSIM on the held-out test set, the blurred input first."""
    scores = {BLURRED_INPUT: M.per_image_metrics(study.test_blurred, study.splits.test)}
    for name, model in models.items():
        scores[name] = M.per_image_metrics(predict(model, study.test_blurred), study.splits.test)
    return scores


def restorations(study: CifarStudy, models: dict[str, keras.Model], indices) -> dict[str, np.ndarray]:
    return {name: predict(model, study.test_blurred[indices]) for name, model in models.items()}


def hardest_examples(study: CifarStudy, n: int = 6, min_sigma: float = 1.5, seed: int = 0) -> np.ndarray:
    """Test indices of strongly blurred images (sigma >= min_sigma), in a fixed random order."""
    pool = np.flatnonzero(study.test_sigmas >= min_sigma)
    pool = pool if len(pool) >= n else np.argsort(-study.test_sigmas)
    return np.random.default_rng(seed).permutation(pool)[:n]


def results_table(study: CifarStudy, scores: dict[str, dict[str, np.ndarray]],
                  results: dict[str, TrainResult], models: dict[str, keras.Model] | None = None,
                  name: str | None = None) -> pd.DataFrame:
    """Our metrics beside the report's, one row a model; written to report/tables/<name> if named."""
    rows = []
    for model_name, per_image in scores.items():
        ours = M.summarize(per_image)
        row = {"model": model_name}
        if model_name == BLURRED_INPUT:
            reference, params, result = {}, None, None
        else:
            reference, result = get_spec(model_name).reference, results.get(model_name)
            params = models[model_name].count_params() if models and model_name in models else None
        row.update({"params": f"{params:,}" if params else "–",
                    "epochs": result.epochs_run if result else None,
                    "train s": round(result.train_seconds) if result else None,
                    "MSE": ours["mse"], "PSNR": ours["psnr"], "SSIM": ours["ssim"],
                    "report MSE": reference.get("mse"), "report PSNR": reference.get("psnr"),
                    "report SSIM": reference.get("ssim")})
        rows.append(row)
    df = pd.DataFrame(rows).astype({"epochs": "Int64", "train s": "Int64"})
    if name:
        write_table(name, df, footnote(study.provenance) + f" Test set: {len(study.splits.test):,} "
                    "held-out images, each blurred once with a fixed seed (σ ~ U(0, 3)).")
    return df


def gains_over_input(scores: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """How much each model improves on the blurred input: MSE ratio, PSNR and SSIM differences."""
    base = M.summarize(scores[BLURRED_INPUT])
    rows = []
    for name, per_image in scores.items():
        if name == BLURRED_INPUT:
            continue
        ours = M.summarize(per_image)
        rows.append({"model": name, "MSE reduction %": 100 * (1 - ours["mse"] / base["mse"]),
                     "PSNR gain dB": ours["psnr"] - base["psnr"], "SSIM gain": ours["ssim"] - base["ssim"],
                     "beats input": bool(ours["mse"] < base["mse"] and ours["ssim"] > base["ssim"])})
    return pd.DataFrame(rows)


def save_results(chapter: str, study: CifarStudy, scores, results: dict[str, TrainResult],
                 models: dict[str, keras.Model] | None = None) -> dict:
    """Write report/results/<chapter>.json, from which the report's text takes its numbers."""
    gains = gains_over_input(scores).set_index("model").to_dict(orient="index")
    payload = {"chapter": chapter, "provenance": study.provenance, "data": study.describe(),
               "n_test": len(study.splits.test), "n_train": len(study.splits.train), "models": {}}
    for name, per_image in scores.items():
        entry = {"metrics": M.summarize(per_image)}
        if name in results:
            r = results[name]
            entry.update(epochs=r.epochs_run, train_seconds=r.train_seconds, stopped_early=r.stopped_early,
                         train_images=len(study.splits.train[:study.plan.train_images(name)]),
                         reference=get_spec(name).reference, gains=gains.get(name))
        if models and name in models:
            entry["params"] = int(models[name].count_params())
        payload["models"][name] = entry
    (results_dir() / f"{chapter}.json").write_text(json.dumps(payload, indent=1, default=float))
    save_per_image(chapter, scores, study.test_sigmas)
    return payload


PER_IMAGE_DIR = "per_image"  # report/results/per_image/<chapter>.npz: every test image's scores


def save_per_image(chapter: str, scores: dict[str, dict[str, np.ndarray]], sigmas: np.ndarray) -> None:
    """Each model's per-image MSE, PSNR and SSIM (keys ``"<model>|<metric>"``) and the test images'
    sigmas, so that later chapters compare models image by image (paired intervals)."""
    folder = results_dir() / PER_IMAGE_DIR
    folder.mkdir(exist_ok=True)
    arrays = {f"{model}|{metric}": np.asarray(values, np.float64)
              for model, per_image in scores.items() for metric, values in per_image.items()}
    np.savez(folder / f"{chapter}.npz", sigma=np.asarray(sigmas, np.float64), **arrays)


def load_per_image(chapter: str) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """(scores as ``evaluate`` returns them, sigmas) saved by ``save_results(chapter, ...)``."""
    path = results_dir() / PER_IMAGE_DIR / f"{chapter}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the chapter notebook that saves {chapter!r}")
    scores: dict[str, dict[str, np.ndarray]] = {}
    with np.load(path) as saved:
        for key in saved.files:
            if "|" in key:
                model, metric = key.split("|", 1)
                scores.setdefault(model, {})[metric] = saved[key]
        sigmas = saved["sigma"]
    return scores, sigmas


def summary_table(chapters: list[str] | None = None, name: str | None = "cifar_summary") -> pd.DataFrame:
    """One row per trained CIFAR-10 model across the chapters' saved results, beside the report.

    Reads report/results/<chapter>.json as written by ``save_results``; chapters default to all
    that hold CIFAR-10 models. Written to report/tables/<name> with each chapter's provenance.
    """
    rows, notes = [], {}
    for path in sorted(results_dir().glob("*.json")):
        payload = json.loads(path.read_text())
        if not isinstance(payload.get("models"), dict) or (chapters and payload.get("chapter") not in chapters):
            continue
        for model_name, entry in payload["models"].items():
            if "epochs" not in entry:
                continue  # the blurred input, or a row that is not a trained model
            if get_spec(model_name).dataset != "cifar10":
                continue
            reference, ours = entry.get("reference", {}), entry["metrics"]
            rows.append({"model": model_name, "chapter": payload["chapter"],
                         "params": f"{entry['params']:,}" if entry.get("params") else "–",
                         "epochs": entry["epochs"], "train s": round(entry["train_seconds"]),
                         "MSE": ours["mse"], "PSNR": ours["psnr"], "SSIM": ours["ssim"],
                         "report MSE": reference.get("mse"), "report PSNR": reference.get("psnr"),
                         "report SSIM": reference.get("ssim")})
            notes[payload["chapter"]] = footnote(payload["provenance"])
    if not rows:
        raise FileNotFoundError(f"no CIFAR-10 chapter results in {results_dir()}: run the chapter notebooks first")
    df = pd.DataFrame(rows).astype({"epochs": "Int64", "train s": "Int64"})
    if name:
        distinct = sorted(set(notes.values()))
        text = distinct[0] if len(distinct) == 1 else " ".join(f"[{c}] {n}" for c, n in sorted(notes.items()))
        write_table(name, df, text)
    return df
