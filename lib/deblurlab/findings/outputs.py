"""The findings' outputs: the scorecard tables, report/results/findings.json, and their refresh
from the chapter results of an output folder."""

from __future__ import annotations

import pandas as pd

from ..core import stats as S
from ..core.results import jsonable, write_results
from ..core.tables import footnote, write_table
from .claims import GPU_REFERENCE, REFERENCE
from .evidence import Evidence, collect, load_saved
from .psnr import psnr_table
from .scorecard import Scorecard, conclusion, scorecard
from .verdicts import format_run


def write_tables(card: Scorecard, evidence: Evidence) -> pd.DataFrame:
    """Write findings_scorecard (one row a claim) and findings_tests (one row a test).

    Returns: the scorecard table."""
    df = pd.DataFrame(
        [
            {
                "#": r["number"],
                "claim": r["text"],
                "tested by": r["metric"],
                "original": r["original"],
                "ours, this run": format_run(r["this_run"], "results missing", names=False)
                + (f" {r['this_budget']}" if r.get("this_budget") and r["this_run"] else ""),
                "ours, reference run": format_run(r["reference"], names=False),
                "verdict": r["verdict"]
                + {"reference run": " (reference)", "GPU reference run": " (GPU reference)"}.get(
                    r["source"], ""
                )
                + (f", {r['budget']}" if r.get("budget") else ""),
            }
            for r in card.rows
        ]
    )  # what limits each row: findings.json and the chapter's list
    note = (
        footnote(evidence.provenance)
        + f" {S.METHOD} {S.VERDICT_RULE} The original's numbers are its mean "
        "per-image PSNR; "
        "ours is the PSNR of the mean MSE. Claim 4's dark areas: the darkest quarter of the sharp "
        "test images by mean intensity. Claim 7: patches of one frame are resampled together."
    )
    write_table("findings_scorecard", df, note)
    tests = card.tests if len(card.tests) else pd.DataFrame(columns=["claim", "run", "test"])
    write_table("findings_tests", tests, note, digits=5)
    return df


def save_results(
    card: Scorecard,
    evidence: Evidence,
    psnr: dict | None = None,
    budget: dict | None = None,
    chapter: str = "findings",
) -> dict:
    """Write report/results/<chapter>.json, from which the report's findings section is written.

    Args: card, evidence, from ``scorecard`` and ``collect``; psnr, budget, the summaries of
    ``psnr_table`` and ``budget_table``; chapter, the results' name.
    Returns: the payload as written (plain JSON types)."""
    payload = {
        "chapter": chapter,
        "provenance": evidence.provenance,
        "data": evidence.data,
        "n_test": evidence.n_test,
        "profile": evidence.profile,
        "method": S.METHOD,
        "verdict_rule": S.VERDICT_RULE,
        "claims": card.rows,
        "counts": card.counts(),
        "conclusion": conclusion(card, evidence),
        "chapters": evidence.chapters,
        "psnr": psnr or {},
        "budget": budget or {},
        "reference_runs": sorted(
            k[len(REFERENCE) :] for k in evidence.scores if k.startswith(REFERENCE)
        ),
        "gpu_reference_runs": sorted(
            k[len(GPU_REFERENCE) :] for k in evidence.scores if k.startswith(GPU_REFERENCE)
        ),
    }
    payload = jsonable(payload)
    write_results(chapter, payload)
    return payload


def refresh(data_dir=None) -> dict | None:
    """Rewrite the scorecard, the PSNR table and findings.json from the chapter results now in this
    output folder, keeping the budget figure and table; None if notebook 08 never ran here.

    For a report built from several output folders merged together (``make test``: one per test
    worker), where the findings notebook may have run before, or apart from, the chapters."""
    saved = load_saved("findings")
    if saved is None:
        return None
    from ..studies.cifar.study import prepare_study

    evidence = collect(prepare_study(saved.get("profile"), data_dir))
    card = scorecard(evidence)
    write_tables(card, evidence)
    _, psnr = psnr_table(evidence)
    return save_results(card, evidence, psnr, saved.get("budget"))
