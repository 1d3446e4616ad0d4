"""Quality at equal training budgets: validation PSNR against training time and FLOPs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..core.paths import runs_dir
from ..core.tables import footnote, write_table
from .claims import pretty
from .evidence import Evidence, load_saved


def forward_flops(model: str) -> float | None:
    """Forward FLOPs per 32x32 image: from the comparison chapter's cost table when it ran, else
    counted here (``deblurlab.perf.flops.flops_per_image``)."""
    saved = load_saved("comparison")
    cost = ((saved or {}).get("methods", {}).get(model) or {}).get("cost") or {}
    if cost.get("MFLOP/image"):
        return float(cost["MFLOP/image"]) * 1e6
    from ..models import build_model
    from ..perf.flops import flops_per_image

    return float(flops_per_image(build_model(model)))


def budget_curves(study, models=None, flops: bool = True) -> dict[str, pd.DataFrame]:
    """Per-epoch validation PSNR of every CIFAR-10 model's run at this profile, against the
    cumulative training seconds and training FLOPs (3 x forward FLOPs x images trained on).

    Reads runs/<run name>/history.csv (and state.json for the batch size); models without a run
    are left out. Columns: epoch, seconds, tflop, val_psnr."""
    from ..models import list_models
    from ..studies.cifar.study import run_name

    curves = {}
    for model in models or list_models(dataset="cifar10"):
        run = runs_dir() / run_name(study, model)
        if not (run / "history.csv").exists():
            continue
        history = pd.read_csv(run / "history.csv")
        column = _psnr_column(history)
        if column is None or not len(history):
            continue
        try:
            batch = json.loads((run / "state.json").read_text())["config"]["batch_size"]
        except (OSError, KeyError, ValueError):
            batch = study.plan.train_config(model).batch_size
        images = len(study.splits.train[: study.plan.train_images(model)])
        per_epoch = (images // batch) * batch
        curves[model] = _curve(history, column, per_epoch, forward_flops(model) if flops else None)
    return curves


def _psnr_column(history: pd.DataFrame) -> str | None:
    """The validation PSNR column of a history (SRNDeblur logs its finest scale's)."""
    return next((c for c in history.columns if c.startswith("val_") and c.endswith("psnr")), None)


def _curve(history: pd.DataFrame, column: str, per_epoch: int, forward: float | None):
    """Epoch, cumulative seconds, cumulative training TFLOPs and validation PSNR of a history."""
    return pd.DataFrame(
        {
            "epoch": history["epoch"],
            "seconds": history["seconds"].cumsum(),
            "tflop": (3 * forward * per_epoch * np.arange(1, len(history) + 1) / 1e12)
            if forward
            else np.nan,
            "val_psnr": history[column],
        }
    )


def reference_curves(models=None, flops: bool = True) -> dict[str, pd.DataFrame]:
    """The same curves as ``budget_curves`` for the shipped CIFAR-10 reference runs, from their
    zoo records' histories (``zoo/<model>.json``: epoch, seconds, validation PSNR; images an epoch
    from the record's training images and batch). Models without a shipped run are left out; each
    curve's ``attrs["label"]`` names it, and says "in progress" for a run not yet finished."""
    from ..models import list_models
    from ..training import zoo

    curves = {}
    for model in models or list_models(dataset="cifar10"):
        if model not in zoo.available():
            continue
        record = zoo.read_record(model)
        history = pd.DataFrame(record.get("history") or [])
        column = _psnr_column(history)
        if not len(history) or column is None or "seconds" not in history:
            continue
        batch = record["config"]["batch_size"]
        per_epoch = (record["data"]["n_train"] // batch) * batch
        forward = forward_flops(model) if flops else None
        curves[model] = _curve(history, column, per_epoch, forward)
        unfinished = ", in progress" if zoo.in_progress(record) else ""
        curves[model].attrs["label"] = f"{model} (reference run{unfinished})"
    return curves


def budget_table(
    curves: dict[str, pd.DataFrame], evidence: Evidence, name: str | None = "findings_budget"
) -> tuple[pd.DataFrame, dict]:
    """Per model, the epochs, training seconds, training TFLOPs and validation PSNR of its
    training ``curves``, written as table ``name`` if given. Returns (table, {sentence, rows})."""
    rows = [
        {
            "model": m,
            "epochs": int(c["epoch"].iloc[-1]),
            "train s": float(c["seconds"].iloc[-1]),
            "training TFLOP": float(c["tflop"].iloc[-1]),
            "last val PSNR": float(c["val_psnr"].iloc[-1]),
            "best val PSNR": float(c["val_psnr"].max()),
        }
        for m, c in curves.items()
    ]
    df = pd.DataFrame(
        rows,
        columns=["model", "epochs", "train s", "training TFLOP", "last val PSNR", "best val PSNR"],
    )
    if not rows:
        sentence = "No training history of this profile was found, so the budget figure is empty."
    else:
        fast, slow = df.loc[df["train s"].idxmin()], df.loc[df["train s"].idxmax()]
        sentence = (
            f"Training times at the {evidence.profile} profile range from {fast['train s']:.0f} s "
            f"({pretty(fast['model'])}) to {slow['train s']:.0f} s ({pretty(slow['model'])})."
        )
    if name:
        write_table(
            name,
            df.astype({"epochs": "Int64"}) if len(df) else df,
            footnote(evidence.provenance) + " Validation PSNR as training logged it (the mean over "
            "validation batches of per-image PSNR); training FLOPs = 3 × forward FLOPs × images "
            "trained on (Conv2D, Conv2DTranspose and Dense layers counted).",
            digits=2,
        )
    return df, {"sentence": sentence, "rows": rows}
