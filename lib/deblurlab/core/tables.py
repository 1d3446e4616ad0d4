"""Result tables: written as report/tables/<name>.md and .csv, with a provenance footnote."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from . import stats
from .metrics import CONVENTION
from .paths import tables_dir

DIGITS = {"mse": 5, "psnr": 2, "ssim": 4}  # by the column's last word, lower-cased


def _format(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) or (
        isinstance(value, float) and value.is_integer() and digits == 0
    ):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


CI_NOTE = (
    "Each cell: the mean over the test images ± half the width of its 95% interval (exact ends in "
    "the .csv). Compare methods by 'mean-MSE PSNR', not by the per-image mean PSNR."
)


def with_ci(value: float, ci, digits: int) -> str:
    """``"0.00265 ± 0.00016"``: a mean and half the width of its interval (the mean alone without
    one)."""
    if ci is None or not all(np.isfinite(ci)):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {(ci[1] - ci[0]) / 2:.{digits}f}"


def score_cells(summary: dict) -> dict:
    """MSE, PSNR, mean-MSE PSNR and SSIM cells of a ``stats.summarize_ci`` summary."""
    return {
        "MSE": with_ci(summary["mse"], summary.get("mse_ci"), 5),
        "PSNR": with_ci(summary["psnr"], summary.get("psnr_ci"), 2),
        "mean-MSE PSNR": with_ci(summary["psnr_mean_mse"], summary.get("psnr_mean_mse_ci"), 2)
        if "psnr_mean_mse" in summary
        else "–",
        "SSIM": with_ci(summary["ssim"], summary.get("ssim_ci"), 4),
    }


def exact_columns(summary: dict) -> dict:
    """The CSV's exact columns of a summary: each mean and its interval's ends."""
    out = {}
    for metric in ("mse", "psnr", "psnr_mean_mse", "ssim"):
        if metric in summary:
            low, high = summary.get(f"{metric}_ci") or [None, None]
            out.update({metric: summary[metric], f"{metric} low": low, f"{metric} high": high})
    return out


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table; MSE, PSNR and SSIM columns get 5, 2 and 4 decimals, other floats ``digits``."""
    places = [DIGITS.get(str(col).split()[-1].lower(), digits) for col in df.columns]
    cells = [[_format(v, d) for v, d in zip(row, places)] for row in df.itertuples(index=False)]
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    # Pandoc sizes the columns of a wide table by the dashes of this rule: as many as the widest
    # cell.
    widths = [
        max([len(str(col)), *(len(row[i]) for row in cells)], default=3)
        for i, col in enumerate(df.columns)
    ]
    # Text columns (the first, and any whose cells hold words) align left, numbers right.
    wordy = [
        i == 0 or any(re.search(r"[A-Za-z]{3,}", row[i]) for row in cells)
        for i in range(len(widths))
    ]
    rule = (
        "|"
        + "|".join(
            f":{'-' * max(3, w)}" if wordy[i] else f"{'-' * max(3, w)}:"
            for i, w in enumerate(widths)
        )
        + "|"
    )
    rows = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([header, rule, *rows])


def conventions() -> dict[str, str]:
    """The conventions every table shares (metrics, cells, intervals, verdicts): each table's
    footnote states them for a reader of that table alone; the report states them once."""
    return {
        "metrics": CONVENTION,
        "cells": CI_NOTE,
        "intervals": stats.METHOD,
        "verdicts": stats.VERDICT_RULE,
    }


def specific_notes(notes: str) -> str:
    """A footnote less the shared conventions: what is specific to its table."""
    shared = [*conventions().values(), stats.METHOD.replace("test images", "test frames")]
    for text in sorted(shared, key=len, reverse=True):
        notes = notes.replace(text, "")
    return re.sub(r"\s{2,}", " ", notes).strip()


def write_table(
    name: str, df: pd.DataFrame, footnote: str, digits: int = 3, convention: str = CONVENTION
) -> str:
    """Write the table and return its markdown (table, then the footnote)."""
    notes = " ".join(part for part in (convention, footnote) if part)
    markdown = f"{to_markdown(df, digits)}\n\n{notes}\n"
    (tables_dir() / f"{name}.md").write_text(markdown)
    df.to_csv(tables_dir() / f"{name}.csv", index=False)
    return markdown


def footnote(prov: dict) -> str:
    """One sentence per field of ``provenance()``; a field a record lacks is left out."""
    compute = f" Compute: {prov['compute']}." if prov.get("compute") else ""
    keras_backend = f" Backend: {prov['backend']}." if prov.get("backend") else ""
    return (
        f"Data: {prov['data']}. Profile: {prov['profile']}.{compute}{keras_backend} "
        f"Run {prov['date']}, commit {prov['commit']}, on {prov['machine']}."
    )
