"""Testing the claims: each test's paired difference, interval and verdict, and the words that
state them (never claiming a difference that the interval does not support)."""

from __future__ import annotations

import math

import numpy as np

from ..core import stats as S
from .claims import (
    BLURRED_INPUT,
    CIFAR_CHAPTERS,
    DIGITS,
    GPU_REFERENCE,
    METRIC_NAMES,
    MODEL_CHAPTER,
    MOTION_CHAPTER,
    NOTEBOOKS,
    PATCH_CHAPTER,
    REFERENCE,
    UNITS,
    Claim,
    Test,
    pretty,
)
from .evidence import Evidence


def _statistic(metric: str, values: dict) -> float:
    return S.psnr_of_mean_mse(values["mse"]) if metric == "psnr" else float(np.mean(values[metric]))


def run_test(
    test: Test,
    scores: dict,
    dark: np.ndarray | None = None,
    data_match: bool = True,
    prefix: str = "",
) -> dict:
    """One test on ``scores`` (method -> metric -> per-image array): the paired difference, its
    interval and verdict. ``prefix`` "reference:" tests the reference runs' scores (the blurred
    input is shared). A method absent from ``scores`` gives a "missing" result."""
    a = prefix + test.a if test.a != BLURRED_INPUT else test.a
    b = prefix + test.b if test.b != BLURRED_INPUT else test.b
    out = {
        "a": test.a,
        "b": test.b,
        "metric": test.metric,
        "subset": test.subset,
        "expected_sign": test.expected_sign,
        "label": test.label(),
        "missing": [m for m in (a, b) if m not in scores],
    }
    if out["missing"]:
        return {
            **out,
            "verdict": "inconclusive",
            "n": 0,
            "mean": math.nan,
            "low": math.nan,
            "high": math.nan,
            "a_value": math.nan,
            "b_value": math.nan,
        }
    mask = dark if test.subset == "dark" else None
    pick = (lambda v: v[mask]) if mask is not None else (lambda v: v)
    va = {m: pick(v) for m, v in scores[a].items()}
    vb = {m: pick(v) for m, v in scores[b].items()}
    if test.metric == "psnr":
        diff = S.paired_psnr_difference(va["mse"], vb["mse"])
    else:
        diff = S.paired_difference(va[test.metric], vb[test.metric])
    return {
        **out,
        **diff,
        "a_value": _statistic(test.metric, va),
        "b_value": _statistic(test.metric, vb),
        "verdict": S.verdict(diff["low"], diff["high"], test.expected_sign, data_match),
    }


def run_claim(claim: Claim, evidence: Evidence, prefix: str = "") -> dict | None:
    """Every test of ``claim`` on this run's (or, with ``prefix``, the reference runs') scores."""
    if claim.kind == "patches":
        return None if prefix else _patch_claim(claim, evidence.patches)
    if claim.kind == "motion":
        runs = (evidence.motion or {}).get("runs") or {"": (evidence.motion or {}).get("scores")}
        if runs.get(prefix) is None:
            return (
                None
                if prefix
                else {"verdict": "inconclusive", "tests": [], "missing": True, "data_match": None}
            )
        match = evidence.motion["data_kind"] == "reds"
        tests = [run_test(t, runs[prefix], data_match=match) for t in claim.tests]
        return {
            "verdict": S.combine_verdicts(t["verdict"] for t in tests),
            "tests": tests,
            "missing": False,
            "data_match": match,
        }
    tests = [run_test(t, evidence.scores, evidence.dark, prefix=prefix) for t in claim.tests]
    missing = any(t["missing"] for t in tests)
    if prefix and all(t["missing"] for t in tests):
        return None  # no reference run at all
    return {
        "verdict": S.combine_verdicts(t["verdict"] for t in tests),
        "tests": tests,
        "missing": missing,
        "data_match": True,
    }


