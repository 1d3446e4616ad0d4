"""Where things live. One place decides every output path.

Outputs (figures, tables, results, checkpoints) go under ``output_root()``: the repository root by
default, or ``$DEBLURLAB_OUTPUT_DIR`` (the tests and nbval point it at a temporary folder so a smoke
run never overwrites the report's figures).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # lib/deblurlab: beside it, its data folders
REPO_ROOT = PACKAGE_DIR.parent.parent
SAMPLE_DIR = PACKAGE_DIR / "data" / "sample"


def output_root() -> Path:
    """Where outputs go: ``$DEBLURLAB_OUTPUT_DIR`` if set, else the checkout."""
    env = os.environ.get("DEBLURLAB_OUTPUT_DIR")
    return Path(env).resolve() if env else REPO_ROOT


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """The figures folder under ``output_root()``, created if missing."""
    return _ensure(output_root() / "figures")


def tables_dir() -> Path:
    """The report's tables folder under ``output_root()``, created if missing."""
    return _ensure(output_root() / "report" / "tables")


def results_dir() -> Path:
    """JSON results that the report's text is filled from."""
    return _ensure(output_root() / "report" / "results")


def runs_dir() -> Path:
    """Checkpoints and training histories, one folder per run name."""
    return _ensure(output_root() / "runs")


def shared_data_dir() -> Path:
    """The read-only ``shared/data`` folder that sits beside a checkout, if any."""
    return REPO_ROOT.parent / "shared" / "data"


def file_digest(path, algorithm: str) -> str:
    """The hex digest of a file (``algorithm``: a hashlib name such as "md5" or "sha256"), read in
    blocks."""
    import hashlib

    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def display_path(path) -> str:
    """``path`` as a report shared with others should print it: relative to the checkout's parent
    folder (``../shared/data/...``), to the checkout, or to the home folder (``~/...``), else as
    is."""
    text = str(path)
    try:
        if not Path(text).expanduser().exists():
            return text  # a description, not a path
        resolved = Path(text).expanduser().resolve()
    except (OSError, RuntimeError):
        return text
    for base, prefix in ((REPO_ROOT, ""), (REPO_ROOT.parent, "../"), (Path.home(), "~/")):
        if resolved == base:
            return prefix.rstrip("/") or "."
        if resolved.is_relative_to(base):
            return prefix + str(resolved.relative_to(base))
    return text
