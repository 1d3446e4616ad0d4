"""The comparison chapter: classical baselines beside every trained CIFAR model, who beats whom,
the hard image, and what each costs (the tables and saved results are in ``comparison_results``).

    tuned = tune_on_validation(study)                       # Wiener balance, RL iterations
    restored, seconds = run_baselines_timed(study, tuned)   # on the held-out test set
    scores = {**cs.evaluate(study, models), **baseline_scores(study, restored)}
    verdicts(scores, baselines, models)                     # who beats whom, as sentences

Cost measurements are small and local on purpose: an analytic FLOP count from the Keras layers,
a timed matmul for the machine's fp32 peak, and timed ``predict`` calls for inference speed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import keras
import numpy as np
import pandas as pd

from ...core import metrics as M
from ...core.tables import footnote, write_table
from ...data.blur import draw_sigmas
from ...perf.flops import flops_per_image, uncounted_layers
from ...perf.timing import training_images_per_second, training_setup
from ...training.train import TrainResult
from ..cifar.study import BLURRED_INPUT, VAL_SEED, CifarStudy
from . import baselines as B

# --------------------------------------------------------------------------------------- baselines


def validation_sigmas(study: CifarStudy) -> np.ndarray:
    """The σ of each validation image: the draw ``prepare_study`` made with ``VAL_SEED``."""
    return draw_sigmas(len(study.splits.val), VAL_SEED)


def tune_on_validation(
    study: CifarStudy, grids: dict | None = None, metric: str = "mse", workers: int | None = None
) -> dict[str, B.TuneResult]:
    """Tune every baseline on the validation split (never the test split)."""
    return B.tune_baselines(
        study.val_blurred, study.splits.val, validation_sigmas(study), grids, metric, workers
    )


def run_baselines_timed(
    study: CifarStudy, tuned: dict[str, B.TuneResult], workers: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Restore the test set with each tuned baseline: ({method: images}, {method: wall seconds})."""
    restored, seconds = {}, {}
    for method, result in tuned.items():
        start = time.perf_counter()
        restored[method] = B.deconvolve(
            study.test_blurred, study.test_sigmas, method, workers=workers, **result.params
        )
        seconds[method] = time.perf_counter() - start
    return restored, seconds


def baseline_scores(
    study: CifarStudy, restored: dict[str, np.ndarray]
) -> dict[str, dict[str, np.ndarray]]:
    """Per-image MSE, PSNR and SSIM on the test set of each baseline's ``restored``
    images: method -> metric -> array."""
    return {
        method: M.per_image_metrics(images, study.splits.test)
        for method, images in restored.items()
    }


