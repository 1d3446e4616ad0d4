"""A training run's files in ``runs/<run>/``, and the callback that keeps them.

After every epoch, each written atomically (a temporary file, then a rename): ``last.weights.h5``,
``optimizer.npz`` (the optimizer's variables), ``best.weights.h5`` when the validation loss
improved, ``history.csv`` and ``state.json`` (the epoch, the early-stopping counters, the history,
the resume fingerprint, the set-up and backend). In a cluster only the chief writes them; every
worker keeps the same state in memory, so all stop together, and saves the weights too, to a
temporary folder it then deletes: saving can take part in the engine's collectives (Keras makes a
variable while saving), which every worker must join.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from .profiles import TrainConfig

# Fields added to TrainConfig after runs had started: at these values they leave the fingerprint
# as it was, so those runs still resume.
LATER_FIELDS = {"loss": "mse", "lr_schedule": "constant"}


@dataclass
class Continuation:
    """Where a run whose checkpoints are gone continues from: weights to ``assign`` to the model,
    the epochs already trained (``history``, rows as ``history.csv`` holds them) and a ``note``
    kept in the run's state. The optimiser starts afresh (its moments were not saved)."""

    assign: Callable[[keras.Model], None]
    history: list[dict]
    note: str
    arithmetic: str | None = None  # that of the run it continues (``ComputeSetup.arithmetic``)
    machines: list[dict] | None = None  # where it trained (``note_machine``'s stretches)