def _patch_claim(claim: Claim, patches: dict | None) -> dict:
    if patches is None:
        return {"verdict": "inconclusive", "tests": [], "missing": True, "data_match": None}
    flags = np.asarray(patches["ssim"]) >= patches["threshold"]
    estimate = S.proportion_ci(flags, patches.get("frame"))
    match = patches["data_kind"] == "reds"
    result = S.estimate_verdict(
        estimate["low"], estimate["high"], claim.claimed, claim.tolerance, match
    )
    test = {
        "a": "random patches",
        "b": f"{claim.claimed:.0%}",
        "metric": "share",
        "subset": None,
        "label": f"P(SSIM ≥ {patches['threshold']:g})",
        "missing": [],
        **estimate,
        "a_value": estimate["mean"],
        "b_value": claim.claimed,
        "verdict": result,
    }
    return {"verdict": result, "tests": [test], "missing": False, "data_match": match}


def _deciding(run: dict) -> list[dict]:
    """The tests that decide a run's verdict: all of them if there are at most two; else the
    contradicting ones, or the unsettled ones, or (all reproduced) the narrowest margin."""
    tests = run["tests"]
    if len(tests) <= 2:
        return tests
    for kind in ("contradicted", "inconclusive"):
        chosen = [t for t in tests if t["verdict"] == kind]
        if chosen:
            return chosen
    return [min(tests, key=lambda t: t["expected_sign"] * t["low"])]


def _format_diff(test: dict, names: bool = True) -> str:
    """A test's difference and interval; ``names=False`` leaves the models out (the claim names
    them)."""
    if test["missing"]:
        return f"no scores for {', '.join(m.replace(REFERENCE, '') for m in test['missing'])}"
    if test["metric"] == "share":
        return f"{test['mean']:.1%} [{test['low']:.1%}, {test['high']:.1%}]"
    d, unit = DIGITS[test["metric"]], UNITS[test["metric"]]
    name = {"mse": "ΔMSE", "ssim": "ΔSSIM", "psnr": "ΔPSNR"}[test["metric"]]
    where = ", darkest quarter" if test["subset"] == "dark" else ""
    b = "input" if test["b"] == BLURRED_INPUT else test["b"]
    label = f"{name}({test['a']} − {b}{where})" if names else f"{name}{where}"
    ci = S.format_ci(test["low"], test["high"], d, signed=True)
    return f"{label} {test['mean']:+.{d}f}{unit} {ci}"


def format_run(run: dict | None, none: str = "no reference run", names: bool = True) -> str:
    """The deciding tests of a run and its verdict in one line (``none`` when there is no
    run; ``names`` includes the methods' names)."""
    if run is None:
        return none
    if not run["tests"]:
        return "results missing"
    return "; ".join(_format_diff(t, names) for t in _deciding(run)) + f" → {run['verdict']}"


def phrase(test: dict) -> str:
    """What one test shows, in words that claim a difference only where the interval excludes
    zero."""
    if test["missing"]:
        missing = ", ".join(pretty(m.replace(REFERENCE, "")) for m in test["missing"])
        return f"there are no scores for {missing}"
    if test["metric"] == "share":
        return (
            f"{test['mean']:.1%} of random patches have SSIM ≥ 0.9 (95% CI {test['low']:.1%} to "
            f"{test['high']:.1%}, {test['n']:,} patches of {test['clusters']:,} frames)"
        )
    d, unit = DIGITS[test["metric"]], UNITS[test["metric"]]
    dark = " on the darkest quarter of the test images" if test["subset"] == "dark" else ""
    name = METRIC_NAMES[test["metric"]] + dark
    ci = f"95% CI of the difference {test['low']:+.{d}f} to {test['high']:+.{d}f}{unit}"
    a, b = pretty(test["a"]), pretty(test["b"])
    if test["low"] > 0 or test["high"] < 0:
        direction = "higher" if test["low"] > 0 else "lower"
        return f"{a}'s {name} is {direction} than {b}'s by {abs(test['mean']):.{d}f}{unit} ({ci})"
    return (
        f"the {name} of {a} minus {b}'s, {test['mean']:+.{d}f}{unit} ({ci}), is compatible with no "
        "difference"
    )


def verdict_reason(run: dict | None, claim: Claim) -> str:
    """Why a verdict is what it is: "missing", "data", "interval" or "" (decided)."""
    if run is None or run.get("missing"):
        return "missing"
    if run["verdict"] != "inconclusive":
        return ""
    return "data" if run.get("data_match") is False else "interval"


