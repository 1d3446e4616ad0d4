"""Which training recipe the motion chapter uses, measured: each recipe of
``profiles.MOTION_RECIPES`` trains SRNDeblur_reds for the default profile's steps on the same
patches, and restores the same whole test frames; the gain over the blurred input, with its paired
95% interval, is recorded per test group.

    python -m deblurlab.motion_recipes        # every recipe -> records/motion_recipes.json
    python -m deblurlab.motion_recipes --recipes report,mse-cosine-flips --out PATH

The chapter's recipe (``profiles.MOTION_RECIPE``) is the one whose gains are above zero on every
test group; the record keeps the machine, the commit and the minutes each run took.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .runtime.provenance import git_commit, machine, today
from .studies.motion import results as mr
from .studies.motion import study as ms
from .training.profiles import MOTION_RECIPES

RECORD = Path(__file__).with_name("records") / "motion_recipes.json"


def measure(recipe: str, profile: str = "default", data_dir=None) -> dict:
    """Train with ``recipe`` at ``profile`` and score the test frames: per test group, the PSNR
    and SSIM gains over the blurred input, the PSNR gain's paired interval, frames improved."""
    study = ms.prepare_study(profile, data_dir)
    model, result = ms.train_model(study, recipe=recipe)
    label = ms.label(ms.MODEL, recipe=recipe)
    evaluation = ms.evaluate(study, {label: model}, verbose=False)
    groups = {}
    for group, positions in mr.test_groups(study, evaluation).items():
        gain = mr.gains_over_input(evaluation, positions)[label]
        groups[group] = {
            k: gain[k]
            for k in ("PSNR gain dB", "PSNR gain interval", "SSIM gain", "frames improved")
        } | {"frames": gain["frames"]}
    return {
        "recipe": recipe,
        "settings": MOTION_RECIPES[recipe],
        "profile": profile,
        "data": study.data.source,
        "steps": ms.steps_per_epoch(study) * result.epochs_run,
        "patch_size": study.plan.patch_size,
        "batch_size": study.plan.batch_size,
        "train_seconds": result.train_seconds,
        "groups": groups,
    }


def _cells(run: dict) -> str:
    return "; ".join(
        f"{group}: {v['PSNR gain dB']:+.3f} dB [{v['PSNR gain interval'][0]:+.3f}, "
        f"{v['PSNR gain interval'][1]:+.3f}]"
        for group, v in run["groups"].items()
    )


def summary(path: Path = RECORD) -> str:
    """The kept record in a few lines: each recipe's PSNR gains with their intervals, per test
    group, and where and when they were measured; or how to measure them."""
    if not Path(path).exists():
        return f"no recipe record at {path}: python -m deblurlab.motion_recipes measures one"
    record = json.loads(Path(path).read_text())
    runs = record["runs"]
    head = (
        f"recipes measured {record['date']} on {record['machine']} (commit {record['commit']}), "
        f"{runs[0]['steps']} steps of {runs[0]['batch_size']} patches of {runs[0]['patch_size']}"
        f" px each, PSNR gain over the blurred input [paired 95% interval]:"
    )
    return "\n".join([head, *(f"  {run['recipe']}: {_cells(run)}" for run in runs)])


def main(argv=None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m deblurlab.motion_recipes", description=__doc__)
    parser.add_argument("--recipes", default=",".join(MOTION_RECIPES))
    parser.add_argument("--profile", default="default")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=RECORD)
    args = parser.parse_args(argv)
    runs = [measure(r.strip(), args.profile, args.data_dir) for r in args.recipes.split(",")]
    record = {"machine": machine(), "commit": git_commit(), "date": today(), "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(summary(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
