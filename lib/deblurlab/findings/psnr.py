"""Each method's PSNR three ways: the tables' convention, over the images the blur changed, and
the PSNR of the mean MSE with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import stats as S
from ..core.metrics import PSNR_CAP_DB
from ..core.tables import footnote, write_table
from .claims import BLURRED_INPUT, RUN_PREFIXES, pretty
from .evidence import Evidence
from .verdicts import phrase


def psnr_table(evidence: Evidence, name: str | None = "findings_psnr") -> tuple[pd.DataFrame, dict]:
    """Each method's PSNR three ways: the tables' convention (mean per-image PSNR), over the images
    the blur changed, and the PSNR of the mean MSE with its interval. Returns the table and a
    summary (with a generated sentence) for the report."""
    scores = evidence.scores
    if BLURRED_INPUT not in scores:
        df = pd.DataFrame(
            columns=["method", "mean PSNR", "changed images PSNR", "mean-MSE PSNR", "95% CI"]
        )
        if name:
            write_table(
                name,
                df,
                footnote(evidence.provenance) + " No CIFAR-10 chapter's results were found.",
            )
        return df, {
            "sentence": "No CIFAR-10 chapter's results were found, so no PSNR is compared.",
            "n_changed": 0,
            "n": 0,
        }
    input_mse = scores[BLURRED_INPUT]["mse"]
    changed = S.changed_images(input_mse)
    rows, values = [], {}
    for method, per_image in scores.items():
        if method.startswith(RUN_PREFIXES) or "mse" not in per_image:
            continue
        low, high = S.psnr_of_mean_mse_ci(per_image["mse"])
        values[method] = {
            "mean_psnr": float(np.mean(per_image["psnr"])),
            "changed_psnr": S.mean_over_changed(per_image["psnr"], input_mse),
            "psnr_of_mean_mse": S.psnr_of_mean_mse(per_image["mse"]),
            "low": low,
            "high": high,
        }
        v = values[method]
        rows.append(
            {
                "method": method,
                "mean PSNR": v["mean_psnr"],
                "changed images PSNR": v["changed_psnr"],
                "mean-MSE PSNR": v["psnr_of_mean_mse"],
                "95% CI": S.format_ci(low, high, 2),
            }
        )
    df = pd.DataFrame(rows)
    networks = [m for m in values if m != BLURRED_INPUT]
    summary = {
        "n": int(len(input_mse)),
        "n_changed": int(changed.sum()),
        "methods": values,
        "unchanged_share": float(1 - changed.mean()),
    }
    sentences = [
        f"{len(input_mse) - int(changed.sum())} of the {len(input_mse):,} test images "
        f"({1 - changed.mean():.0%}) come through the blur unchanged, and each counts "
        f"{PSNR_CAP_DB:g} dB in the blurred input's mean per-image PSNR "
        f"({values[BLURRED_INPUT]['mean_psnr']:.2f} dB)."
    ]
    if networks:
        best = max(networks, key=lambda m: values[m]["psnr_of_mean_mse"])
        top = max(networks, key=lambda m: values[m]["mean_psnr"])
        sentences.append(
            f"By that convention the highest network, {pretty(top)}, scores "
            f"{values[top]['mean_psnr']:.2f} dB; over the images the blur changed, the blurred "
            f"input scores {values[BLURRED_INPUT]['changed_psnr']:.2f} dB and {pretty(top)} "
            f"{values[top]['changed_psnr']:.2f} dB."
        )
        diff = S.paired_psnr_difference(scores[best]["mse"], input_mse)
        said = phrase(
            {"a": best, "b": BLURRED_INPUT, "metric": "psnr", "subset": None, "missing": [], **diff}
        )
        sentences.append(
            f"By the PSNR of the mean MSE, the highest network ({pretty(best)}) scores "
            f"{values[best]['psnr_of_mean_mse']:.2f} dB and the blurred input "
            f"{values[BLURRED_INPUT]['psnr_of_mean_mse']:.2f} dB: {said}."
        )
        summary.update(best=best, best_vs_input=diff)
    summary["sentence"] = " ".join(sentences)
    if name:
        write_table(
            name,
            df,
            footnote(evidence.provenance) + f" {S.METHOD} 'changed images PSNR': mean per-image "
            f"PSNR over the {int(changed.sum())} of {len(input_mse)} test images whose blurred "
            "input differs from the sharp image.",
        )
    return df, summary
