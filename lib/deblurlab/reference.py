"""Reference runs: train the study's models to convergence on the data at hand, without notebooks.

    python -m deblurlab.reference --models resunet1,resunet3 --hours 2
    python -m deblurlab.reference                      # every model, in order of cost
    python -m deblurlab.reference --models srndeblur_reds --motion-dir PATH   # the motion model
    python -m deblurlab.reference --status             # what is shipped, and how far runs got

A reference run is the ``full`` profile's training (for CIFAR-10: all the training images less 10%
for validation, the report's learning rate and patience, early stopping, batch 32, at most 70
epochs) in the run folder that a notebook at ``profile="full"`` also uses
(``runs/cifar-<model>-full``), so either can continue what the other began. It resumes from its
checkpoints after an interruption or, on a machine without them, from the shipped weights of a
run recorded as in progress (a fresh optimiser, said in the record: ``--export-unfinished`` ships
such weights when ``--hours`` cuts a run), shows each model's progress with an ETA, and
``--hours`` stops it at the first epoch boundary past which the next epoch would not fit. When a
model finishes (early stopping or its epoch limit), its best weights and record go to ``zoo/`` (or
``$DEBLURLAB_ZOO``; see ``deblurlab.training.zoo``). ``--profile smoke`` runs the same path in
seconds (tests, the GPU script's CPU check).

In a cluster (``deblurlab.runtime.cluster``; ``tools/slurm_train.sh``, ``tools/ssh_train.sh`` or
``python -m deblurlab.runtime.launch`` start one worker a node or process) every worker runs this
same command; they train together, and only the chief (worker 0) writes checkpoints and the zoo.

Test images are never trained or validated on: at every profile, the CIFAR-10 test split is the
start of one fixed permutation and this profile's is the largest (``CifarPlan.min_test``); the
motion study's test frames are a separate split of the frames.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import keras

from .core.metrics import summarize
from .models import build_model, get_spec, list_models
from .runtime import cluster, collectives
from .runtime.provenance import git_commit, machine, today
from .studies.cifar import study as cifar_study
from .studies.motion import study as motion_study
from .training import zoo
from .training.checkpoints import last_setup
from .training.inference import full_resolution_model

PROFILE = "full"
# Cheapest first, so that the runs that can finish in a session do (seconds per epoch on 2 cores).
ORDER = [
    "resunet1",
    "srndeblur_cifar",
    "srndeblur_cifar_lstm",
    "resunet3",
    "eddensenet",
    "caessc_d22_f128_half",
    "caessc_d22_f128_half_no_sigmoid",
    "caessc_d30_f64",
    "srndeblur_reds",
]
CHECK_SLICE = 64  # test images whose scores every record keeps, re-measured by the tests
STUDIES = {"cifar10": cifar_study, "motion": motion_study}
# The code that trains is the code this process started with, not what the checkout holds later.
STARTED_AT_COMMIT: str | None = None


class Deadline(keras.callbacks.Callback):
    """Stop at an epoch boundary when the next epoch (as long as the slowest so far) would end
    past ``deadline`` (a time.time() value); in a cluster, when it would on any worker."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline = deadline
        self.longest = 0.0
        self.hit = False
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        """Stop training when the next epoch would end past the deadline."""
        self.longest = max(self.longest, time.time() - self._start)
        if collectives.any_worker(time.time() + self.longest > self.deadline):
            self.hit = True
            self.model.stop_training = True


def stopping_reason(result, epochs: int, patience: int) -> str | None:
    """Why a run ended, or None while it is unfinished."""
    if result.stopped_early:
        return f"early stopping: no better validation loss in {patience} epochs"
    if result.epochs_run >= epochs:
        return f"epoch limit ({epochs})"
    return None


def _data_block(study) -> dict:
    """Which data trained and tested a record's model."""
    if isinstance(study, motion_study.MotionStudy):
        data = study.data
        return {
            "source": data.source,
            "kind": data.kind,
            "n_train": len(data.train),
            "n_val": len(data.val),
            "n_test": len(study.test_indices),
        }
    splits = study.splits
    return {
        "source": study.provenance["data"],
        "kind": splits.kind,
        "n_train": len(splits.train),
        "n_val": len(splits.val),
        "n_test": len(splits.test),
    }


def _ensure_check_images(study) -> None:
    """The zoo's check slice: the CIFAR study's first test images, or the shipped slice's copy."""
    target = zoo.zoo_dir() / zoo.CHECK_IMAGES
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(study, cifar_study.CifarStudy):
        zoo.write_check_images(study.splits.test[:CHECK_SLICE], study.test_sigmas[:CHECK_SLICE])
    else:
        shutil.copyfile(zoo.ZOO_DIR / zoo.CHECK_IMAGES, target)


def _run_state(run_dir: Path) -> dict:
    state_file = Path(run_dir) / "state.json"
    return json.loads(state_file.read_text()) if state_file.exists() else {}


