"""The tables of shipped reference runs in docs/reference-runs.md and README.md, from the zoo's
records.

    .venv/bin/python tools/zoo_tables.py            # print them
    .venv/bin/python tools/zoo_tables.py --write    # rewrite them in those two pages

Each table sits between ``<!-- zoo-table:NAME -->`` and ``<!-- /zoo-table -->`` (NAME ``cpu``:
``zoo/``, ``gpu``: ``zoo/gpu/``, both in full; ``summary``: every run of both, in the columns the
README shows); ``tests/test_zoo.py`` checks that the pages match the records.
"""

from __future__ import annotations

import re
import sys

from deblurlab.core.paths import REPO_ROOT
from deblurlab.training import zoo

DOC = REPO_ROOT / "docs" / "reference-runs.md"
PAGES = (DOC, REPO_ROOT / "README.md")
FOLDERS = {"cpu": zoo.ZOO_DIR, "gpu": zoo.ZOO_DIR / zoo.GPU_SUBDIR}
SUMMARY = (
    "epochs",
    "stopped by",
    "minutes",
    "arithmetic",
    "machine",
    "test data",
    "test MSE",
    "test SSIM",
)
BLOCK = re.compile(r"(<!-- zoo-table:(\w+) -->\n)(.*?)(\n<!-- /zoo-table -->)", re.S)


def summary_rows() -> list[dict]:
    """Every shipped run, the CPU's then the GPU's, with how it stopped in a few words."""
    rows = []
    for where, folder in FOLDERS.items():
        for row in zoo.records_table(folder):
            short = {k: row[k] for k in SUMMARY}
            short["stopped by"] = re.split(r"[:(]", row["stopped by"])[0].strip()
            rows.append({"run": row["model"] + (" (GPU)" if where == "gpu" else ""), **short})
    return rows


def records_markdown(folder) -> str:
    """``zoo.records_table(folder)`` (``folder`` None: ``summary_rows()``) as a markdown table."""
    rows = summary_rows() if folder is None else zoo.records_table(folder)
    if not rows:
        return "(no shipped run)"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with every zoo table replaced by the current records'."""
    return BLOCK.sub(
        lambda m: m[1] + records_markdown(None if m[2] == "summary" else FOLDERS[m[2]]) + m[4], text
    )


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        for page in PAGES:
            page.write_text(render(page.read_text()))
            print(f"wrote {page}")
    else:
        for name, folder in [*FOLDERS.items(), ("summary", None)]:
            print(f"{name}: {folder or 'every run'}\n{records_markdown(folder)}\n")
