"""The evidence for the scorecard: every chapter's per-image scores, checked to pair up."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..core.paths import runs_dir
from ..core.results import REFERENCE_SUFFIX, read_arrays, read_results, split_scores
from ..training.zoo import ZooError, read_record
from .claims import (
    BLURRED_INPUT,
    CIFAR_CHAPTERS,
    DARK_FRACTION,
    GPU_REFERENCE,
    MOTION_CHAPTER,
    NOTEBOOKS,
    PATCH_CHAPTER,
    REFERENCE,
)


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
        """A few lines: the data, each chapter's status and the reference runs found."""
        lines = [f"{self.data}; {self.n_test} test images"]
        for name, info in self.chapters.items():
            lines.append(
                f"  {name}: {info['status']}"
                + (f" ({info['message']})" if info.get("message") else "")
            )
        refs = sorted(k[len(REFERENCE) :] for k in self.scores if k.startswith(REFERENCE))
        lines.append(f"  reference runs: {', '.join(refs) if refs else 'none'}")
        return "\n".join(lines)


def pairing_problem(chapter: str, sigmas, meta: dict, study_sigmas, study_meta: dict) -> str | None:
    """Why ``chapter``'s per-image scores cannot be paired with the study's test images, or None.

    ``meta`` and ``study_meta`` hold "n_test" and "provenance" ({"data", "profile"}, as the
    chapters' JSON results keep them); the sigmas are the test images' blur strengths in test
    order."""
    prov, ours = meta.get("provenance") or {}, study_meta.get("provenance") or {}
    if meta.get("n_test") != study_meta.get("n_test") or len(sigmas) != len(study_sigmas):
        return (
            f"{chapter} scored {meta.get('n_test')} test images ({len(sigmas)} saved), this "
            f"study has {study_meta.get('n_test')}"
        )
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
    mask[np.argsort(brightness, kind="stable")[: max(1, math.ceil(fraction * len(sharp)))]] = True
    return mask


def load_saved(chapter: str) -> dict | None:
    """A chapter's saved results (report/results/<chapter>.json), or None if absent."""
    return read_results(chapter)


def load_per_image(chapter: str) -> dict | None:
    """A chapter's per-image arrays (report/results/per_image/<chapter>.npz), or None."""
    return read_arrays(chapter)


def _finished_run(study, model: str) -> bool:
    """Whether ``model``'s run of ``study`` stopped early or trained all its epochs."""
    from ..studies.cifar.study import run_name

    state = runs_dir() / run_name(study, model) / "state.json"
    if not state.exists():
        return False
    saved = json.loads(state.read_text())
    return (
        bool(saved.get("stopped_early"))
        or saved.get("epoch", -1) + 1 >= study.plan.train_config(model).epochs
    )


def _recompute(study, chapter: str) -> tuple[dict, dict] | None:
    """Scores of ``chapter``'s models from their finished runs (never trains); None if a run is
    missing or unfinished."""
    from ..studies.cifar import study as cs

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
    evidence = Evidence(
        study.profile,
        study.provenance,
        study.describe(),
        len(study.splits.test),
        scores={},
        sigmas=np.asarray(study.test_sigmas, np.float64),
        dark=dark_mask(study.splits.test),
    )
    for chapter in CIFAR_CHAPTERS:
        arrays, saved = load_per_image(chapter), load_saved(chapter)
        info = {
            "status": "missing",
            "message": f"no per-image results: run notebooks/{NOTEBOOKS[chapter]}.ipynb",
        }
        if arrays is not None and saved is not None:
            problem = pairing_problem(
                chapter, arrays.get("sigma", []), saved, study.test_sigmas, meta
            )
            if problem is None:
                chapter_scores = split_scores(arrays)
                evidence.scores.update(chapter_scores)
                for name, entry in saved.get("models", {}).items():
                    if "epochs" in entry:
                        evidence.training[name] = {
                            "epochs": entry["epochs"],
                            "train_seconds": entry.get("train_seconds"),
                        }
                    for key, prefix in (
                        ("reference_run", REFERENCE),
                        ("gpu_reference_run", GPU_REFERENCE),
                    ):
                        if "epochs" in (entry.get(key) or {}):
                            ref = entry[key]
                            evidence.training[prefix + name] = {
                                "epochs": ref["epochs"],
                                "train_seconds": ref.get("train_seconds"),
                                "stopped": ref.get("stopped", ""),
                            }
                info = {"status": "saved", "message": ""}
            else:
                info = {"status": "refused", "message": f"not paired: {problem}"}
        if info["status"] != "saved" and recompute:
            redone = _recompute(study, chapter)
            if redone is not None:
                chapter_scores, training = redone
                evidence.scores.update(chapter_scores)
                evidence.training.update(training)
                info = {
                    "status": "recomputed",
                    "message": "scored here from its finished runs; " + info["message"],
                }
        evidence.chapters[chapter] = info
    evidence.motion = _motion_evidence()
    evidence.training.update((evidence.motion or {}).get("training", {}))
    evidence.patches = _patch_evidence()
    for chapter, found in ((MOTION_CHAPTER, evidence.motion), (PATCH_CHAPTER, evidence.patches)):
        evidence.chapters[chapter] = (
            {"status": "saved", "message": ""}
            if found
            else {"status": "missing", "message": f"run notebooks/{NOTEBOOKS[chapter]}.ipynb"}
        )
    return evidence