def _trained_with(state: dict, setup) -> dict:
    """How the run trained, from its state (not from this process, which may only export it):
    the set-up it began with (``compute``), the arithmetic of its last stretch, and where it was
    carried across machines, backends or arithmetic (``continued_from``: shipped weights and a
    fresh optimiser; ``resumed_on``: another backend or arithmetic from an epoch on; ``machines``:
    each machine's stretch, when there was more than one)."""
    return {
        "backend": (last_setup(state)["backend"] if state else None) or keras.backend.backend(),
        "compute": state.get("compute") or setup.record(),
        "arithmetic": (last_setup(state)["arithmetic"] if state else None) or setup.arithmetic(),
        **{k: state[k] for k in ("continued_from", "resumed_on") if k in state},
        **({"machines": state["machines"]} if len(state.get("machines", [])) > 1 else {}),
    }


def export(name: str, model, result, study, config, setup, reason: str) -> dict:
    """Write the best weights (in the smallest storage that keeps the check slice within
    tolerance and the file small enough to track: ``zoo.choose_storage``) and the record of a
    finished run of either study. Returns the record."""
    _ensure_check_images(study)
    motion = isinstance(study, motion_study.MotionStudy)
    input_shape = [None, None, 3] if motion else list(study.splits.train.shape[1:])
    if motion:  # trained on fixed-size patches; the same weights at any size
        model = full_resolution_model(model, name)

    def rebuild():
        return build_model(name, input_shape=tuple(input_shape))

    path = zoo.weights_path(name)
    dtype, checks = zoo.choose_storage(model, rebuild, path)
    stored = rebuild()
    zoo.assign_weights(stored, zoo.read_weights(path), path)
    if motion:
        scores = motion_study.evaluate(study, {name: stored}, verbose=False)[name]
    else:
        scores = cifar_study.evaluate(study, {name: stored})[name]
    data = _data_block(study)
    record = {
        "model": name,
        "description": get_spec(name).description,
        "sha256": zoo.sha256(path),
        "dtype": dtype,
        "bytes": path.stat().st_size,
        "params": int(model.count_params()),
        "input_shape": input_shape,
        "weight_shapes": zoo.weight_shapes(model),
        "data": data,
        "profile": study.profile,
        "run": STUDIES[get_spec(name).dataset].run_name(study, name),
        "config": vars(config),
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "stopped": reason,
        "train_seconds": result.train_seconds,
        "machine": machine(),
        "commit": STARTED_AT_COMMIT or git_commit(),
        "date": today(),
        "history": result.history.to_dict(orient="records"),
        **_trained_with(_run_state(result.run_dir), setup),
        "test_scores": {**summarize(scores), "n": data["n_test"]},
        "check": {"n": CHECK_SLICE, **checks},
    }
    zoo.write_record(name, record)
    return record


def train_reference(
    name: str,
    study,
    deadline: float,
    max_epochs: int | None,
    export_unfinished: bool = False,
    retrain: bool = False,
) -> str:
    """Train (or resume) one model's reference run; export it when finished, or, with
    ``export_unfinished``, also when the time limit cut it (its record then says "in progress").
    Returns its status."""
    from .runtime import compute

    config = study.plan.train_config(name)
    epochs = max_epochs or config.epochs
    stop = Deadline(deadline)
    train_model = STUDIES[get_spec(name).dataset].train_model
    model, result = train_model(
        study,
        name,
        epochs=epochs,
        callbacks=[stop],
        continue_from=zoo.continuation(name, capped=retrain),
    )
    reason = stopping_reason(result, epochs, config.patience)
    workers = cluster.current()
    if not workers.is_chief:
        return f"trained as {workers.describe()}; the chief exports"
    if reason is None and not export_unfinished:
        return (
            f"in progress ({result.epochs_run} of at most {epochs} epochs; resume by running again)"
        )
    if reason is None:
        reason = f"in progress: time limit after {result.epochs_run} of at most {epochs} epochs"
    config.epochs = epochs
    record = export(name, model, result, study, config, compute.current(name), reason)
    s = record["test_scores"]
    done = "exported, still in progress" if reason.startswith("in progress") else "finished"
    return (
        f"{done}: {reason}; {record['epochs']} epochs in {record['train_seconds'] / 60:.1f} "
        f"min; test MSE {s['mse']:.5f}, PSNR {s['psnr']:.2f}, SSIM {s['ssim']:.4f}; "
        f"{zoo.weights_path(name).name} ({record['dtype']})"
    )


def _shipped(name: str, folder: Path) -> str:
    with zoo.located(folder):
        if name not in zoo.available():
            return "–"
        r = zoo.read_record(name)
    epochs = r.get("epochs")
    return f"{epochs} epoch{'s' if epochs != 1 else ''}, {str(r.get('stopped', '?')).split(':')[0]}"


