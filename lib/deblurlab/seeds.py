"""Seed-to-seed spread, and float32 against mixed bfloat16, on one model at one profile.

    python -m deblurlab.seeds  # ResUNet1, default profile, seeds 0-2, both precisions
    python -m deblurlab.seeds --model caessc_d30_f64  # the check of another model
    python -m deblurlab.seeds --precisions float32  # the seed spread alone

Each (seed, precision) trains its own resumable run
(``runs/cifar-<model>-<profile>[-seedN][-<precision>]``; seed 0 in float32 is chapter 1's own
run, so it is reused) and is scored on the profile's test images. The record,
``lib/deblurlab/tuning/<machine key>.<model>.seeds.json`` (kept in git beside the machine's tuning
record: it costs CPU minutes a run), gives every run's scores with their bootstrap intervals, the
spread across seeds, and the bf16-minus-float32 difference of the seed means, with the verdict the
speed chapter prints. Mixed bfloat16 becomes a model's default on a machine only where that
model's own check kept its quality within the float32 seed-to-seed spread (``compute.cpu_choice``).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from .core import stats
from .runtime import compute
from .runtime.provenance import git_commit, machine, today
from .studies.cifar.results import summarize_ci
from .studies.cifar.study import evaluate_models, prepare_study
from .studies.cifar.study import train_model as train_cifar_model

METRICS = ("mse", "psnr_mean_mse", "ssim")


def record_path(model_name: str, key: str | None = None):
    """The seed/precision record file of ``model_name`` on machine ``key`` (default: this
    machine's)."""
    return compute.TUNING_DIR / f"{key or compute.machine_key()}.{model_name}.seeds.json"


def spread(runs: list[dict], precision: str) -> dict:
    """Mean, standard deviation and range across seeds of each metric, for one precision."""
    chosen = [r for r in runs if r["precision"] == precision]
    out = {"seeds": [r["seed"] for r in chosen]}
    for metric in METRICS:
        values = np.array([r["test"][metric] for r in chosen])
        out[metric] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "range": float(values.max() - values.min()),
            "values": values.tolist(),
        }
    out["bootstrap_half_width"] = {
        m: float(np.mean([(r["test"][f"{m}_ci"][1] - r["test"][f"{m}_ci"][0]) / 2 for r in chosen]))
        for m in METRICS
    }
    return out


def precision_verdict(fp32: dict, other: dict) -> dict:
    """Per metric: the difference of seed means (other - float32) and whether it stays within the
    float32 seed-to-seed range (for MSE a drop in quality is a rise; for PSNR and SSIM a fall)."""
    verdicts = {}
    for metric in METRICS:
        diff = other[metric]["mean"] - fp32[metric]["mean"]
        worse = diff if metric == "mse" else -diff
        verdicts[metric] = {
            "difference": diff,
            "seed_range": fp32[metric]["range"],
            "within_spread": bool(worse <= fp32[metric]["range"]),
        }
    return {"metrics": verdicts, "quality_kept": all(v["within_spread"] for v in verdicts.values())}


def run(
    model_name: str = "resunet1",
    profile: str = "default",
    seeds=(0, 1, 2),
    precisions=("float32", "mixed_bfloat16"),
    data_dir=None,
) -> dict:
    """Train and score ``model_name`` for every seed and precision at ``profile``; returns the
    record (runs, spread per precision and the precision check)."""
    study = prepare_study(profile, data_dir)
    runs = []
    for precision in precisions:
        for seed in seeds:
            print(f"== {model_name}, seed {seed}, {precision}", flush=True)
            model, result = train_cifar_model(
                study,
                model_name,
                seed=seed,
                precision=None if precision == "float32" else precision,
            )
            scores = evaluate_models(study, {model_name: model})[model_name]
            runs.append(
                {
                    "seed": seed,
                    "precision": precision,
                    "epochs": result.epochs_run,
                    "train_seconds": result.train_seconds,
                    "test": summarize_ci(scores),
                }
            )
    record = {
        "model": model_name,
        "profile": profile,
        "data": study.describe(),
        "n_test": len(study.splits.test),
        "machine": machine(),
        "key": compute.machine_key(),
        "date": today(),
        "commit": git_commit(),
        "method": stats.METHOD,
        "runs": runs,
        "spread": {p: spread(runs, p) for p in precisions},
    }
    if "float32" in precisions:
        for other in precisions:
            if other != "float32":
                record.setdefault("precision_check", {})[other] = precision_verdict(
                    record["spread"]["float32"], record["spread"][other]
                )
    return record


def main(argv=None) -> int:
    """The command line (``python -m deblurlab.seeds``); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.seeds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="resunet1")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--out",
        default=None,
        help="record path (default: lib/deblurlab/tuning/<machine>.<model>.seeds.json)",
    )
    args = parser.parse_args(argv)
    record = run(
        args.model,
        args.profile,
        tuple(int(s) for s in args.seeds.split(",")),
        tuple(args.precisions.split(",")),
        args.data_dir,
    )
    path = args.out or record_path(args.model)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        json.dump(record, handle, indent=1)
    os.replace(tmp, path)
    for precision, s in record["spread"].items():
        print(
            f"{precision}: MSE {s['mse']['mean']:.5f} "
            f"(seed sd {s['mse']['std']:.5f}, range {s['mse']['range']:.5f}; "
            f"bootstrap half-width {s['bootstrap_half_width']['mse']:.5f})"
        )
    for precision, check in record.get("precision_check", {}).items():
        print(
            f"{precision} vs float32: quality "
            f"{'kept' if check['quality_kept'] else 'NOT kept'} within the seed spread"
        )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