def verdict_limit(claim: Claim, run: dict | None, source: str, evidence: Evidence) -> str:
    """One sentence on what limits the verdict: data, protocol or training budget."""
    if claim.kind in ("patches", "motion"):
        found = evidence.patches if claim.kind == "patches" else evidence.motion
        chapter = PATCH_CHAPTER if claim.kind == "patches" else MOTION_CHAPTER
        if found is None:
            return (
                f"Data: the results of notebooks/{NOTEBOOKS[chapter]}.ipynb are missing from this "
                "output folder."
            )
        if found["data_kind"] != "reds":
            what = (
                "real motion blur but not"
                if found["data_is_real"]
                else "synthetic camera shake rather than"
            )
            return (
                f"Data: ours are {found['data_label']}, {what} the original's REDS, so the "
                "original's number cannot be tested here."
            )
        if claim.kind == "patches":
            return (
                "Protocol: the original estimated its share by a kernel density estimate over half "
                "the REDS training set; we count random patches of the frames analysed."
            )
        trained = found.get("trained_by", {}).get(source) or found.get("trained", "a CPU run")
        return (
            f"Protocol and budget: we score {found['eval']} with {trained}; the original "
            "averaged 500 whole REDS frames after 150 epochs."
        )
    problems = [
        info["message"]
        for c, info in evidence.chapters.items()
        if c in CIFAR_CHAPTERS
        and info["status"] in ("missing", "refused")
        and any(MODEL_CHAPTER.get(t.a) == c or MODEL_CHAPTER.get(t.b) == c for t in claim.tests)
    ]
    if run is None or (run.get("missing") and source == "this run"):
        return "Data: " + ("; ".join(problems) if problems else "scores are missing") + "."
    models = sorted({m for t in claim.tests for m in (t.a, t.b) if m != BLURRED_INPUT})
    if source in ("reference run", "GPU reference run"):
        prefix = REFERENCE if source == "reference run" else GPU_REFERENCE
        spent = [evidence.training.get(prefix + m, {}) for m in models]
        epochs = sorted({s.get("epochs") for s in spent if s.get("epochs") is not None})
        runs = "the reference runs" if source == "reference run" else "the GPU reference runs"
        budget = (
            f"Budget: {runs} trained at the full profile (all the training images"
            + (f", {'/'.join(map(str, epochs))} epochs" if epochs else "")
            + ", to early stopping unless named below), close to the "
            "original's training, but our networks add an input skip that the original's lack"
        )
    elif evidence.profile == "full":
        budget = (
            "Protocol: the full profile follows the original's training, but our networks add an "
            "input skip"
        )
    else:
        spent = [evidence.training.get(m, {}) for m in models]
        epochs = sorted({s.get("epochs") for s in spent if s.get("epochs") is not None})
        seconds = [s.get("train_seconds") or 0.0 for s in spent]
        budget = (
            f"Budget: at the {evidence.profile} profile these models trained "
            f"{'/'.join(map(str, epochs)) or '?'} epoch(s), at most "
            f"{max(seconds, default=0):.0f} s each on a CPU, against the original's tens of "
            "epochs on a GPU"
        )
    if run["verdict"] == "inconclusive":
        budget += f"; with {evidence.n_test:,} test images the interval contains zero"
    return budget + "."


def claim_sentence(
    claim: Claim, final: dict | None, verdict: str, source: str, limit: str, budget: str = ""
) -> str:
    """The sentence stating ``claim``'s verdict from its ``final`` tests, naming where they
    come from (``source``) and the training budget it holds at (``budget``), or, when untested,
    why (``limit``)."""
    head = f"Claim {claim.number} ({claim.text}) is {verdict}" + (f" {budget}" if budget else "")
    if final is None or all(t["missing"] for t in final["tests"]):
        return f"{head}: it could not be tested. {limit}"
    where = {
        "reference run": " in the reference runs",
        "GPU reference run": " in the GPU reference runs",
    }.get(source, "")
    phrases = "; ".join(phrase(t) for t in _deciding(final))
    if final.get("data_match") is False:
        return f"{head}, because our data are not the original's: on them, {phrases}."
    return f"{head}{where}: {phrases}."
