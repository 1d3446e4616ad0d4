"""Chapter 05's comparison tables and verdicts: what ``deblurlab.studies.motion.compare`` trained
and measured, as the cost table, the paired table of NAFNet-small against SRNDeblur_reds on the same
test frames, and one verdict line a budget. A difference is called a finding only when its paired
95% interval excludes zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core import stats
from ...core.results import Evaluation
from ...core.tables import footnote, write_table
from ...perf.flops import METHOD as FLOP_METHOD
from . import study as ms
from .compare import LightRuns, counted
from .results import test_groups


def cost_table(study: ms.MotionStudy, costs: dict[str, dict], *, name: str | None = None):
    """One row a network: parameters, GFLOP and seconds a frame, training steps, patches and
    seconds. Written to report/tables/<name>.md and .csv when ``name`` is given."""
    rows = []
    for label, c in costs.items():
        h, w = c["frame_size"]
        rows.append(
            {
                "model": label,
                "params": f"{c['params']:,}",
                "frame": f"{w}x{h}",
                "GFLOP/frame": f"{c['gflop_per_frame']:,.1f}",
                "s/frame": f"{c['frame_median_s']:.2f}"
                + (" (traced)" if c["frame_includes_tracing"] else ""),
                "timed calls": c["frame_calls"],
                "train steps": c["train_steps"],
                "train patches": c["train_patches"],
                "train s": None if c["train_s"] is None else round(c["train_s"]),
                "s/epoch": "–" if c["train_epoch_s"] is None else f"{c['train_epoch_s']:.1f}",
            }
        )
    df = pd.DataFrame(rows).astype(
        {
            "timed calls": "Int64",
            "train steps": "Int64",
            "train patches": "Int64",
            "train s": "Int64",
        }
    )
    if name:
        write_table(
            name,
            df,
            f"FLOPs: {FLOP_METHOD} (2 x multiply-accumulates of the convolutions and the ConvLSTM, "
            "forward, one frame, padded to the network's multiple). s/frame: median of the "
            "evaluation's calls on frames of that size after each network's first (which traces), "
            "padding and crop included; '(traced)' where no other call was left. s/epoch: the "
            "median training epoch after the first (which compiles), its validation pass "
            "included. Timed on a shared machine: noisy. " + footnote(study.provenance),
            convention="",
        )
    return df


# --- paired comparison ------------------------------------------------------------------------


def _verdict(low: float, high: float) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "too few frames for an interval"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "not told apart"


def paired_rows(
    study: ms.MotionStudy, evaluation: Evaluation, light: LightRuns, reference: str = ms.MODEL
) -> list[dict]:
    """Per light run and test group: the PSNR difference to ``reference`` on the same frames with
    its paired 95% interval, the SSIM difference, the frames where it is better, and the verdict
    (``better``/``worse`` only when the interval excludes zero)."""
    rows = []
    for label in light.models:
        for group, at in test_groups(study, evaluation).items():
            ours, theirs = evaluation[label], evaluation[reference]
            diff = stats.paired_difference(ours["psnr"][at], theirs["psnr"][at])
            rows.append(
                {
                    "model": label,
                    "budget": light.budgets[label]["rule"],
                    "group": group,
                    "frames": int(len(at)),
                    "psnr": float(np.mean(ours["psnr"][at])),
                    "reference_psnr": float(np.mean(theirs["psnr"][at])),
                    "psnr_diff": diff["mean"],
                    "low": diff["low"],
                    "high": diff["high"],
                    "ssim_diff": float(np.mean(ours["ssim"][at] - theirs["ssim"][at])),
                    "frames_better": int(np.sum(ours["psnr"][at] > theirs["psnr"][at])),
                    "verdict": _verdict(diff["low"], diff["high"]),
                }
            )
    return rows


def _interval(low: float, high: float, digits: int = 3) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return "[–]"
    return f"[{low:+.{digits}f}, {high:+.{digits}f}]"


def paired_table(
    study: ms.MotionStudy,
    rows: list[dict],
    reference: str = ms.MODEL,
    *,
    name: str | None = None,
) -> pd.DataFrame:
    """The paired rows as a table (PSNR difference with its interval, SSIM difference, frames
    better, verdict); written to report/tables/<name>.md and .csv when ``name`` is given."""
    df = pd.DataFrame(
        [
            {
                "model": r["model"],
                "budget": r["budget"],
                "data": r["group"],
                "frames": r["frames"],
                "PSNR": f"{r['psnr']:.2f}",
                f"PSNR {reference}": f"{r['reference_psnr']:.2f}",
                "PSNR difference (dB)": f"{r['psnr_diff']:+.3f} {_interval(r['low'], r['high'])}",
                "SSIM difference": f"{r['ssim_diff']:+.4f}",
                "better on": f"{r['frames_better']} of {r['frames']}",
                "verdict": r["verdict"],
            }
            for r in rows
        ]
    )
    if name:
        write_table(
            name,
            df,
            f"Difference = the light network minus {reference} (the chapter's recipe), frame by "
            "frame on the same test frames, averaged; in brackets its paired 95% interval. "
            + stats.METHOD.replace("test images", "test frames")
            + " 'better' or 'worse' only when the interval excludes zero. "
            + footnote(study.provenance),
            convention="",
        )
    return df


def _frames(n: int) -> str:
    return counted(n, "frame")


def verdict_lines(
    rows: list[dict], costs: dict[str, dict], light: LightRuns, reference: str = ms.MODEL
) -> list[str]:
    """One line a paired row, then the one-line answer for the same-seconds run: a finding only
    where an interval excludes zero, with the measured cost beside it."""
    lines = []
    for r in rows:
        lines.append(
            f"{r['model']} vs {reference} on {r['group']} ({_frames(r['frames'])}): "
            f"{r['psnr_diff']:+.3f} dB {_interval(r['low'], r['high'])}, SSIM "
            f"{r['ssim_diff']:+.4f}, better on {r['frames_better']} of {r['frames']} frames: "
            f"{r['verdict']}."
        )
    timed = [r for r in rows if r["model"] == light.time_label]
    better = [r["group"] for r in timed if r["verdict"] == "better"]
    worse = [r["group"] for r in timed if r["verdict"] == "worse"]

    def groups(names):
        if len(names) == len(timed) > 1:
            return "every test group"
        return " and ".join(f"'{g}'" for g in names)

    if better and not worse:
        pick = f"{light.model_name}: better on {groups(better)}, worse on none"
    elif worse and not better:
        pick = f"{reference}: {light.model_name} is worse on {groups(worse)}, better on none"
    elif better and worse:
        pick = (
            f"it depends on the data: {light.model_name} is better on {groups(better)} and "
            f"worse on {groups(worse)}"
        )
    elif all(r["verdict"] == "too few frames for an interval" for r in timed):
        pick = "no finding: too few frames for an interval"
    elif all(r["verdict"] == "not told apart" for r in timed):
        pick = "no finding: every interval includes zero, the two are not told apart here"
    else:
        pick = "no finding: no interval excludes zero (too few frames for one on some groups)"
    ours, theirs = costs.get(light.time_label), costs.get(reference)
    cost = ""
    if ours and theirs:
        h, w = ours["frame_size"]
        cost = (
            f" Cost at {w}x{h}: {ours['gflop_per_frame']:.0f} against "
            f"{theirs['gflop_per_frame']:.0f} GFLOP, {ours['frame_median_s']:.2f} against "
            f"{theirs['frame_median_s']:.2f} s a frame (measured medians, no interval)."
        )
    lines.append(f"At the same training seconds, which to use on a CPU: {pick}.{cost}")
    return lines
