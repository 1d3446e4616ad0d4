"""Chapter 05's question for a reader: which network should I use on a CPU today? NAFNet-small (a
current light design, ``models/nafnet.py``) beside SRNDeblur_reds, trained on the same patches
with the same recipe, at the same budget, and scored on the same test frames.

    light = train_light(study, results[MAIN])     # same steps, then same training seconds
    models.update(light.models); results.update(light.results)
    evaluation = motion_study.evaluate(study, models)
    costs = measure_costs(study, evaluation, models, results, [MAIN, *light.models])
    cost_table(study, costs, name="srndeblur_reds_nafnet_cost")
    paired = paired_rows(study, evaluation, light, MAIN)
    paired_table(study, paired, name="srndeblur_reds_nafnet_paired")
    verdict_lines(paired, costs, light, MAIN)

**The budget rule.** The light network trains twice, on the patch stream SRNDeblur_reds trained
on (same seed, sampler, flips and rotations, batch, validation patches) and with its recipe:

- *same steps*: the profile's epochs, so the same optimiser steps and the same patches;
- *same seconds*: as many epochs (of the same length: the first epochs are the same patches) as
  fit in SRNDeblur_reds's training seconds. Both rates are measured: SRNDeblur_reds's steady
  seconds an epoch (``steady_epoch_seconds``: the median of its epochs after the first, which also
  traces and compiles the step) times its epochs is the budget; the *same steps* run's steady
  seconds an epoch divide it, rounded down (never more time than the reference had). The cosine
  schedule spans the run, so its length is fixed before it starts. An epoch includes the
  validation pass, for both networks. A profile may cap the epochs (``light_epoch_cap``: the smoke
  profile trains one run); when the rule gives the profile's epochs, the two runs are one.

Seconds a frame are the median of the evaluation's own calls on the most common frame size, after
each network's first call at that size (which traces its predict function): padding, network and
crop, as ``deblurlab.deblur`` pays them. FLOPs are ``deblurlab.perf.flops.count`` at that size,
padded to each network's multiple. A difference is called a finding only when its paired 95%
interval excludes zero.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from . import motion_study as ms
from . import stats
from .inference import full_resolution_model, network_multiple
from .motion_results import test_groups
from .perf.flops import METHOD as FLOP_METHOD
from .perf.flops import count
from .provenance import footnote
from .results import Evaluation
from .tables import write_table
from .train import TrainResult

LIGHT_MODEL = "nafnet_small"
SAME_STEPS = "same steps"
SAME_SECONDS = "same seconds"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def light_label(budget: str, model_name: str = LIGHT_MODEL) -> str:
    """The row label of the light network trained at ``budget`` (``SAME_STEPS`` or
    ``SAME_SECONDS``)."""
    return f"{ms.label(model_name)}, {budget}"


# --- the budget ------------------------------------------------------------------------------


def steady_epoch_seconds(result: TrainResult) -> float:
    """Seconds of one training epoch once the step is compiled: the median of the epochs after
    the first (which also traces and compiles), or the first when it is the only one."""
    seconds = np.asarray(result.history["seconds"], np.float64)
    if not len(seconds):
        raise ValueError(f"{result.run_dir}: no epoch recorded, no training time to match")
    return float(np.median(seconds[1:]) if len(seconds) > 1 else seconds[0])


def time_matched_epochs(reference: TrainResult, light: TrainResult, cap: int | None = None) -> dict:
    """The epochs of the light network that fit in ``reference``'s training seconds, from both
    runs' steady seconds an epoch (``light``: the light network's same-steps run), rounded down,
    at least 1, at most ``cap``. Returns the derivation: the rates, the budget, the epochs."""
    reference_s, light_s = steady_epoch_seconds(reference), steady_epoch_seconds(light)
    budget = reference.epochs_run * reference_s
    fitting = max(1, math.floor(budget / light_s))
    epochs = fitting if cap is None else min(fitting, cap)
    return {
        "reference_epochs": int(reference.epochs_run),
        "reference_epoch_s": reference_s,
        "budget_s": budget,
        "light_epoch_s": light_s,
        "speed_ratio": reference_s / light_s,
        "fitting_epochs": int(fitting),
        "cap": cap,
        "epochs": int(epochs),
        "predicted_s": epochs * light_s,
    }


@dataclass
class LightRuns:
    """The light network's runs: ``models``/``results`` by row label, each run's ``budgets``
    record, the label of the same-steps and of the same-seconds run (the same label when the time
    rule gave the profile's epochs) and the time rule's derivation."""

    model_name: str
    models: dict[str, keras.Model]
    results: dict[str, TrainResult]
    budgets: dict[str, dict]
    step_label: str
    time_label: str
    derivation: dict = field(default_factory=dict)

    def describe(self) -> list[str]:
        """One line a run, then the time rule's derivation."""
        d = self.derivation
        lines = [
            f"{label}: {_count(b['epochs'], 'epoch')}, {b['steps']} steps, {b['patches']} patches, "
            f"{b['train_s']:.0f} s of training ("
            + (
                f"{b['epoch_s']:.1f} s an epoch once compiled)"
                if b["epochs"] > 1
                else "its only epoch, compiling included)"
            )
            for label, b in self.budgets.items()
        ]
        lines.append(
            f"same seconds: {_count(d['reference_epochs'], 'epoch')} x "
            f"{d['reference_epoch_s']:.1f} s = {d['budget_s']:.0f} s of {ms.MODEL}; "
            f"{self.model_name} trains an epoch in "
            f"{d['light_epoch_s']:.1f} s ({d['speed_ratio']:.1f}x as fast), so "
            f"{_count(d['fitting_epochs'], 'epoch')} "
            + ("fit" if d["fitting_epochs"] != 1 else "fits")
            + (
                f", capped at {d['cap']} by the profile"
                if d["epochs"] < d["fitting_epochs"]
                else ""
            )
            + (
                f" -> the same run as {SAME_STEPS}"
                if self.time_label == self.step_label
                else f" -> {_count(d['epochs'], 'epoch')}, predicted {d['predicted_s']:.0f} s"
            )
        )
        return lines

    def record(self) -> dict:
        """The runs' budgets and the derivation, for the results JSON."""
        return {
            "model": self.model_name,
            "step_label": self.step_label,
            "time_label": self.time_label,
            "budgets": self.budgets,
            "derivation": self.derivation,
        }


def _budget(study: ms.MotionStudy, rule: str, result: TrainResult) -> dict:
    steps = ms.steps_per_epoch(study) * result.epochs_run
    return {
        "rule": rule,
        "epochs": int(result.epochs_run),
        "steps": int(steps),
        "patches": int(steps * study.plan.batch_size),
        "train_s": float(result.train_seconds),
        "epoch_s": steady_epoch_seconds(result),
        "run": result.run_dir.name,
    }


def train_light(
    study: ms.MotionStudy,
    reference: TrainResult,
    model_name: str = LIGHT_MODEL,
    *,
    seed: int = 0,
) -> LightRuns:
    """Train ``model_name`` for SRNDeblur_reds's steps (``reference``: its run with the chapter's
    recipe), then for its training seconds (see the module docstring); load finished runs."""
    models, results = {}, {}
    step_label = light_label(SAME_STEPS, model_name)
    models[step_label], results[step_label] = ms.train_model(study, model_name, seed=seed)
    derivation = time_matched_epochs(reference, results[step_label], cap=study.plan.light_epoch_cap)
    time_label = step_label
    if derivation["epochs"] != results[step_label].epochs_run:
        time_label = light_label(SAME_SECONDS, model_name)
        models[time_label], results[time_label] = ms.train_model(
            study,
            model_name,
            seed=seed,
            epochs=derivation["epochs"],
            run_extra=f"-e{derivation['epochs']}",
        )
    budgets = {label: _budget(study, SAME_STEPS, r) for label, r in results.items()}
    budgets[time_label]["rule"] = (
        SAME_SECONDS if time_label != step_label else f"{SAME_STEPS} = {SAME_SECONDS}"
    )
    return LightRuns(model_name, models, results, budgets, step_label, time_label, derivation)


# --- cost ------------------------------------------------------------------------------------


def frame_seconds(evaluation: Evaluation, name: str) -> dict:
    """Seconds a frame of ``name`` from the evaluation's calls: the median over the frames of the
    most common size, leaving out each call that followed a call at another size (or none: the
    first), which traced the network's predict function. Returns ``size`` (height, width),
    ``median_s``, ``calls`` used and ``includes_tracing`` (True when no other call was left)."""
    calls, sizes = evaluation.call_seconds.get(name), evaluation.sizes
    if not calls or len(calls) != len(sizes):
        raise ValueError(f"{name}: the evaluation did not time its calls")
    size = Counter(sizes).most_common(1)[0][0]
    at_size = [i for i, s in enumerate(sizes) if s == size]
    warm = [i for i in at_size if i > 0 and sizes[i - 1] == size]
    used = warm or at_size
    return {
        "size": [int(size[0]), int(size[1])],
        "median_s": float(np.median([calls[i] for i in used])),
        "calls": len(used),
        "includes_tracing": not warm,
    }


def gflops_per_frame(model: keras.Model, size) -> float:
    """Forward GFLOP of ``model`` (a registered network) on one frame of ``size`` (height,
    width), padded to the network's multiple as inference pads it."""
    net = full_resolution_model(model, ms._model_name(model))
    multiple = network_multiple(net)
    padded = tuple(-(-int(s) // multiple) * multiple for s in size)
    return count(net, (*padded, 3))["flops"] / 1e9


def measure_costs(
    study: ms.MotionStudy,
    evaluation: Evaluation,
    models: dict[str, keras.Model],
    results: dict[str, TrainResult],
    names,
) -> dict[str, dict]:
    """For each of ``names`` (row labels): parameters, GFLOP and seconds a frame (at the
    evaluation's most common frame size), and its training (steps, patches, seconds)."""
    costs, flops = {}, {}  # FLOPs by (architecture, size): runs of one network share them
    for name in names:
        timing = frame_seconds(evaluation, name)
        key = (ms._model_name(models[name]), tuple(timing["size"]))
        if key not in flops:
            flops[key] = gflops_per_frame(models[name], timing["size"])
        result = results.get(name)
        steps = ms.steps_per_epoch(study) * result.epochs_run if result else None
        costs[name] = {
            "params": int(models[name].count_params()),
            "gflop_per_frame": flops[key],
            **{f"frame_{k}": v for k, v in timing.items()},
            "train_steps": steps,
            "train_patches": steps * study.plan.batch_size if steps else None,
            "train_s": float(result.train_seconds) if result else None,
            "train_epoch_s": steady_epoch_seconds(result) if result else None,
        }
    return costs


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
    return _count(n, "frame")


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
