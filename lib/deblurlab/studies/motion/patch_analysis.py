"""Chapter 07's patch analysis: how often a random motion-blur patch is 'too perfect'.

analysis = patch_analysis(profile)            # random-patch SSIM, KDE estimate, the sampler
too_perfect_table(analysis)                   # report/tables/motion_too_perfect
save_data_results("motion_data", analysis)    # report/results/motion_data.json (+ per patch)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...core.results import write_arrays, write_results, write_study_table
from ...data import patches as P
from ...data.frames import FrameSet, MotionData
from ...data.sources import find_motion_data
from ...runtime.provenance import provenance
from ...training.profiles import MotionPlan

REPORT_TOO_PERFECT = 0.29  # the report's estimate of P(SSIM >= 0.9) for a random REDS patch


@dataclass
class PatchAnalysis:
    """The patch sampler's analysis: SSIM of random and of kept patches, the fallback
    fraction, the chance of a too-perfect patch, and the frames and provenance used."""

    data: MotionData
    plan: MotionPlan
    random_ssim: np.ndarray
    kept_ssim: np.ndarray
    fallback_fraction: float
    too_perfect: dict
    frames_used: int
    provenance: dict
    benchmark: dict | None = None


def analysis_frames(data: MotionData, limit: int | None, seed: int = 5) -> FrameSet:
    """The training frames analysed: all of them, or ``limit`` drawn with ``seed`` (sorted)."""
    if limit is None or limit >= len(data.train):
        return data.train
    picked = np.random.default_rng(seed).choice(len(data.train), limit, replace=False)
    return data.train.subset(np.sort(picked))


def patch_analysis(
    profile: str | None = None, data_dir=None, data: MotionData | None = None
) -> PatchAnalysis:
    """SSIM of random 256x256 patches (the report's size) over the training frames used, the
    probability that a patch is 'too perfect', and one pass of the thresholded sampler.
    ``data``: already found motion data (else found from ``data_dir``)."""
    plan = MotionPlan.for_profile(profile)
    data = data or find_motion_data(data_dir, synthetic_kernels=plan.synthetic_kernels)
    frames = analysis_frames(data, plan.analysis_frames)
    size = min(P.PATCH_SIZE, *[min(s) for s in frames.sizes()])
    random_ssim = P.random_patch_ssim(frames, plan.analysis_patches_per_image, size)
    kept = P.sampler_statistics(frames, size, P.PATCHES_PER_IMAGE)
    return PatchAnalysis(
        data,
        plan,
        random_ssim,
        kept["ssim"],
        kept["fallback_fraction"],
        P.too_perfect_probability(random_ssim),
        len(frames),
        provenance(data.source, plan.profile),
    )


def too_perfect_table(
    analysis: PatchAnalysis, name: str | None = "motion_too_perfect"
) -> pd.DataFrame:
    """P(SSIM >= threshold) of this data beside the original report's estimate on REDS; written
    to report/tables/<name> with the analysis's footnote if named."""
    p, threshold = analysis.too_perfect, P.SSIM_THRESHOLD
    table = pd.DataFrame(
        [
            {
                "data": analysis.data.label,
                "patches": p["n_patches"],
                f"P(SSIM ≥ {threshold}), KDE": p["kde"],
                f"P(SSIM ≥ {threshold}), fraction": p["empirical"],
                "mean SSIM": float(np.mean(analysis.random_ssim)),
            },
            {
                "data": "REDS, half training set (original report)",
                "patches": None,
                f"P(SSIM ≥ {threshold}), KDE": REPORT_TOO_PERFECT,
                f"P(SSIM ≥ {threshold}), fraction": None,
                "mean SSIM": None,
            },
        ]
    ).astype({"patches": "Int64"})
    if name:
        write_study_table(
            analysis,
            name,
            table,
            f"Random {P.PATCH_SIZE}x{P.PATCH_SIZE} patches, "
            f"{analysis.plan.analysis_patches_per_image} per frame, over "
            f"{analysis.frames_used} training frames; SSIM of each blurred patch "
            "against its sharp patch. The report's row is its own estimate on REDS.",
        )
    return table


def save_data_results(chapter: str, analysis: PatchAnalysis, extra: dict | None = None) -> dict:
    """Write report/results/<chapter>.json and each random patch's SSIM (with its frame) to
    report/results/per_image/<chapter>.npz. Returns the payload."""
    data = analysis.data
    ssim = analysis.random_ssim
    payload = {
        "chapter": chapter,
        "provenance": analysis.provenance,
        "data": data.source,
        "data_label": data.label,
        "data_kind": data.kind,
        "data_is_real": data.is_real,
        "protocol": data.protocol,
        "n_train_frames": len(data.train),
        "n_val_frames": len(data.val),
        "n_test_frames": len(data.test),
        "frames_analysed": analysis.frames_used,
        "patches_per_frame": analysis.plan.analysis_patches_per_image,
        "patch_size": P.PATCH_SIZE,
        "threshold": P.SSIM_THRESHOLD,
        "tries": P.TRIES,
        "too_perfect": analysis.too_perfect,
        "report_too_perfect": REPORT_TOO_PERFECT,
        "random_ssim": {
            "mean": float(np.mean(ssim)),
            "median": float(np.median(ssim)),
            "min": float(np.min(ssim)),
            "max": float(np.max(ssim)),
        },
        "kept_ssim_mean": float(np.mean(analysis.kept_ssim)),
        "fallback_fraction": analysis.fallback_fraction,
        "benchmark": analysis.benchmark,
    }
    payload.update(extra or {})
    write_results(chapter, payload)
    # random_patch_ssim yields the frames' patches in frame order, patches_per_frame each
    per_frame = analysis.plan.analysis_patches_per_image
    n = len(ssim)
    frame = (
        np.repeat(np.arange(analysis.frames_used), per_frame)
        if n == analysis.frames_used * per_frame
        else np.arange(n)
    )
    write_arrays(chapter, {"random_ssim": np.asarray(ssim, np.float64), "frame": frame})
    return payload