def fingerprint(model: keras.Model, config: TrainConfig) -> str:
    """What must match for a checkpoint to be resumed (the epoch limit and patience may change)."""
    fixed = {
        k: v
        for k, v in asdict(config).items()
        if k not in ("epochs", "patience", "steps_per_execution")
        and not (k in LATER_FIELDS and v == LATER_FIELDS[k])
    }
    # Layer types and weight shapes, not names: Keras numbers auto-named layers per process.
    arch = [
        (layer.__class__.__name__, [tuple(w.shape) for w in layer.weights])
        for layer in model.layers
    ]
    text = json.dumps({"arch": arch, "config": fixed}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_save(path: Path, save: Callable[[str], None], write: bool = True) -> None:
    """``save(temporary path)``, then rename it to ``path``; with ``write=False`` the save runs
    all the same, into a temporary folder that is then deleted (a worker other than the chief)."""
    if not write:
        with tempfile.TemporaryDirectory(prefix="deblurlab-worker-") as folder:
            save(str(Path(folder) / path.name))
        return
    tmp = path.with_name("tmp-" + path.name)  # keeps the suffix, from which Keras picks the format
    save(str(tmp))
    os.replace(tmp, path)


def save_optimizer(optimizer, path: str) -> None:
    """The optimizer's variables, in order, as ``arr_0``, ``arr_1``, ... of an npz file."""
    np.savez(path, *[np.asarray(v) for v in optimizer.variables])


def build_optimizer(optimizer, model: keras.Model) -> None:
    """Create the optimiser's slots, once (a loss-scale optimiser's ``build`` is not idempotent)."""
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


def load_optimizer(optimizer, model: keras.Model, path: Path) -> None:
    """Build ``optimizer`` for ``model`` and assign it the variables ``save_optimizer`` kept."""
    build_optimizer(optimizer, model)
    with np.load(path) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(arrays) != len(optimizer.variables):
        raise RuntimeError(f"{path} does not match this model's optimizer; delete its run folder.")
    for variable, value in zip(optimizer.variables, arrays):
        variable.assign(value)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoints, history and early stopping whose state lives on disk, not in memory; with
    ``write=False`` (a worker other than the chief) the same state, kept in memory only."""

    def __init__(self, run_dir: Path, patience: int, state: dict, write: bool = True):
        super().__init__()
        self.run_dir = run_dir
        self.patience = patience
        self.state = state
        self.write = write
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        """Start the epoch's clock."""
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch; keep the best and last weights, the optimizer and the state on
        disk; stop after ``patience`` epochs without a better validation loss."""
        logs = dict(logs or {})
        row = {
            "epoch": epoch + 1,
            **{k: float(v) for k, v in logs.items()},
            "seconds": time.perf_counter() - self._epoch_start,
        }
        self.state["history"].append(row)
        val = logs.get("val_loss", logs.get("loss"))
        if val is not None and math.isfinite(val) and val < self.state["best"]:
            self.state.update(best=float(val), best_epoch=epoch, wait=0)
            atomic_save(self.run_dir / "best.weights.h5", self.model.save_weights, self.write)
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch
        if self.state["wait"] >= self.patience:
            self.state["stopped_early"] = True
            self.model.stop_training = True
        atomic_save(self.run_dir / "last.weights.h5", self.model.save_weights, self.write)
        if self.write:
            atomic_save(
                self.run_dir / "optimizer.npz", lambda p: save_optimizer(self.model.optimizer, p)
            )
            history = pd.DataFrame(self.state["history"]).to_csv(index=False)
            atomic_write_text(self.run_dir / "history.csv", history)
            atomic_write_text(self.run_dir / "state.json", json.dumps(self.state, indent=1))


def continue_run(
    model: keras.Model, state: dict, start: Continuation, run_dir: Path, write: bool = True
) -> None:
    """Fill a fresh run's ``state`` from ``start``: its weights (kept as the best so far, since
    shipped weights are a run's best), its history, and the early-stopping counters."""
    start.assign(model)
    history = [dict(row) for row in start.history]
    losses = [row.get("val_loss", row.get("loss", math.inf)) for row in history]
    best = int(np.nanargmin(losses))
    state.update(
        epoch=len(history) - 1,
        best=float(losses[best]),
        best_epoch=best,
        wait=len(history) - 1 - best,
        history=history,
        continued_from={"epoch": len(history), "note": start.note},
    )
    atomic_save(run_dir / "best.weights.h5", model.save_weights, write)
    if write:  # the folder says where it began, even if no epoch is left to train
        atomic_write_text(run_dir / "state.json", json.dumps(state, indent=1))


def note_machine(state: dict, epoch: int, machine: str) -> None:
    """Keep in ``state["machines"]`` the machine of each stretch of the run, from ``epoch``
    (1-based) on: a run resumed or continued on another machine starts a stretch."""
    stretches = state.setdefault("machines", [])
    if not stretches or stretches[-1]["machine"] != machine:
        stretches.append({"epoch": epoch, "machine": machine})


def machine_story(record: dict) -> str:
    """A record's machine, or, for a run that moved, each machine with its epochs, e.g.
    "A for epochs 1-95, then B from epoch 96"."""
    stretches = record.get("machines") or []
    if len(stretches) < 2:
        return record.get("machine", "")
    parts = [
        f"{a['machine']} for epochs {a['epoch']}-{b['epoch'] - 1}"
        for a, b in zip(stretches, stretches[1:])
    ]
    return ", then ".join(
        parts + [f"{stretches[-1]['machine']} from epoch {stretches[-1]['epoch']}"]
    )


def last_setup(state: dict) -> dict:
    """The backend and arithmetic (``ComputeSetup.arithmetic``) of a run's latest stretch, from
    its state."""
    from ..runtime.compute import ComputeSetup

    first = state.get("compute") or {}
    fields = set(ComputeSetup.__dataclass_fields__)
    try:
        arithmetic = ComputeSetup(**{k: v for k, v in first.items() if k in fields}).arithmetic()
    except TypeError:  # a state without its set-up
        arithmetic = None
    last = {"backend": state["backend"], "arithmetic": arithmetic}
    for change in state.get("resumed_on", []):
        last = {k: change.get(k) or last[k] for k in last}
    return last


def arithmetic_change(epoch: int, before: dict, now: dict) -> dict | None:
    """A ``resumed_on`` entry when the run goes on from ``epoch`` with another backend or
    arithmetic (``now``) than ``before`` (``last_setup``'s keys; an unknown one never differs)."""
    if any(now[k] and before.get(k) and now[k] != before[k] for k in now):
        return {"epoch": epoch, **now, "before": before.get("arithmetic")}
    return None


def resumed_setup(setup, run_dir: Path, env=None, continuing: Continuation | None = None):
    """``setup`` (a ``compute.ComputeSetup``) for resuming the run in ``run_dir``, or for
    ``continuing`` a shipped one: on the same kind of device it keeps the precision of the run's
    latest stretch, unless ``$DEBLURLAB_PRECISION`` sets one: early stopping compares validation
    losses across epochs, and those of another arithmetic differ (CAESSC d22 half's float32 best:
    0.00169 in float32, 0.00237 in bf16; docs/machines.md). A change the user asks for is
    recorded in the run's state."""
    from ..runtime import compute

    env = os.environ if env is None else env
    state_file = Path(run_dir) / "state.json"
    if env.get(compute.PRECISION_ENV):
        return setup
    if state_file.exists():
        before = last_setup(json.loads(state_file.read_text()))["arithmetic"]
    else:  # a fresh run, or one continuing shipped weights (``continuing``)
        before = continuing.arithmetic if continuing is not None else None
    if not before:
        return setup  # a new run: the machine's choice
    precision, where = compute.split_arithmetic(before)
    if where != compute.split_arithmetic(setup.arithmetic())[1]:
        return setup  # another device: the machine's choice, recorded on resume
    if precision == setup.precision:
        return setup
    kept = compute.replace_precision(setup, precision)
    return dataclasses.replace(kept, source=f"{setup.source}; {precision} as the run began")
