"""Which of the original report's findings hold? A scorecard with confidence intervals.

    study = cifar_study.prepare_study(profile)
    evidence = collect(study)          # every chapter's per-image scores, checked to pair up
    card = scorecard(evidence)         # one verdict a claim, computed from paired intervals
    write_tables(card, evidence)       # findings_scorecard, findings_tests, findings_psnr
    save_results(card, evidence)       # report/results/findings.json, read by the report's section

The claims are data (``CLAIMS``). Each is tested by one or more paired comparisons (``Test``) of two
methods on the same test images; ``stats`` gives the interval and the verdict, and every sentence
of the chapter and of the report's conclusion is written here from those verdicts, so none claims a
difference that its interval does not support.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats as S
from .metrics import PSNR_CAP_DB
from .paths import results_dir, runs_dir
from .provenance import footnote
from .tables import write_table

BLURRED_INPUT = "blurred input"
REFERENCE = "reference:"  # per-image keys of the shipped reference runs: "reference:<model>"
PER_IMAGE_DIR = "per_image"
CIFAR_CHAPTERS = {"resunet": ("resunet1", "resunet3"), "eddensenet": ("eddensenet",),
                  "caessc": ("caessc_d30_f64", "caessc_d22_f128_half", "caessc_d22_f128_half_no_sigmoid"),
                  "srndeblur_cifar": ("srndeblur_cifar", "srndeblur_cifar_lstm")}
NOTEBOOKS = {"resunet": "01_resunet", "eddensenet": "02_eddensenet", "caessc": "03_caessc",
             "srndeblur_cifar": "04_srndeblur_cifar", "srndeblur_reds": "05_srndeblur_reds",
             "motion_data": "07_motion_datasets"}
MODEL_CHAPTER = {m: c for c, models in CIFAR_CHAPTERS.items() for m in models}
MOTION_CHAPTER, PATCH_CHAPTER = "srndeblur_reds", "motion_data"
DARK_FRACTION = 0.25  # claim 4's "dark areas": the darkest quarter of the sharp test images
METRIC_NAMES = {"mse": "MSE", "ssim": "SSIM", "psnr": "PSNR of the mean MSE"}
DIGITS = {"mse": 5, "ssim": 4, "psnr": 2}
UNITS = {"mse": "", "ssim": "", "psnr": " dB"}
PRETTY = {"resunet1": "ResUNet1", "resunet3": "ResUNet3", "eddensenet": "EDDenseNet",
          "caessc_d30_f64": "CAESSC_d30_f64", "caessc_d22_f128_half": "CAESSC_d22_f128_half",
          "caessc_d22_f128_half_no_sigmoid": "CAESSC_d22_f128_half_no_sigmoid",
          "srndeblur_cifar": "SRNDeblur", "srndeblur_cifar_lstm": "SRNDeblur with LSTM",
          "srndeblur_reds": "SRNDeblur_reds", BLURRED_INPUT: "the blurred input"}


def pretty(name: str) -> str:
    return PRETTY.get(name, name)


# --- the claims ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Test:
    """The claim that ``metric`` of method ``a`` minus that of ``b`` has sign ``expected_sign``
    (``metric`` "psnr" is the PSNR of the mean MSE); ``subset`` "dark" keeps the darkest images."""
    a: str
    b: str
    metric: str
    expected_sign: int
    subset: str | None = None

    def label(self) -> str:
        where = " (darkest quarter)" if self.subset == "dark" else ""
        return f"{self.a} − {self.b}: {METRIC_NAMES[self.metric]}{where}"


@dataclass(frozen=True)
class Claim:
    number: int
    text: str
    metric: str  # how the claim is tested, in words
    original: str  # the original report's numbers
    kind: str = "cifar"  # "cifar", "patches" (claim 7) or "motion" (claim 8)
    tests: tuple = ()
    claimed: float | None = None  # "patches": the claimed proportion
    tolerance: float | None = None  # "patches": how close counts as "about"


OTHER_NETWORKS = ("resunet1", "resunet3", "eddensenet", "caessc_d30_f64", "caessc_d22_f128_half",
                  "caessc_d22_f128_half_no_sigmoid")
CLAIMS = (
    Claim(1, "ResUNet3 beats ResUNet1", "MSE difference", "MSE 0.0016 vs 0.0018",
          tests=(Test("resunet3", "resunet1", "mse", -1),)),
    Claim(2, "Both ResUNets beat EDDenseNet", "MSE difference, each ResUNet against EDDenseNet",
          "MSE 0.0018 and 0.0016 vs 0.0021",
          tests=(Test("resunet1", "eddensenet", "mse", -1), Test("resunet3", "eddensenet", "mse", -1))),
    Claim(3, "CAESSC_d30_f64 (no downsampling) beats CAESSC_d22_f128_half", "MSE difference",
          "MSE 0.0018 vs 0.0020", tests=(Test("caessc_d30_f64", "caessc_d22_f128_half", "mse", -1),)),
    Claim(4, "A ReLU output is clearly worse than a sigmoid output and fails on dark areas",
          "MSE difference, on all test images and on the darkest quarter", "MSE 0.00389 vs 0.0020",
          tests=(Test("caessc_d22_f128_half_no_sigmoid", "caessc_d22_f128_half", "mse", +1),
                 Test("caessc_d22_f128_half_no_sigmoid", "caessc_d22_f128_half", "mse", +1, "dark"))),
    Claim(5, "The LSTM bottleneck raises SRNDeblur's PSNR but lowers its SSIM",
          "differences of the PSNR of the mean MSE and of SSIM", "PSNR 29.38 vs 29.23; SSIM 0.9188 vs 0.9225",
          tests=(Test("srndeblur_cifar_lstm", "srndeblur_cifar", "psnr", +1),
                 Test("srndeblur_cifar_lstm", "srndeblur_cifar", "ssim", -1))),
    Claim(6, "SRNDeblur is the best CIFAR-10 network by PSNR",
          "PSNR of the mean MSE of SRNDeblur with LSTM minus each other family's network",
          "29.38 dB, next best 29.03 (ResUNet3)",
          tests=tuple(Test("srndeblur_cifar_lstm", other, "psnr", +1) for other in OTHER_NETWORKS)),
    Claim(7, "About 29% of training patches are 'too perfect' (blur-vs-sharp SSIM ≥ 0.9)",
          "share of random patches with SSIM ≥ 0.9 (frames resampled); 'about': within ±5 points",
          "29% (kernel density estimate, REDS)", kind="patches", claimed=0.29, tolerance=0.05),
    Claim(8, "SRNDeblur_reds restores real motion blur", "PSNR of the mean MSE and SSIM, restored minus blurred frames",
          "27.23 dB, SSIM 0.8105 on 500 REDS frames", kind="motion",
          tests=(Test("srndeblur_reds", BLURRED_INPUT, "psnr", +1), Test("srndeblur_reds", BLURRED_INPUT, "ssim", +1))),
)


# --- the evidence: every chapter's per-image scores --------------------------------------------

@dataclass
class Evidence:
    """What the scorecard is computed from. ``chapters[name]["status"]`` is "saved" (read from the
    chapter's per-image file), "recomputed" (scored here from the chapter's finished runs),
    "missing" or "refused" (its test images are not this study's; ``message`` says why)."""
    profile: str
    provenance: dict
    data: str
    n_test: int
    scores: dict = field(default_factory=dict)  # CIFAR: method -> metric -> per-image array
    sigmas: np.ndarray | None = None
    dark: np.ndarray | None = None  # mask of the darkest test images (claim 4)
    chapters: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # model -> epochs, train_seconds
    motion: dict | None = None  # claim 8: scores, data_kind, data_label, data_is_real, n
    patches: dict | None = None  # claim 7: ssim, frame, data_kind, data_label, data_is_real

    def describe(self) -> str:
        lines = [f"{self.data}; {self.n_test} test images"]
        for name, info in self.chapters.items():
            lines.append(f"  {name}: {info['status']}" + (f" ({info['message']})" if info.get("message") else ""))
        refs = sorted(k[len(REFERENCE):] for k in self.scores if k.startswith(REFERENCE))
        lines.append(f"  reference runs: {', '.join(refs) if refs else 'none'}")
        return "\n".join(lines)


def pairing_problem(chapter: str, sigmas, meta: dict, study_sigmas, study_meta: dict) -> str | None:
    """Why ``chapter``'s per-image scores cannot be paired with the study's test images, or None.

    ``meta`` and ``study_meta`` hold "n_test" and "provenance" ({"data", "profile"}, as the chapters'
    JSON results keep them); the sigmas are the test images' blur strengths in test order."""
    prov, ours = meta.get("provenance") or {}, study_meta.get("provenance") or {}
    if meta.get("n_test") != study_meta.get("n_test") or len(sigmas) != len(study_sigmas):
        return (f"{chapter} scored {meta.get('n_test')} test images ({len(sigmas)} saved), this study has "
                f"{study_meta.get('n_test')}")
    for key in ("profile", "data"):
        if prov.get(key) != ours.get(key):
            return f"{chapter} ran with {key} {prov.get(key)!r}, this study with {ours.get(key)!r}"
    if not np.allclose(np.asarray(sigmas, np.float64), np.asarray(study_sigmas, np.float64)):
        return f"{chapter}'s test images carry other blur strengths (another split or blur seed)"
    return None


def dark_mask(sharp: np.ndarray, fraction: float = DARK_FRACTION) -> np.ndarray:
    """The ``fraction`` of images with the lowest mean intensity (at least one)."""
    brightness = np.asarray(sharp, np.float64).reshape(len(sharp), -1).mean(axis=1)
    mask = np.zeros(len(sharp), bool)
    mask[np.argsort(brightness, kind="stable")[:max(1, math.ceil(fraction * len(sharp)))]] = True
    return mask


def _load_json(chapter: str) -> dict | None:
    path = results_dir() / f"{chapter}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _load_npz(chapter: str) -> dict | None:
    path = results_dir() / PER_IMAGE_DIR / f"{chapter}.npz"
    if not path.exists():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def _split_scores(arrays: dict) -> dict:
    scores: dict = {}
    for key, values in arrays.items():
        if "|" in key:
            method, metric = key.split("|", 1)
            scores.setdefault(method, {})[metric] = np.asarray(values, np.float64)
    return scores


def _finished_run(study, model: str) -> bool:
    from .cifar_study import run_name

    state = runs_dir() / run_name(study, model) / "state.json"
    if not state.exists():
        return False
    saved = json.loads(state.read_text())
    return bool(saved.get("stopped_early")) or saved.get("epoch", -1) + 1 >= study.plan.train_config(model).epochs


def _recompute(study, chapter: str) -> tuple[dict, dict] | None:
    """Scores of ``chapter``'s models from their finished runs (never trains); None if a run is
    missing or unfinished."""
    from . import cifar_study as cs

    models = CIFAR_CHAPTERS[chapter]
    if not all(_finished_run(study, m) for m in models):
        return None
    loaded, training = {}, {}
    for name in models:
        loaded[name], result = cs.train_model(study, name)
        training[name] = {"epochs": result.epochs_run, "train_seconds": result.train_seconds}
    return cs.evaluate(study, loaded), training


def collect(study, recompute: bool = False) -> Evidence:
    """Every CIFAR chapter's per-image scores on ``study``'s test images, and the motion chapters'.

    A chapter whose per-image file is absent from this output folder, or whose test images are not
    this study's, leaves its claims untested, and the evidence says why; with ``recompute`` it is
    first scored here from its finished runs (loading, never training: several seconds a model)."""
    meta = {"n_test": len(study.splits.test), "provenance": study.provenance}
    evidence = Evidence(study.profile, study.provenance, study.describe(), len(study.splits.test),
                        scores={}, sigmas=np.asarray(study.test_sigmas, np.float64), dark=dark_mask(study.splits.test))
    for chapter in CIFAR_CHAPTERS:
        arrays, saved = _load_npz(chapter), _load_json(chapter)
        info = {"status": "missing", "message": f"no per-image results: run notebooks/{NOTEBOOKS[chapter]}.ipynb"}
        if arrays is not None and saved is not None:
            problem = pairing_problem(chapter, arrays.get("sigma", []), saved, study.test_sigmas, meta)
            if problem is None:
                chapter_scores = _split_scores(arrays)
                evidence.scores.update(chapter_scores)
                for name, entry in saved.get("models", {}).items():
                    if "epochs" in entry:
                        evidence.training[name] = {"epochs": entry["epochs"],
                                                   "train_seconds": entry.get("train_seconds")}
                    if "epochs" in (entry.get("reference_run") or {}):
                        ref = entry["reference_run"]
                        evidence.training[REFERENCE + name] = {"epochs": ref["epochs"],
                                                               "train_seconds": ref.get("train_seconds"),
                                                               "stopped": ref.get("stopped", "")}
                info = {"status": "saved", "message": ""}
            else:
                info = {"status": "refused", "message": f"not paired: {problem}"}
        if info["status"] != "saved" and recompute:
            redone = _recompute(study, chapter)
            if redone is not None:
                chapter_scores, training = redone
                evidence.scores.update(chapter_scores)
                evidence.training.update(training)
                info = {"status": "recomputed", "message": "scored here from its finished runs; " + info["message"]}
        evidence.chapters[chapter] = info
    evidence.motion = _motion_evidence()
    evidence.patches = _patch_evidence()
    for chapter, found in ((MOTION_CHAPTER, evidence.motion), (PATCH_CHAPTER, evidence.patches)):
        evidence.chapters[chapter] = ({"status": "saved", "message": ""} if found else
                                      {"status": "missing", "message": f"run notebooks/{NOTEBOOKS[chapter]}.ipynb"})
    return evidence


def _data_fields(saved: dict) -> dict:
    return {"data_kind": saved.get("data_kind"), "data_label": saved.get("data_label", "unknown data"),
            "data_is_real": bool(saved.get("data_is_real")), "provenance": saved.get("provenance", {})}


def _motion_evidence() -> dict | None:
    saved, arrays = _load_json(MOTION_CHAPTER), _load_npz(MOTION_CHAPTER)
    if saved is None or arrays is None:
        return None
    scores = _split_scores(arrays)
    models = [name for name in scores if name != BLURRED_INPUT]
    if BLURRED_INPUT not in scores or not models:
        return None
    model = "srndeblur_reds" if "srndeblur_reds" in scores else models[0]
    return {"scores": {BLURRED_INPUT: scores[BLURRED_INPUT], "srndeblur_reds": scores[model]}, "label": model,
            "n": int(len(scores[BLURRED_INPUT]["mse"])), "eval": saved.get("eval", ""), **_data_fields(saved)}


def _patch_evidence() -> dict | None:
    saved, arrays = _load_json(PATCH_CHAPTER), _load_npz(PATCH_CHAPTER)
    if saved is None or arrays is None or "random_ssim" not in arrays:
        return None
    return {"ssim": arrays["random_ssim"], "frame": arrays.get("frame"), "threshold": saved.get("threshold", 0.9),
            "frames": saved.get("frames_analysed"), **_data_fields(saved)}


# --- testing the claims ------------------------------------------------------------------------

def _statistic(metric: str, values: dict) -> float:
    return S.psnr_of_mean_mse(values["mse"]) if metric == "psnr" else float(np.mean(values[metric]))


def run_test(test: Test, scores: dict, dark: np.ndarray | None = None, data_match: bool = True,
             prefix: str = "") -> dict:
    """One test on ``scores`` (method -> metric -> per-image array): the paired difference, its
    interval and verdict. ``prefix`` "reference:" tests the reference runs' scores (the blurred
    input is shared). A method absent from ``scores`` gives a "missing" result."""
    a = prefix + test.a if test.a != BLURRED_INPUT else test.a
    b = prefix + test.b if test.b != BLURRED_INPUT else test.b
    out = {"a": test.a, "b": test.b, "metric": test.metric, "subset": test.subset, "expected_sign": test.expected_sign,
           "label": test.label(), "missing": [m for m in (a, b) if m not in scores]}
    if out["missing"]:
        return {**out, "verdict": "inconclusive", "n": 0, "mean": math.nan, "low": math.nan, "high": math.nan,
                "a_value": math.nan, "b_value": math.nan}
    mask = dark if test.subset == "dark" else None
    pick = (lambda v: v[mask]) if mask is not None else (lambda v: v)
    va = {m: pick(v) for m, v in scores[a].items()}
    vb = {m: pick(v) for m, v in scores[b].items()}
    if test.metric == "psnr":
        diff = S.paired_psnr_difference(va["mse"], vb["mse"])
    else:
        diff = S.paired_difference(va[test.metric], vb[test.metric])
    return {**out, **diff, "a_value": _statistic(test.metric, va), "b_value": _statistic(test.metric, vb),
            "verdict": S.verdict(diff["low"], diff["high"], test.expected_sign, data_match)}


def _run_claim(claim: Claim, evidence: Evidence, prefix: str = "") -> dict | None:
    """Every test of ``claim`` on this run's (or, with ``prefix``, the reference runs') scores."""
    if claim.kind == "patches":
        return None if prefix else _patch_claim(claim, evidence.patches)
    if claim.kind == "motion":
        if prefix or evidence.motion is None:
            return None if prefix else {"verdict": "inconclusive", "tests": [], "missing": True, "data_match": None}
        match = evidence.motion["data_kind"] == "reds"
        tests = [run_test(t, evidence.motion["scores"], data_match=match) for t in claim.tests]
        return {"verdict": S.combine_verdicts(t["verdict"] for t in tests), "tests": tests, "missing": False,
                "data_match": match}
    tests = [run_test(t, evidence.scores, evidence.dark, prefix=prefix) for t in claim.tests]
    missing = any(t["missing"] for t in tests)
    if prefix and all(t["missing"] for t in tests):
        return None  # no reference run at all
    return {"verdict": S.combine_verdicts(t["verdict"] for t in tests), "tests": tests, "missing": missing,
            "data_match": True}


def _patch_claim(claim: Claim, patches: dict | None) -> dict:
    if patches is None:
        return {"verdict": "inconclusive", "tests": [], "missing": True, "data_match": None}
    flags = np.asarray(patches["ssim"]) >= patches["threshold"]
    estimate = S.proportion_ci(flags, patches.get("frame"))
    match = patches["data_kind"] == "reds"
    result = S.estimate_verdict(estimate["low"], estimate["high"], claim.claimed, claim.tolerance, match)
    test = {"a": "random patches", "b": f"{claim.claimed:.0%}", "metric": "share", "subset": None,
            "label": f"P(SSIM ≥ {patches['threshold']:g})", "missing": [], **estimate,
            "a_value": estimate["mean"], "b_value": claim.claimed, "verdict": result}
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
    """A test's difference and interval; ``names=False`` leaves the models out (the claim names them)."""
    if test["missing"]:
        return f"no scores for {', '.join(m.replace(REFERENCE, '') for m in test['missing'])}"
    if test["metric"] == "share":
        return f"{test['mean']:.1%} [{test['low']:.1%}, {test['high']:.1%}]"
    d, unit = DIGITS[test["metric"]], UNITS[test["metric"]]
    name = {"mse": "ΔMSE", "ssim": "ΔSSIM", "psnr": "ΔPSNR"}[test["metric"]]
    where = ", darkest quarter" if test["subset"] == "dark" else ""
    b = "input" if test["b"] == BLURRED_INPUT else test["b"]
    label = f"{name}({test['a']} − {b}{where})" if names else f"{name}{where}"
    return f"{label} {test['mean']:+.{d}f}{unit} {S.format_ci(test['low'], test['high'], d, signed=True)}"


def format_run(run: dict | None, none: str = "no reference run", names: bool = True) -> str:
    if run is None:
        return none
    if not run["tests"]:
        return "results missing"
    return "; ".join(_format_diff(t, names) for t in _deciding(run)) + f" → {run['verdict']}"


def _phrase(test: dict) -> str:
    """What one test shows, in words that claim a difference only where the interval excludes zero."""
    if test["missing"]:
        return f"there are no scores for {', '.join(pretty(m.replace(REFERENCE, '')) for m in test['missing'])}"
    if test["metric"] == "share":
        return (f"{test['mean']:.1%} of random patches have SSIM ≥ 0.9 (95% CI {test['low']:.1%} to "
                f"{test['high']:.1%}, {test['n']:,} patches of {test['clusters']:,} frames)")
    d, unit = DIGITS[test["metric"]], UNITS[test["metric"]]
    dark = " on the darkest quarter of the test images" if test["subset"] == "dark" else ""
    name = METRIC_NAMES[test["metric"]] + dark
    ci = f"95% CI of the difference {test['low']:+.{d}f} to {test['high']:+.{d}f}{unit}"
    a, b = pretty(test["a"]), pretty(test["b"])
    if test["low"] > 0 or test["high"] < 0:
        direction = "higher" if test["low"] > 0 else "lower"
        return f"{a}'s {name} is {direction} than {b}'s by {abs(test['mean']):.{d}f}{unit} ({ci})"
    return (f"the {name} of {a} minus {b}'s, {test['mean']:+.{d}f}{unit} ({ci}), is compatible with no "
            "difference")


def _reason(run: dict | None, claim: Claim) -> str:
    """Why a verdict is what it is: "missing", "data", "interval" or "" (decided)."""
    if run is None or run.get("missing"):
        return "missing"
    if run["verdict"] != "inconclusive":
        return ""
    return "data" if run.get("data_match") is False else "interval"


def _limit(claim: Claim, run: dict | None, source: str, evidence: Evidence) -> str:
    """One sentence on what limits the verdict: data, protocol or training budget."""
    if claim.kind in ("patches", "motion"):
        found = evidence.patches if claim.kind == "patches" else evidence.motion
        chapter = PATCH_CHAPTER if claim.kind == "patches" else MOTION_CHAPTER
        if found is None:
            return f"Data: the results of notebooks/{NOTEBOOKS[chapter]}.ipynb are missing from this output folder."
        if found["data_kind"] != "reds":
            what = "real motion blur but not" if found["data_is_real"] else "synthetic camera shake rather than"
            return (f"Data: ours are {found['data_label']}, {what} the original's REDS, so the original's "
                    "number cannot be tested here.")
        if claim.kind == "patches":
            return ("Protocol: the original estimated its share by a kernel density estimate over half the REDS "
                    "training set; we count random patches of the frames analysed.")
        return (f"Protocol and budget: we score {found['eval']} after a CPU-sized training; the original "
                "averaged 500 whole REDS frames after 150 epochs.")
    problems = [info["message"] for c, info in evidence.chapters.items()
                if c in CIFAR_CHAPTERS and info["status"] in ("missing", "refused")
                and any(MODEL_CHAPTER.get(t.a) == c or MODEL_CHAPTER.get(t.b) == c for t in claim.tests)]
    if run is None or run.get("missing"):
        return "Data: " + ("; ".join(problems) if problems else "scores are missing") + "."
    models = sorted({m for t in claim.tests for m in (t.a, t.b) if m != BLURRED_INPUT})
    if source == "reference run":
        spent = [evidence.training.get(REFERENCE + m, {}) for m in models]
        epochs = sorted({s.get("epochs") for s in spent if s.get("epochs") is not None})
        budget = ("Budget: the reference runs trained at the full profile (all the training images, early "
                  "stopping" + (f", {'/'.join(map(str, epochs))} epochs" if epochs else "") + "), close to the "
                  "original's training, but our networks add an input skip that the original's lack")
    elif evidence.profile == "full":
        budget = "Protocol: the full profile follows the original's training, but our networks add an input skip"
    else:
        spent = [evidence.training.get(m, {}) for m in models]
        epochs = sorted({s.get("epochs") for s in spent if s.get("epochs") is not None})
        seconds = [s.get("train_seconds") or 0.0 for s in spent]
        budget = (f"Budget: at the {evidence.profile} profile these models trained "
                  f"{'/'.join(map(str, epochs)) or '?'} epoch(s), at most {max(seconds, default=0):.0f} s each on a "
                  "CPU, against the original's tens of epochs on a GPU")
    if run["verdict"] == "inconclusive":
        budget += f"; with {evidence.n_test:,} test images the interval contains zero"
    return budget + "."


def _sentence(claim: Claim, final: dict | None, verdict: str, source: str, limit: str) -> str:
    head = f"Claim {claim.number} ({claim.text}) is {verdict}"
    if final is None or all(t["missing"] for t in final["tests"]):
        return f"{head}: it could not be tested. {limit}"
    where = " in the reference runs" if source == "reference run" else ""
    phrases = "; ".join(_phrase(t) for t in _deciding(final))
    if final.get("data_match") is False:
        return f"{head}, because our data are not the original's: on them, {phrases}."
    return f"{head}{where}: {phrases}."


@dataclass
class Scorecard:
    rows: list[dict]
    tests: pd.DataFrame

    @property
    def sentences(self) -> list[str]:
        return [row["sentence"] for row in self.rows]

    def counts(self) -> dict[str, int]:
        return {v: sum(row["verdict"] == v for row in self.rows) for v in S.VERDICTS}


def unconverged(claim: Claim, evidence: Evidence) -> list[str]:
    """The models of ``claim`` whose reference run ended at an epoch cap rather than by early stopping."""
    models = sorted({m for t in claim.tests for m in (t.a, t.b) if m != BLURRED_INPUT})
    return [m for m in models if REFERENCE + m in evidence.training
            and not str(evidence.training[REFERENCE + m].get("stopped", "")).startswith("early stopping")]


def scorecard(evidence: Evidence, claims=CLAIMS) -> Scorecard:
    """Test every claim on this run and, where every method has one, on the reference runs; the
    verdict that counts is the reference runs' when they exist and all reached early stopping (runs
    cut at an epoch cap compare unequal budgets), else this run's."""
    rows, tests = [], []
    for claim in claims:
        this = _run_claim(claim, evidence)
        reference = _run_claim(claim, evidence, prefix=REFERENCE)
        capped = unconverged(claim, evidence)
        use_reference = reference is not None and not reference.get("missing") and not capped
        final, source = (reference, "reference run") if use_reference else (this, "this run")
        verdict = final["verdict"] if final else "inconclusive"
        limit = _limit(claim, final, source, evidence)
        if reference is not None and not reference.get("missing") and capped:
            limit += (f" The reference runs do not decide it: {', '.join(pretty(m) for m in capped)} stopped at "
                      "an epoch cap before early stopping, so they compare unequal budgets.")
        rows.append({"number": claim.number, "text": claim.text, "metric": claim.metric, "original": claim.original,
                     "kind": claim.kind, "this_run": this, "reference": reference, "verdict": verdict,
                     "source": source, "reason": _reason(final, claim), "limit": limit,
                     "sentence": _sentence(claim, final, verdict, source, limit)})
        for run_label, run in (("this run", this), ("reference run", reference)):
            for t in (run or {}).get("tests", []):
                tests.append({"claim": claim.number, "run": run_label, "test": t["label"],
                              "n": t.get("n", 0), "A": t["a_value"], "B": t["b_value"],
                              "A − B": t["a_value"] - t["b_value"], "95% CI": _ci_cell(t), "verdict": t["verdict"]})
    return Scorecard(rows, pd.DataFrame(tests))


def _ci_cell(test: dict) -> str:
    """The interval of A − B (for claim 7's share: of the share minus the claimed share)."""
    if test["metric"] == "share":
        return S.format_ci(test["low"] - test["b_value"], test["high"] - test["b_value"], 3, signed=True)
    return S.format_ci(test["low"], test["high"], DIGITS[test["metric"]], signed=True)


def conclusion(card: Scorecard, evidence: Evidence) -> list[str]:
    """The report's conclusion, written from the verdicts alone."""
    rows = card.rows
    by = {v: [r["number"] for r in rows if r["verdict"] == v] for v in S.VERDICTS}

    def listed(numbers):
        return ", ".join(map(str, numbers[:-1])) + (" and " if len(numbers) > 1 else "") + str(numbers[-1])

    parts = [f"{len(numbers)} {'is' if len(numbers) == 1 else 'are'} {v} (claim{'s' if len(numbers) > 1 else ''} "
             f"{listed(numbers)})" for v, numbers in by.items() if numbers]
    out = [f"Of the original report's {len(rows)} findings tested here, " + "; ".join(parts) + "."]
    reasons = {key: [r["number"] for r in rows if r["verdict"] == "inconclusive" and r["reason"] == key]
               for key in ("interval", "data", "missing")}
    why = []
    for key, because in (("interval", "the interval of a difference contains zero, so this run cannot tell the "
                                      "methods apart"),
                         ("data", "our data are not the original's"), ("missing", "the results needed were missing")):
        numbers = reasons[key]
        if numbers:
            subject = f"claim{'s' if len(numbers) > 1 else ''} {listed(numbers)}"
            verb = " stays open" if len(numbers) == 1 else " stay open"
            why.append(subject[0].upper() + subject[1:] + verb + f" because {because}" if not why
                       else f"{subject} because {because}")
    if why:
        out.append("; ".join(why) + ".")
    if any(r["source"] == "reference run" for r in rows):
        used = [r["number"] for r in rows if r["source"] == "reference run"]
        others = "; the others from this run" if len(used) < len(rows) else ""
        out.append(f"The verdict{'s' if len(used) > 1 else ''} of claim{'s' if len(used) > 1 else ''} "
                   f"{listed(used)} come{'s' if len(used) == 1 else ''} from the shipped reference runs (the "
                   f"full profile's training, each run to early stopping){others}.")
    if evidence.profile != "full" and any(r["source"] == "this run" and r["kind"] == "cifar" for r in rows):
        out.append(f"The verdicts of this run describe networks trained briefly on a CPU (the {evidence.profile} "
                   "profile), not the converged networks of the original: a contradiction or an open question "
                   "here may change with longer training, and a reproduced ranking may too.")
    return out


# --- PSNR conventions ----------------------------------------------------------------------------

def psnr_table(evidence: Evidence, name: str | None = "findings_psnr") -> tuple[pd.DataFrame, dict]:
    """Each method's PSNR three ways: the tables' convention (mean per-image PSNR), over the images
    the blur changed, and the PSNR of the mean MSE with its interval. Returns the table and a
    summary (with a generated sentence) for the report."""
    scores = evidence.scores
    if BLURRED_INPUT not in scores:
        df = pd.DataFrame(columns=["method", "mean PSNR", "changed images PSNR", "mean-MSE PSNR", "95% CI"])
        if name:
            write_table(name, df, footnote(evidence.provenance) + " No CIFAR-10 chapter's results were found.")
        return df, {"sentence": "No CIFAR-10 chapter's results were found, so no PSNR is compared.",
                    "n_changed": 0, "n": 0}
    input_mse = scores[BLURRED_INPUT]["mse"]
    changed = S.changed_images(input_mse)
    rows, values = [], {}
    for method, per_image in scores.items():
        if method.startswith(REFERENCE) or "mse" not in per_image:
            continue
        low, high = S.psnr_of_mean_mse_ci(per_image["mse"])
        values[method] = {"mean_psnr": float(np.mean(per_image["psnr"])),
                          "changed_psnr": S.mean_over_changed(per_image["psnr"], input_mse),
                          "psnr_of_mean_mse": S.psnr_of_mean_mse(per_image["mse"]), "low": low, "high": high}
        v = values[method]
        rows.append({"method": method, "mean PSNR": v["mean_psnr"], "changed images PSNR": v["changed_psnr"],
                     "mean-MSE PSNR": v["psnr_of_mean_mse"], "95% CI": S.format_ci(low, high, 2)})
    df = pd.DataFrame(rows)
    networks = [m for m in values if m != BLURRED_INPUT]
    summary = {"n": int(len(input_mse)), "n_changed": int(changed.sum()), "methods": values,
               "unchanged_share": float(1 - changed.mean())}
    sentences = [f"{len(input_mse) - int(changed.sum())} of the {len(input_mse):,} test images "
                 f"({1 - changed.mean():.0%}) come through the blur unchanged, and each counts {PSNR_CAP_DB:g} dB in "
                 f"the blurred input's mean per-image PSNR ({values[BLURRED_INPUT]['mean_psnr']:.2f} dB)."]
    if networks:
        best = max(networks, key=lambda m: values[m]["psnr_of_mean_mse"])
        top = max(networks, key=lambda m: values[m]["mean_psnr"])
        sentences.append(f"By that convention the highest network, {pretty(top)}, scores "
                         f"{values[top]['mean_psnr']:.2f} dB; over the images the blur changed, the blurred input "
                         f"scores {values[BLURRED_INPUT]['changed_psnr']:.2f} dB and {pretty(top)} "
                         f"{values[top]['changed_psnr']:.2f} dB.")
        diff = S.paired_psnr_difference(scores[best]["mse"], input_mse)
        phrase = _phrase({"a": best, "b": BLURRED_INPUT, "metric": "psnr", "subset": None, "missing": [], **diff})
        sentences.append(f"By the PSNR of the mean MSE, the highest network ({pretty(best)}) scores "
                         f"{values[best]['psnr_of_mean_mse']:.2f} dB and the blurred input "
                         f"{values[BLURRED_INPUT]['psnr_of_mean_mse']:.2f} dB: {phrase}.")
        summary.update(best=best, best_vs_input=diff)
    summary["sentence"] = " ".join(sentences)
    if name:
        write_table(name, df, footnote(evidence.provenance) + f" {S.METHOD} 'changed images PSNR': mean per-image "
                    f"PSNR over the {int(changed.sum())} of {len(input_mse)} test images whose blurred input differs "
                    "from the sharp image.")
    return df, summary


# --- quality at equal training budgets ----------------------------------------------------------

def forward_flops(model: str) -> float | None:
    """Forward FLOPs per 32x32 image: from the comparison chapter's cost table when it ran, else
    counted here (deblurlab.comparison.flops_per_image)."""
    saved = _load_json("comparison")
    cost = ((saved or {}).get("methods", {}).get(model) or {}).get("cost") or {}
    if cost.get("MFLOP/image"):
        return float(cost["MFLOP/image"]) * 1e6
    from .comparison import flops_per_image
    from .models import build_model

    return float(flops_per_image(build_model(model)))


def budget_curves(study, models=None, flops: bool = True) -> dict[str, pd.DataFrame]:
    """Per-epoch validation PSNR of every CIFAR-10 model's run at this profile, against the
    cumulative training seconds and training FLOPs (3 x forward FLOPs x images trained on).

    Reads runs/<run name>/history.csv (and state.json for the batch size); models without a run
    are left out. Columns: epoch, seconds, tflop, val_psnr."""
    from .cifar_study import run_name
    from .models import list_models

    curves = {}
    for model in models or list_models(dataset="cifar10"):
        run = runs_dir() / run_name(study, model)
        if not (run / "history.csv").exists():
            continue
        history = pd.read_csv(run / "history.csv")
        column = next((c for c in history.columns if c.startswith("val_") and c.endswith("psnr")), None)
        if column is None or not len(history):
            continue
        try:
            batch = json.loads((run / "state.json").read_text())["config"]["batch_size"]
        except (OSError, KeyError, ValueError):
            batch = study.plan.train_config(model).batch_size
        images = len(study.splits.train[:study.plan.train_images(model)])
        per_epoch = (images // batch) * batch
        forward = forward_flops(model) if flops else None
        curves[model] = pd.DataFrame({
            "epoch": history["epoch"], "seconds": history["seconds"].cumsum(),
            "tflop": (3 * forward * per_epoch * np.arange(1, len(history) + 1) / 1e12) if forward else np.nan,
            "val_psnr": history[column]})
    return curves


def budget_table(curves: dict[str, pd.DataFrame], evidence: Evidence, name: str | None = "findings_budget"
                 ) -> tuple[pd.DataFrame, dict]:
    rows = [{"model": m, "epochs": int(c["epoch"].iloc[-1]), "train s": float(c["seconds"].iloc[-1]),
             "training TFLOP": float(c["tflop"].iloc[-1]), "last val PSNR": float(c["val_psnr"].iloc[-1]),
             "best val PSNR": float(c["val_psnr"].max())} for m, c in curves.items()]
    df = pd.DataFrame(rows, columns=["model", "epochs", "train s", "training TFLOP", "last val PSNR", "best val PSNR"])
    if not rows:
        sentence = "No training history of this profile was found, so the budget figure is empty."
    else:
        fast, slow = df.loc[df["train s"].idxmin()], df.loc[df["train s"].idxmax()]
        sentence = (f"Training times at the {evidence.profile} profile range from {fast['train s']:.0f} s "
                    f"({pretty(fast['model'])}) to {slow['train s']:.0f} s ({pretty(slow['model'])}).")
    if name:
            write_table(name, df.astype({"epochs": "Int64"}) if len(df) else df,
                    footnote(evidence.provenance) + " Validation PSNR as training logged it (the mean over "
                    "validation batches of per-image PSNR); training FLOPs = 3 × forward FLOPs × images trained on "
                    "(Conv2D, Conv2DTranspose and Dense layers counted).", digits=2)
    return df, {"sentence": sentence, "rows": rows}


# --- outputs ----------------------------------------------------------------------------------------

def write_tables(card: Scorecard, evidence: Evidence) -> pd.DataFrame:
    """findings_scorecard (one row a claim) and findings_tests (one row a test); returns the first."""
    df = pd.DataFrame([{"#": r["number"], "claim": r["text"], "tested by": r["metric"], "original": r["original"],
                        "ours, this run": format_run(r["this_run"], "results missing", names=False),
                        "ours, reference run": format_run(r["reference"], names=False),
                        "verdict": r["verdict"] + (" (reference)" if r["source"] == "reference run" else "")}
                       for r in card.rows])  # what limits each row: findings.json and the chapter's list
    note = (footnote(evidence.provenance) + f" {S.METHOD} {S.VERDICT_RULE} The original's numbers are its mean "
            "per-image PSNR; "
            "ours is the PSNR of the mean MSE. Claim 4's dark areas: the darkest quarter of the sharp test "
            "images by mean intensity. Claim 7: patches of one frame are resampled together.")
    write_table("findings_scorecard", df, note)
    tests = card.tests if len(card.tests) else pd.DataFrame(columns=["claim", "run", "test"])
    write_table("findings_tests", tests, note, digits=5)
    return df


def _clean(value):
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return value


def save_results(card: Scorecard, evidence: Evidence, psnr: dict | None = None, budget: dict | None = None,
                 chapter: str = "findings") -> dict:
    """Write report/results/findings.json, from which the report's findings section is written."""
    payload = {"chapter": chapter, "provenance": evidence.provenance, "data": evidence.data,
               "n_test": evidence.n_test, "profile": evidence.profile, "method": S.METHOD, "verdict_rule": S.VERDICT_RULE,
               "claims": card.rows, "counts": card.counts(), "conclusion": conclusion(card, evidence),
               "chapters": evidence.chapters, "psnr": psnr or {}, "budget": budget or {},
               "reference_runs": sorted(k[len(REFERENCE):] for k in evidence.scores if k.startswith(REFERENCE))}
    payload = _clean(payload)
    (results_dir() / f"{chapter}.json").write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    return payload


def refresh(data_dir=None) -> dict | None:
    """Rewrite the scorecard, the PSNR table and findings.json from the chapter results now in this
    output folder, keeping the budget figure and table; None if notebook 08 never ran here.

    For a report built from several output folders merged together (``make test``: one per test
    worker), where the findings notebook may have run before, or apart from, the chapters."""
    saved = _load_json("findings")
    if saved is None:
        return None
    from .cifar_study import prepare_study

    evidence = collect(prepare_study(saved.get("profile"), data_dir))
    card = scorecard(evidence)
    write_tables(card, evidence)
    _, psnr = psnr_table(evidence)
    return save_results(card, evidence, psnr, saved.get("budget"))