def tuning_table(tuned: dict[str, B.TuneResult]) -> pd.DataFrame:
    """One row a (method, grid value) with its validation score; the chosen value is marked."""
    rows = []
    for method, result in tuned.items():
        if result.scores.empty:
            rows.append(
                {
                    "method": method,
                    "parameter": "–",
                    "value": "–",
                    f"validation {result.metric.upper()}": None,
                    "chosen": True,
                }
            )
            continue
        param = next(iter(result.params))
        for _, row in result.scores.iterrows():
            rows.append(
                {
                    "method": method,
                    "parameter": param,
                    "value": f"{row[param]:g}",
                    f"validation {result.metric.upper()}": row[result.metric],
                    "chosen": bool(row[param] == result.params[param]),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- verdicts


def _mean(scores, name, metric):
    return float(np.mean(scores[name][metric]))


def beats(scores, a: str, b: str) -> dict[str, bool]:
    """Whether method ``a`` beats method ``b`` in mean MSE (lower) and mean SSIM (higher)."""
    return {
        "mse": _mean(scores, a, "mse") < _mean(scores, b, "mse"),
        "ssim": _mean(scores, a, "ssim") > _mean(scores, b, "ssim"),
    }


def verdicts(scores, baselines: Iterable[str], models: Iterable[str]) -> tuple[dict, list[str]]:
    """For each model and baseline, who wins in MSE and SSIM; plus one sentence a model.

    A model "beats" a baseline when it has both the lower mean MSE and the higher mean SSIM;
    the sentences say plainly when it does not.
    """
    baselines, models = list(baselines), list(models)
    table = {m: {b: beats(scores, m, b) for b in baselines} for m in models}
    sentences = []
    for m in models:
        both = [b for b in baselines if all(table[m][b].values())]
        partial = [b for b in baselines if any(table[m][b].values()) and b not in both]
        none = [b for b in baselines if not any(table[m][b].values())]
        parts = []
        if both:
            parts.append(f"beats {_join(both)} in both MSE and SSIM")
        for b in partial:
            won = "MSE" if table[m][b]["mse"] else "SSIM"
            lost = "SSIM" if won == "MSE" else "MSE"
            parts.append(
                f"beats {b} in {won} only (its {lost} is {_value(scores, m, lost)} against "
                f"{_value(scores, b, lost)})"
            )
        if none:
            parts.append(
                f"does not beat {_join(none, 'or')}: its MSE/SSIM are {_pair(scores, m)}, against "
                + _join([f"{_pair(scores, b)} ({b})" for b in none])
            )
        sentences.append(f"{m} " + ", and ".join(parts) + ".")
    return table, sentences


def _join(names: list[str], word: str = "and") -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {word} " + names[-1]


def _fmt(metric: str, value: float) -> str:
    return f"{value:.5f}" if metric.upper() == "MSE" else f"{value:.4f}"


def _value(scores, name: str, metric: str) -> str:
    return _fmt(metric, _mean(scores, name, metric.lower()))


def _pair(scores, name: str) -> str:
    return f"{_value(scores, name, 'MSE')}/{_value(scores, name, 'SSIM')}"


# -------------------------------------------------------------------------------------- hard image


def gradient_energy(images: np.ndarray) -> np.ndarray:
    """Mean squared horizontal and vertical finite difference of each image: a texture measure."""
    images = np.asarray(images, dtype=np.float64)
    dx = np.diff(images, axis=2)
    dy = np.diff(images, axis=1)
    return np.mean(dx**2, axis=(1, 2, 3)) + np.mean(dy**2, axis=(1, 2, 3))


def hard_image_index(study: CifarStudy, texture_quantile: float = 0.75) -> int:
    """The test image with the largest σ among the richly textured ones.

    "Richly textured" means a sharp-image gradient energy at or above the ``texture_quantile`` of
    the test set. Deterministic: ties go to the lowest index.
    """
    energy = gradient_energy(study.splits.test)
    rich = np.flatnonzero(energy >= np.quantile(energy, texture_quantile))
    return int(rich[np.argmax(study.test_sigmas[rich])])


# --------------------------------------------------------------------------------------- cost


def cost_table(
    study: CifarStudy,
    models: dict[str, keras.Model],
    results: dict[str, TrainResult],
    peak_gflops: float,
    inference_ips: dict[str, float],
    baseline_ips: dict[str, float] | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Parameters, forward FLOPs, training time and speed, inference speed, and the fraction of the
    fp32 matmul peak that training reaches (3 x forward FLOPs x training images/s)."""
    rows = []
    for model_name, model in models.items():
        result = results[model_name]
        flops = flops_per_image(model, study.splits.test.shape[1:])
        train_ips = training_images_per_second(study, model_name, result)
        fraction = 3 * flops * train_ips / (peak_gflops * 1e9) if train_ips else None
        rows.append(
            {
                "method": model_name,
                "params": int(model.count_params()),
                "MFLOP/image": flops / 1e6,
                "epochs": result.epochs_run,
                "train s": result.train_seconds,
                "train img/s": train_ips,
                "infer img/s": inference_ips.get(model_name),
                "% of fp32 peak": None if fraction is None else 100 * fraction,
            }
        )
    for method, ips in (baseline_ips or {}).items():
        rows.append(
            {
                "method": method,
                "params": None,
                "MFLOP/image": None,
                "epochs": None,
                "train s": None,
                "train img/s": None,
                "infer img/s": ips,
                "% of fp32 peak": None,
            }
        )
    df = pd.DataFrame(rows).astype({"params": "Int64", "epochs": "Int64"})
    missing = {m: uncounted_layers(model) for m, model in models.items()}
    missing_note = "; ".join(f"{m}: {', '.join(k)}" for m, k in missing.items() if k)
    missing_note = (
        f" Layers with weights left out of the FLOP count: {missing_note}." if missing_note else ""
    )
    setups = {m: training_setup(results[m]) for m in models}
    with_xla = [m for m, setup in setups.items() if setup and setup.get("jit_compile") is True]
    if any(setups.values()):
        missing_note += (
            f" Trained with XLA (deblurlab.runtime.compute): {', '.join(with_xla)}; the others "
            "without."
            if with_xla
            else " Trained without XLA."
        )
    if name:
        write_table(
            name,
            format_cost(df),
            footnote(study.provenance) + f" FLOPs: the analytic count of deblurlab.perf.flops "
            "(2 × multiply-accumulates of the convolution, dense and recurrent layers, one "
            "image, forward). Training seconds include the "
            "per-epoch validation pass. Inference: median of timed predict calls on test images "
            f"after a warm-up; baselines: one timed pass over the test set. Peak: measured fp32 "
            f"matmul, {peak_gflops:.1f} GFLOP/s; training FLOP/s taken as 3 × forward FLOPs × "
            "training images/s. Timings were taken on a shared machine and are noisy."
            + missing_note,
            convention="",
        )
    return df


def _speed(value) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def format_cost(cost: pd.DataFrame) -> pd.DataFrame:
    """The cost table with readable numbers: speeds to 3 significant digits, FLOPs to 0.1 MFLOP."""
    out = cost.copy()
    for col in ("train img/s", "infer img/s", "% of fp32 peak"):
        out[col] = out[col].map(_speed)
    out["MFLOP/image"] = out["MFLOP/image"].map(lambda v: "–" if pd.isna(v) else f"{v:,.1f}")
    out["train s"] = out["train s"].map(lambda v: "–" if pd.isna(v) else f"{v:,.0f}")
    return out


def kinds_of(baselines: Iterable[str], models: Iterable[str]) -> dict[str, str]:
    """The kind of every method of a table: ``"input"``, ``"baseline"`` or ``"model"``."""
    return {
        BLURRED_INPUT: "input",
        **{b: "baseline" for b in baselines},
        **{m: "model" for m in models},
    }
