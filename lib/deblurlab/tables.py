"""Result tables: written as report/tables/<name>.md and .csv, with a provenance footnote."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .metrics import CONVENTION
from .paths import tables_dir


DIGITS = {"mse": 5, "psnr": 2, "ssim": 4}  # by the column's last word, lower-cased


def _format(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table; MSE, PSNR and SSIM columns get 5, 2 and 4 decimals, other floats ``digits``."""
    places = [DIGITS.get(str(col).split()[-1].lower(), digits) for col in df.columns]
    cells = [[_format(v, d) for v, d in zip(row, places)] for row in df.itertuples(index=False)]
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    # Pandoc sizes the columns of a wide table by the dashes of this rule: as many as the widest cell.
    widths = [max([len(str(col)), *(len(row[i]) for row in cells)], default=3) for i, col in enumerate(df.columns)]
    # Text columns (the first, and any whose cells hold words) align left, numbers right.
    wordy = [i == 0 or any(re.search(r"[A-Za-z]{3,}", row[i]) for row in cells) for i in range(len(widths))]
    rule = "|" + "|".join(f":{'-' * max(3, w)}" if wordy[i] else f"{'-' * max(3, w)}:"
                          for i, w in enumerate(widths)) + "|"
    rows = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([header, rule, *rows])


def write_table(name: str, df: pd.DataFrame, footnote: str, digits: int = 3,
                convention: str = CONVENTION) -> str:
    """Write the table and return its markdown (table, then the footnote)."""
    notes = " ".join(part for part in (convention, footnote) if part)
    markdown = f"{to_markdown(df, digits)}\n\n{notes}\n"
    (tables_dir() / f"{name}.md").write_text(markdown)
    df.to_csv(tables_dir() / f"{name}.csv", index=False)
    return markdown
