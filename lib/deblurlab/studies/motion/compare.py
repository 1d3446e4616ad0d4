"""Chapter 05's question for a reader: which network should I use on a CPU today? NAFNet-small (a
current light design, ``models/nafnet.py``) beside SRNDeblur_reds, trained on the same patches
with the same recipe, at the same budget, and scored on the same test frames.

    light = train_light(study, results[MAIN])     # same steps, then same training seconds
    models.update(light.models); results.update(light.results)
    evaluation = motion_study.evaluate(study, models)
    costs = measure_costs(study, evaluation, models, results, [MAIN, *light.models])
    # then the tables and verdicts of deblurlab.studies.motion.compare_results:
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

from ...core.results import Evaluation
from ...perf.flops import count
from ...training.inference import full_resolution_model, network_multiple
from ...training.train import TrainResult
from . import study as ms

LIGHT_MODEL = "nafnet_small"
SAME_STEPS = "same steps"
SAME_SECONDS = "same seconds"


def counted(n: int, noun: str) -> str:
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
            f"{label}: {counted(b['epochs'], 'epoch')}, {b['steps']} steps, "
            f"{b['patches']} patches, "
            f"{b['train_s']:.0f} s of training ("
            + (
                f"{b['epoch_s']:.1f} s an epoch once compiled)"
                if b["epochs"] > 1
                else "its only epoch, compiling included)"
            )
            for label, b in self.budgets.items()
        ]
        lines.append(
            f"same seconds: {counted(d['reference_epochs'], 'epoch')} x "
            f"{d['reference_epoch_s']:.1f} s = {d['budget_s']:.0f} s of {ms.MODEL}; "
            f"{self.model_name} trains an epoch in "
            f"{d['light_epoch_s']:.1f} s ({d['speed_ratio']:.1f}x as fast), so "
            f"{counted(d['fitting_epochs'], 'epoch')} "
            + ("fit" if d["fitting_epochs"] != 1 else "fits")
            + (
                f", capped at {d['cap']} by the profile"
                if d["epochs"] < d["fitting_epochs"]
                else ""
            )
            + (
                f" -> the same run as {SAME_STEPS}"
                if self.time_label == self.step_label
                else f" -> {counted(d['epochs'], 'epoch')}, predicted {d['predicted_s']:.0f} s"
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