def _checkpoint(name: str, profile: str) -> str:
    states = zoo.checkpoints(name, profile)
    if not states:
        return "–"
    s = json.loads(states[0].read_text())
    done = " (early stopping)" if s.get("stopped_early") else ""
    return (
        f"epoch {s['epoch'] + 1}{done}, best val_loss {s['best']:.5f} at epoch "
        f"{s['best_epoch'] + 1}, {s['wait']} since"
    )


def progress_rows(names: list[str], profile: str = PROFILE) -> list[dict]:
    """For each model: its shipped CPU and GPU runs (epochs, how they stopped) and its
    checkpoint of ``profile`` in ``runs/`` on this machine (epoch, best validation loss, epochs
    since)."""
    return [
        {
            "model": name,
            "zoo/": _shipped(name, zoo.zoo_dir()),
            "zoo/gpu/": _shipped(name, zoo.gpu_dir()),
            "checkpoint in runs/": _checkpoint(name, profile),
        }
        for name in names
    ]


def parse_caps(text: str | None, names: list[str], parser) -> dict[str, int]:
    """``"12"`` -> every model 12; ``"resunet1=40,resunet3=12"`` -> those two."""
    if not text:
        return {}
    if "=" not in text:
        return dict.fromkeys(names, int(text))
    caps = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in names or not value.strip().isdigit():
            parser.error(f"--max-epochs {item!r}: use NAME=N with a model of --models")
        caps[name.strip()] = int(value)
    return caps


def main(argv=None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    global STARTED_AT_COMMIT
    workers = cluster.initialize()  # first: TensorFlow's strategy must precede any computation
    STARTED_AT_COMMIT = git_commit()
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.reference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", default="", help="comma-separated names (default: every model)")
    parser.add_argument("--profile", default=PROFILE, help="profile of the runs (default: full)")
    parser.add_argument("--hours", type=float, default=None, help="time limit for the command")
    parser.add_argument(
        "--max-epochs",
        default=None,
        metavar="N | NAME=N,...",
        help="epoch limit in place of the profile's safety cap of 70, for every model or per model "
        "(resunet1=40,resunet3=12); kept in the record as the stopping rule",
    )
    parser.add_argument("--data-dir", default=None, help="CIFAR-10 folder or archive (searched)")
    parser.add_argument("--motion-dir", default=None, help="REDS or GoPro folder (searched)")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train a model the zoo has: resume its checkpoints in runs/, else continue a run "
        "shipped at its epoch limit from its weights (a fresh optimiser); with an empty "
        "$DEBLURLAB_ZOO, from scratch",
    )
    parser.add_argument(
        "--export-unfinished",
        action="store_true",
        help="when --hours cuts a run, still export its best weights, recorded as in progress "
        "(for machines whose run folders do not survive, such as a lent GPU)",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="list what the zoo ships and how far the runs in runs/ got, and train nothing",
    )
    args = parser.parse_args(argv)
    known = [n for n in ORDER if get_spec(n).dataset in STUDIES and n in list_models()]
    known += [n for n in list_models() if n not in known and get_spec(n).dataset in STUDIES]
    names = [n.strip() for n in args.models.split(",") if n.strip()] or known
    for name in names:
        if name not in known:
            parser.error(f"{name!r}: the reference command trains {', '.join(known)}")
    if args.status:
        import pandas as pd

        from .core.tables import to_markdown

        print(to_markdown(pd.DataFrame(progress_rows(names, args.profile))))
        return 0
    caps = parse_caps(args.max_epochs, names, parser)
    deadline = time.time() + 3600 * args.hours if args.hours else float("inf")
    if workers.multi:
        print(f"Cluster: {workers.describe()}", flush=True)
    studies = {}  # one prepared study per dataset, made when a model first needs it
    status = {}
    for i, name in enumerate(names, 1):
        shipped = name in zoo.available() and zoo.continuation(name) is None
        if collectives.any_worker(shipped and not args.retrain):  # workers decide alike
            status[name] = "in the zoo already (--retrain to train again)"
        elif collectives.any_worker(time.time() >= deadline):
            status[name] = "not started: time limit reached"
        else:
            dataset = get_spec(name).dataset
            if dataset not in studies:
                folder = args.motion_dir if dataset == "motion" else args.data_dir
                studies[dataset] = STUDIES[dataset].prepare_study(args.profile, data_dir=folder)
                print(f"Reference runs on {studies[dataset].describe()}", flush=True)
            print(f"[{i}/{len(names)}] {name}", flush=True)
            status[name] = train_reference(
                name,
                studies[dataset],
                deadline,
                caps.get(name),
                args.export_unfinished,
                retrain=args.retrain,
            )
        print(f"{name}: {status[name]}", flush=True)
    print("\nReference runs:\n" + "\n".join(f"  {n}: {s}" for n, s in status.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
