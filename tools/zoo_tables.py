"""The tables of shipped reference runs in docs/reference-runs.md, from the zoo's records.

    .venv/bin/python tools/zoo_tables.py            # print them
    .venv/bin/python tools/zoo_tables.py --write    # rewrite them in docs/reference-runs.md

Each table sits between ``<!-- zoo-table:NAME -->`` and ``<!-- /zoo-table -->`` (NAME ``cpu``:
``zoo/``, ``gpu``: ``zoo/gpu/``); ``tests/test_zoo.py`` checks that the page matches the records.
"""

from __future__ import annotations

import re
import sys

from deblurlab.core.paths import REPO_ROOT
from deblurlab.training import zoo

DOC = REPO_ROOT / "docs" / "reference-runs.md"
FOLDERS = {"cpu": zoo.ZOO_DIR, "gpu": zoo.ZOO_DIR / zoo.GPU_SUBDIR}
BLOCK = re.compile(r"(<!-- zoo-table:(\w+) -->\n)(.*?)(\n<!-- /zoo-table -->)", re.S)


def records_markdown(folder) -> str:
    """``zoo.records_table(folder)`` as a markdown table."""
    rows = zoo.records_table(folder)
    if not rows:
        return "(no shipped run)"
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[k]) for k in head) + " |" for row in rows]
    return "\n".join(lines)


def render(text: str) -> str:
    """``text`` with every zoo table replaced by the current records'."""
    return BLOCK.sub(lambda m: m[1] + records_markdown(FOLDERS[m[2]]) + m[4], text)


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        DOC.write_text(render(DOC.read_text()))
        print(f"wrote {DOC}")
    else:
        for name, folder in FOLDERS.items():
            print(f"{name}: {folder}\n{records_markdown(folder)}\n")