def _data_fields(saved: dict) -> dict:
    return {
        "data_kind": saved.get("data_kind"),
        "data_label": saved.get("data_label", "unknown data"),
        "data_is_real": bool(saved.get("data_is_real")),
        "provenance": saved.get("provenance", {}),
    }


def _motion_evidence() -> dict | None:
    saved, arrays = load_saved(MOTION_CHAPTER), load_per_image(MOTION_CHAPTER)
    if saved is None or arrays is None:
        return None
    scores = split_scores(arrays)
    models = [name for name in scores if name != BLURRED_INPUT]
    if BLURRED_INPUT not in scores or not models:
        return None
    # The chapter's own run is this run's; the shipped one, where chapter 05 scored it, is the
    # reference run's, and decides ("scores", "label", "trained") before the chapter's own.
    reference = "srndeblur_reds" + REFERENCE_SUFFIX
    model = next((m for m in (reference, "srndeblur_reds") if m in scores), models[0])
    own = "srndeblur_reds" if "srndeblur_reds" in scores else model
    runs = {"": own, **({REFERENCE: reference} if reference in scores else {})}
    found = {
        "runs": {
            prefix: {BLURRED_INPUT: scores[BLURRED_INPUT], "srndeblur_reds": scores[name]}
            for prefix, name in runs.items()
        },
        "label": model,
        "trained": _motion_training(model),
        "trained_by": {"this run": _motion_training(own), "reference run": _motion_training(model)},
        "training": _motion_budgets(saved, own, reference in scores),
        "n": int(len(scores[BLURRED_INPUT]["mse"])),
        "eval": saved.get("eval", ""),
        **_data_fields(saved),
    }
    # Combined sources: the claim is about REDS, so its REDS test group decides where there is one.
    groups = saved.get("test_groups") or {}
    reds = next((g for g in groups if g.startswith("REDS")), None)
    if reds and "names" in arrays:
        names = [str(n) for n in arrays["names"]]
        keep = np.array([names.index(f) for f in groups[reds]["frames"] if f in names], int)
        found["runs"] = {
            prefix: {k: {m: np.asarray(v)[keep] for m, v in per.items()} for k, per in run.items()}
            for prefix, run in found["runs"].items()
        }
        frames = f"{len(keep)} whole frame{'s' if len(keep) != 1 else ''}"
        found.update(n=len(keep), eval=f"{frames} of {reds}", data_kind="reds")
        found["data_label"] = reds
    found["scores"] = found["runs"].get(REFERENCE, found["runs"][""])
    return found


def _motion_budgets(saved: dict, own: str, shipped: bool) -> dict:
    """How far the scored motion networks trained, as ``Evidence.training`` keeps it: the
    chapter's own run from its results, the shipped one from its zoo record."""
    out = {}
    entry = saved.get("models", {}).get(own, {})
    if "epochs" in entry and not own.endswith(REFERENCE_SUFFIX):
        out["srndeblur_reds"] = {k: entry.get(k) for k in ("epochs", "train_seconds")}
    if shipped:
        try:
            record = read_record("srndeblur_reds")
        except (ZooError, OSError, ValueError):
            return out
        out[REFERENCE + "srndeblur_reds"] = {
            "epochs": record.get("epochs"),
            "train_seconds": record.get("train_seconds"),
            "stopped": record.get("stopped", ""),
        }
    return out


def _motion_training(label: str) -> str:
    """How far the scored motion network trained, in words."""
    if not label.endswith(REFERENCE_SUFFIX):
        return "the chapter's own CPU-sized training"
    try:
        record = read_record(label.removesuffix(REFERENCE_SUFFIX))
    except (ZooError, OSError, ValueError):
        return "the shipped reference run"
    minutes = record.get("train_seconds", 0) / 60
    return (
        f"the shipped reference run ({record.get('epochs')} epochs, {record.get('stopped')}, "
        f"{minutes:.0f} min on {record.get('machine', 'an unnamed machine')})"
    )


def _patch_evidence() -> dict | None:
    saved, arrays = load_saved(PATCH_CHAPTER), load_per_image(PATCH_CHAPTER)
    if saved is None or arrays is None or "random_ssim" not in arrays:
        return None
    return {
        "ssim": arrays["random_ssim"],
        "frame": arrays.get("frame"),
        "threshold": saved.get("threshold", 0.9),
        "frames": saved.get("frames_analysed"),
        **_data_fields(saved),
    }
