"""Whole-frame inference of the motion model, path by path: ``python -m deblurlab.perf --frame``.

Restores one 1280x720 frame (``engines.frame``: the first blurred frame of the GoPro or REDS
sample beside the checkout) with ``srndeblur_reds`` (Keras' seeded initialisation: the speed does
not depend on the weights) through each of ``VARIANTS``: the path ``deblur_image`` took before
(``previous_deblur_image``, the reference), the one it takes now, the eager call, XLA, tiles,
onnxruntime, thread settings and a bfloat16 policy.

Variants that share the process's settings live in one worker process, each with its own copy
of the model; a variant with other thread settings or another dtype policy gets its own. Every
worker builds its variants and restores the frame once each (``first_s``: tracing, compilation,
the first run). Then, round by round, every variant restores the frame once right next to a run of
the reference (the variant first in odd rounds, the reference first in even ones; the variants'
order rotates between rounds), one run at a time, and the fp32 matmul peak is timed once a round.
Each variant's ratio is taken to the reference's run next to it, so a change in the machine's
load (other processes) mostly cancels out; the median over rounds is reported. A second
scenario, ``alternating``, restores a portrait frame (the landscape one transposed) and then the
landscape one, as a folder of mixed photos does: the reference traces again at each change of
size.

A variant's output is compared with the reference's (largest absolute difference on the real
frame); only a variant within ``TOLERANCE`` may be the default. The record goes to
``tuning/<machine key>.frame.json`` beside the tuning records (``--out`` to choose).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .frame_worker import ALTERNATING, MARK, MODEL, PEAK_N, VARIANTS

FRAME_SIZE = (720, 1280)
ROUNDS = 5
QUICK_SIZE = (64, 96)
QUICK_ROUNDS = 2
# Outputs this close to the reference's count as the same (images in [0, 1]; 1/40 of an 8-bit
# level). Float32 paths that only sum in another order stay far below it.
TOLERANCE = 1e-4
REFERENCE = "before"
DEFAULT = "default"  # the variant that is inference.deblur_image as shipped

QUICK_VARIANTS = ("before", "default", "eager", "one_thread")


class FrameBenchError(RuntimeError):
    """A worker failed; the message holds the end of its error output."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, group: str, variants: list[str], settings: dict, env: dict, tmp: Path):
        self.group, self.variants = group, variants
        self.log = open(tmp / f"{group}.log", "w+")
        command = [sys.executable, "-m", "deblurlab.perf", "--frame-worker"]
        payload = json.dumps({**settings, "variants": variants})
        self.proc = subprocess.Popen(
            [*command, payload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        )

    def read(self) -> dict:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.log.seek(0)
                tail = " | ".join(self.log.read().strip().splitlines()[-6:])
                raise FrameBenchError(f"worker {self.group} exited ({self.proc.poll()}): {tail}")
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])

    def ask(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------------------------- the run


def _loads() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def eligible_variants(backend: str, variants=None) -> list[str]:
    """The variants that run on ``backend`` (XLA and TensorFlow's thread settings need
    TensorFlow), in ``VARIANTS`` order; ``variants`` narrows the list."""
    chosen = list(VARIANTS) if variants is None else list(variants)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--frame: unknown variant(s) {', '.join(unknown)}; see {__name__}")
    return [v for v in chosen if VARIANTS[v].get("backend", backend) == backend]


def run_frame(variants=None, rounds: int = ROUNDS, size=FRAME_SIZE, peak_n: int = PEAK_N) -> dict:
    """Every variant on one frame of ``size``, ``rounds`` interleaved rounds (see the module
    docstring). Returns the record."""
    from ..core.host import cpu_features, cpu_name
    from ..runtime.provenance import git_commit, today
    from .engines import frame
    from .machine import cpu_flags

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    labels = eligible_variants(backend, variants)
    if REFERENCE not in labels:
        labels.insert(0, REFERENCE)
    where, image = frame(size)
    loads = {"start": _loads()}
    start = time.perf_counter()
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(VARIANTS[label]["group"], []).append(label)
    workers: dict[str, _Worker] = {}
    with tempfile.TemporaryDirectory(prefix="deblurlab-frame-") as tmp:
        tmp = Path(tmp)
        np.save(tmp / "frame.npy", image)
        settings = {"frame": str(tmp / "frame.npy"), "outputs": str(tmp), "peak_n": peak_n}
        try:
            ready = {}
            for group, members in groups.items():
                print(f"  worker {group}: {', '.join(members)} (building, warming up) ...")
                env = {k: v for m in members for k, v in VARIANTS[m].get("env", {}).items()}
                workers[group] = _Worker(group, members, settings, env, tmp)
                ready[group] = workers[group].read()
            main = workers[VARIANTS[REFERENCE]["group"]]
            flops = main.ask(flops=True)["flops"]
            pairs = [(v, "frame") for v in labels if v != REFERENCE] + [
                (v, "alternating") for v in ALTERNATING if v in labels and v != REFERENCE
            ]
            seconds = {(v, sc): [] for v in labels for sc in ("frame", "alternating")}
            reference = {pair: [] for pair in pairs}  # the reference's time next to each run
            peaks = []

            def timed(label, scenario):
                group = VARIANTS[label]["group"]
                took = workers[group].ask(variant=label, scenario=scenario)["s"]
                seconds[(label, scenario)].append(took)
                return took

            for r in range(rounds):
                shift = r % len(pairs)
                for label, scenario in pairs[shift:] + pairs[:shift]:
                    if r % 2:  # the variant first in odd rounds, the reference first in even ones
                        took = timed(label, scenario)
                        reference[(label, scenario)].append(timed(REFERENCE, scenario))
                    else:
                        reference[(label, scenario)].append(timed(REFERENCE, scenario))
                        took = timed(label, scenario)
                    print(
                        f"  round {r + 1}/{rounds}: {label}"
                        f"{'' if scenario == 'frame' else ' (alternating)'} {took:.2f} s, "
                        f"{REFERENCE} {reference[(label, scenario)][-1]:.2f} s",
                        flush=True,
                    )
                peaks.append(main.ask(peak=True)["flops_per_s"])
                loads.setdefault("rounds", []).append(_loads())
            outputs = {label: np.load(tmp / f"{label}.npy") for label in labels}
        finally:
            for worker in workers.values():
                worker.close()
    loads["end"] = _loads()
    versions = next(iter(ready.values()))["versions"]
    record = {
        "schema": "deblurlab.bench/1",
        "kind": "frame inference",
        "device": "cpu",
        "backend": backend,
        "machine": f"{cpu_name()} ({cpu_features()}), {os.cpu_count()} cores",
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        **versions,
        "onednn": os.environ.get(
            "TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default: on for x86 CPUs)"
        ),
        "date": today(),
        "commit": git_commit(),
        "model": f"{MODEL}, Keras' initialisation with seed 0 (speed does not depend on weights)",
        "frame": {"source": where, "shape": list(image.shape)},
        "settings": {"rounds": rounds, "tolerance": TOLERANCE, "peak_n": peak_n},
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "load_average": loads,
        "forward_flops": flops,
        "workers": {
            g: {"variants": groups[g], "peak_rss_mb": ready[g]["peak_rss_mb"]} for g in groups
        },
        "fp32_matmul_peak_flops_per_s": peaks,
        "variants": {},
        "notes": [
            "Timings on a shared machine are noisy; each ratio is taken to the reference's run "
            "next to it. "
            "Compare runs made on a quiet one."
        ],
    }
    record["variants"] = summarize(labels, seconds, reference, peaks, ready, groups, outputs, flops)
    record["choice"] = choose(record["variants"])
    record["seconds"] = time.perf_counter() - start
    return record


def summarize(labels, seconds, reference, peaks, ready, groups, outputs, flops) -> dict:
    """Per variant: its timings and their median, the ratio of each to the reference's run next
    to it (new/old: below 1 is faster) and their median, the share of the fp32 matmul peak timed
    in the same round, and the largest difference of its output from the reference's."""
    group_of = {label: g for g, members in groups.items() for label in members}
    out = {}
    for label in labels:
        times = seconds[(label, "frame")]
        base = reference.get((label, "frame"), times)
        ratios = [t / b for t, b in zip(times, base)]
        rounds = len(peaks)
        per_round = [times[i * len(times) // rounds] for i in range(rounds)] if times else []
        diff = float(np.abs(outputs[label].astype(np.float64) - outputs[REFERENCE]).max())
        row = {
            "what": VARIANTS[label]["text"],
            "worker": group_of[label],
            "setup_s": ready[group_of[label]]["ready"][label]["setup_s"],
            "first_s": ready[group_of[label]]["ready"][label]["first_s"],
            "seconds": times,
            "median_s": statistics.median(times),
            "min_s": min(times),
            "ratio_to_before": ratios,
            "median_ratio_to_before": statistics.median(ratios),
            "share_of_fp32_peak": statistics.median(
                [flops / t / p for t, p in zip(per_round, peaks)]
            ),
            "max_abs_diff_vs_before": diff,
            "within_tolerance": diff <= TOLERANCE,
        }
        if label == REFERENCE and seconds[(label, "alternating")]:
            row["alternating_median_s"] = statistics.median(seconds[(label, "alternating")])
            row["alternating_median_ratio_to_before"] = 1.0
        elif seconds[(label, "alternating")]:
            pairs = seconds[(label, "alternating")]
            row["alternating_seconds"] = pairs
            row["alternating_median_s"] = statistics.median(pairs)
            row["alternating_before_seconds"] = reference[(label, "alternating")]
            row["alternating_median_ratio_to_before"] = statistics.median(
                [t / b for t, b in zip(pairs, reference[(label, "alternating")])]
            )
        out[label] = row
    return out


def choose(variants: dict) -> dict:
    """The fastest variant within tolerance of the reference (lowest median ratio), and whether
    it is the shipped default."""
    within = {k: v for k, v in variants.items() if v["within_tolerance"]}
    fastest = min(within, key=lambda k: within[k]["median_ratio_to_before"])
    return {
        "fastest_within_tolerance": fastest,
        "default": DEFAULT if DEFAULT in variants else None,
        "rule": "among the variants whose output is within tolerance of the reference, the "
        "lowest median ratio to it on the whole frame; the alternating scenario adds the cost "
        "of a change of size",
    }


def format_frame(record: dict) -> str:
    """The record as a plain-text table."""
    h, w = record["frame"]["shape"][:2]
    lines = [
        f"Whole-frame seconds, {record['model'].split(',')[0]} on one {w}x{h} frame "
        f"({record['frame']['source']}); {record['settings']['rounds']} rounds of pairs, "
        f"{record['machine']}, load average {record['load_average']['start']} -> "
        f"{record['load_average']['end']}",
        f"{'variant':<16}{'median s':>9}{'first s':>9}{'new/before':>11}{'of peak':>9}"
        f"{'max |diff|':>12}{'alt. pair s':>12}{'alt. new/before':>16}",
    ]
    for label, row in record["variants"].items():
        alt = row.get("alternating_median_s")
        alt_ratio = row.get("alternating_median_ratio_to_before")
        lines.append(
            f"{label:<16}{row['median_s']:>9.2f}{row['first_s']:>9.2f}"
            f"{row['median_ratio_to_before']:>11.3f}{row['share_of_fp32_peak']:>9.0%}"
            f"{row['max_abs_diff_vs_before']:>12.1e}"
            f"{'' if alt is None else f'{alt:.2f}':>12}"
            f"{'' if alt_ratio is None else f'{alt_ratio:.3f}':>16}"
        )
    choice = record["choice"]
    lines.append(
        f"new/before: median over rounds of the ratio to the reference's run next to it (< 1: "
        f"faster); of peak: forward "
        f"FLOPs / seconds / the round's fp32 matmul peak; fastest within tolerance "
        f"({record['settings']['tolerance']:g}): {choice['fastest_within_tolerance']}; "
        f"shipped default: {choice['default']}"
    )
    return "\n".join(lines)


def default_out(quick: bool = False) -> Path:
    """``tuning/<machine key>.frame.json`` (``report/results/bench_frame_quick.json`` for
    ``--quick``, which is no evidence)."""
    from ..core.paths import results_dir
    from ..runtime import compute

    if quick:
        return results_dir() / "bench_frame_quick.json"
    return compute.TUNING_DIR / f"{compute.machine_key()}.frame.json"


def main(args) -> dict:
    """``python -m deblurlab.perf --frame`` (parsed ``args``): run, print, write."""
    from . import records

    quick = args.quick
    rounds = args.repeats or (QUICK_ROUNDS if quick else ROUNDS)
    variants = (
        [v.strip() for v in args.variants.split(",") if v.strip()]
        if args.variants
        else (QUICK_VARIANTS if quick else None)
    )
    size = QUICK_SIZE if quick else FRAME_SIZE
    print(f"deblurlab.perf --frame: {MODEL}, {size[1]}x{size[0]}, {rounds} rounds", flush=True)
    record = run_frame(variants, rounds, size, peak_n=512 if quick else PEAK_N)
    record["settings"]["quick"] = quick
    out = Path(args.out) if args.out else default_out(quick)
    records.write(record, out)
    print()
    print(format_frame(record))
    print(f"\nwrote {out} ({record['seconds']:.0f} s)")
    return record
