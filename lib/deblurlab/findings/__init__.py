"""Which of the original report's findings hold? A scorecard with confidence intervals.

    study = cifar_study.prepare_study(profile)
    evidence = collect(study)          # every chapter's per-image scores, checked to pair up
    card = scorecard(evidence)         # one verdict a claim, computed from paired intervals
    write_tables(card, evidence)       # findings_scorecard, findings_tests
    psnr_table(evidence)               # findings_psnr: PSNR three ways
    save_results(card, evidence)       # report/results/findings.json, read by the report's section

The claims are data (``CLAIMS``). Each is tested by one or more paired comparisons (``Test``) of two
methods on the same test images; ``stats`` gives the interval and the verdict, and every sentence
of the chapter and of the report's conclusion is written here from those verdicts, so none claims a
difference that its interval does not support.

Modules, bottom to top: ``claims`` (the claims and shared names), ``evidence`` (the chapters'
per-image scores), ``verdicts`` (one test, one claim, and their words), ``scorecard`` (every claim
and the conclusion), ``psnr`` and ``budget`` (the chapter's other tables), ``outputs`` (tables,
findings.json and ``refresh``).
"""

from ..core.results import PER_IMAGE_DIR
from .budget import budget_curves, budget_table, forward_flops, reference_curves
from .claims import (
    BLURRED_INPUT,
    CIFAR_CHAPTERS,
    CLAIMS,
    DARK_FRACTION,
    DIGITS,
    GPU_REFERENCE,
    METRIC_NAMES,
    MODEL_CHAPTER,
    MOTION_CHAPTER,
    NOTEBOOKS,
    OTHER_NETWORKS,
    PATCH_CHAPTER,
    PRETTY,
    REFERENCE,
    UNITS,
    Claim,
    Test,
    pretty,
)
from .evidence import (
    Evidence,
    _motion_evidence,
    _patch_evidence,
    collect,
    dark_mask,
    load_per_image,
    load_saved,
    pairing_problem,
)
from .outputs import refresh, save_results, write_tables
from .psnr import psnr_table
from .scorecard import (
    Scorecard,
    budget_of,
    claimed_sides,
    conclusion,
    scorecard,
    source_decides,
    unconverged,
)
from .verdicts import format_run, phrase, run_claim, run_test

__all__ = [
    "BLURRED_INPUT",
    "CIFAR_CHAPTERS",
    "CLAIMS",
    "DARK_FRACTION",
    "DIGITS",
    "METRIC_NAMES",
    "MODEL_CHAPTER",
    "MOTION_CHAPTER",
    "NOTEBOOKS",
    "OTHER_NETWORKS",
    "PATCH_CHAPTER",
    "PER_IMAGE_DIR",
    "GPU_REFERENCE",
    "PRETTY",
    "REFERENCE",
    "UNITS",
    "Claim",
    "Evidence",
    "Scorecard",
    "Test",
    "_motion_evidence",
    "_patch_evidence",
    "budget_curves",
    "budget_table",
    "collect",
    "conclusion",
    "dark_mask",
    "format_run",
    "forward_flops",
    "load_per_image",
    "load_saved",
    "pairing_problem",
    "phrase",
    "pretty",
    "psnr_table",
    "reference_curves",
    "refresh",
    "run_claim",
    "run_test",
    "save_results",
    "scorecard",
    "unconverged",
    "budget_of",
    "source_decides",
    "claimed_sides",
    "write_tables",
]
