"""Training with checkpoints that survive interruption.

``train(model, stream, val, run_name, config)`` fits with Adam and MSE (summed over the outputs of
a multi-scale model), early stopping on the validation loss and TerminateOnNaN, on any Keras
backend. After every epoch it writes, each atomically (temporary file, then rename), the full
model with its optimizer state, the best weights so far, the CSV history and a small JSON state
(with the backend); on the TensorFlow backend also TensorBoard logs (``runs/<run>/tensorboard``:
watch with ``tensorboard --logdir runs/``). Rerunning with the same run name resumes at the next
epoch with the history and the early-stopping counters intact; a finished run is loaded, not
retrained.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import ops
from tqdm.keras import TqdmCallback
from tqdm.std import tqdm as text_tqdm

from .losses import LOSSES, learning_rate
from .paths import runs_dir
from .profiles import TrainConfig

TENSORBOARD_SKIPPED = "skipped: the TensorBoard callback needs the TensorFlow backend"


@dataclass
class Continuation:
    """Where a run whose checkpoints are gone continues from: weights to ``assign`` to the model,
    the epochs already trained (``history``, rows as ``history.csv`` holds them) and a ``note``
    kept in the run's state. The optimiser starts afresh (its moments were not saved)."""

    assign: Callable[[keras.Model], None]
    history: list[dict]
    note: str


@dataclass
class TrainResult:
    """What one training run gives: its per-epoch history, epochs run, best epoch, time,
    whether it stopped early or resumed, and its run folder."""

    history: pd.DataFrame
    epochs_run: int
    best_epoch: int
    train_seconds: float
    stopped_early: bool
    resumed_at: int | None
    run_dir: Path

    def summary(self) -> str:
        """One line: epochs, time, how it ended and the best epoch."""
        how = "stopped early" if self.stopped_early else "ran to the epoch limit"
        resumed = f", resumed at epoch {self.resumed_at + 1}" if self.resumed_at else ""
        return (
            f"{self.epochs_run} epochs in {self.train_seconds:.0f} s ({how}{resumed}); "
            f"best val_loss at epoch {self.best_epoch + 1}"
        )


def set_seeds(seed: int) -> None:
    """Seed Python, numpy and the backend's random generators with ``seed``."""
    keras.utils.set_random_seed(seed)


def psnr_metric(y_true, y_pred):
    """PSNR of the batch's images in [0, 1], averaged; a training-time view, not the evaluation.

    Each image's PSNR is -10 log10(MSE over its pixels and channels), as ``tf.image.psnr``.
    """
    y_pred = ops.clip(ops.cast(y_pred, "float32"), 0.0, 1.0)
    mse = ops.mean(ops.square(ops.cast(y_true, "float32") - y_pred), axis=(-3, -2, -1))
    return ops.mean(np.float32(-10.0 / np.log(10.0)) * ops.log(mse))


psnr_metric.__name__ = "psnr"


def compile_for_deblurring(
    model: keras.Model, config: TrainConfig, total_steps: int | None = None
) -> None:
    """Compile ``model`` with Adam at ``config``'s learning rate (``learning_rate``), its loss on
    every output (summed) and PSNR on the last output."""
    if config.loss not in LOSSES:
        raise ValueError(f"loss={config.loss!r}: choose one of {', '.join(LOSSES)}")
    loss = LOSSES[config.loss]
    n_out = len(model.outputs)
    metrics = [psnr_metric] if n_out == 1 else [[] for _ in range(n_out - 1)] + [[psnr_metric]]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(config, total_steps)),
        loss=[loss] * n_out if n_out > 1 else loss,
        metrics=metrics,
        steps_per_execution=config.steps_per_execution,
    )


def multi_scale_targets(model: keras.Model) -> Callable:
    """Map (blurred, sharp) to (blurred, targets): one target per output, resized to its size.

    The output sizes come from the model's shape inference at the batch's own size, so a model
    built for any input size (None, None, 3) gets targets of the right size too. The smaller
    targets are antialiased bilinear resizes (``keras.ops.image.resize``), returned as numpy.
    """
    if len(model.outputs) == 1:
        return lambda blurred, sharp: (blurred, sharp)
    sizes_by_shape: dict[tuple, list] = {}
    lock = threading.Lock()  # the stream calls the mapper from its threads

    def mapper(blurred, sharp):
        shape = tuple(sharp.shape)
        if None in shape[1:3]:
            raise ValueError("multi-scale targets need batches of a known height and width")
        with lock:
            if shape[1:] not in sizes_by_shape:
                outputs = model.compute_output_shape((None, *shape[1:]))
                sizes_by_shape[shape[1:]] = [tuple(out[1:3]) for out in outputs]
            sizes = sizes_by_shape[shape[1:]]
        targets = tuple(
            sharp
            if size == tuple(shape[1:3])
            else ops.convert_to_numpy(
                ops.image.resize(sharp, size, interpolation="bilinear", antialias=True)
            )
            for size in sizes
        )
        return blurred, targets

    return mapper


# Fields added to TrainConfig after runs had started: at these values they leave the fingerprint
# as it was, so those runs still resume.
LATER_FIELDS = {"loss": "mse", "lr_schedule": "constant"}


def _fingerprint(model: keras.Model, config: TrainConfig) -> str:
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


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_save(path: Path, save: Callable[[str], None]) -> None:
    tmp = path.with_name("tmp-" + path.name)  # keeps the suffix, from which Keras picks the format
    save(str(tmp))
    os.replace(tmp, path)


def _save_optimizer(optimizer, path: str) -> None:
    np.savez(path, *[np.asarray(v) for v in optimizer.variables])


def _build_optimizer(optimizer, model: keras.Model) -> None:
    """Create the optimiser's slots, once (a loss-scale optimiser's ``build`` is not idempotent)."""
    if not optimizer.built:
        optimizer.build(model.trainable_variables)


def build_training_state(model: keras.Model, batch: tuple) -> None:
    """Create the optimiser's slots and the loss and metric state of a compiled ``model`` now,
    eagerly, from the shapes of ``batch`` (inputs, targets).

    Keras's TensorFlow trainer, without a distribution strategy, leaves them to the first training
    step, which then creates them while it traces and is traced twice: NAFNet-small's (300 weight
    tensors) took about 40 s on two busy cores instead of 10. ``_symbolic_build`` is the trainer's
    own build (what it runs under a strategy, and always on JAX); without it, the optimiser."""
    build = getattr(model, "_symbolic_build", None)
    if build is not None:
        build(data_batch=batch)
    _build_optimizer(model.optimizer, model)


def _load_optimizer(optimizer, model: keras.Model, path: Path) -> None:
    _build_optimizer(optimizer, model)
    with np.load(path) as saved:
        arrays = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(arrays) != len(optimizer.variables):
        raise RuntimeError(f"{path} does not match this model's optimizer; delete its run folder.")
    for variable, value in zip(optimizer.variables, arrays):
        variable.assign(value)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoints, history and early stopping whose state lives on disk, not in memory."""

    def __init__(self, run_dir: Path, patience: int, state: dict):
        super().__init__()
        self.run_dir = run_dir
        self.patience = patience
        self.state = state
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
            _atomic_save(self.run_dir / "best.weights.h5", self.model.save_weights)
        else:
            self.state["wait"] += 1
        self.state["epoch"] = epoch
        if self.state["wait"] >= self.patience:
            self.state["stopped_early"] = True
            self.model.stop_training = True
        _atomic_save(self.run_dir / "last.weights.h5", self.model.save_weights)
        _atomic_save(
            self.run_dir / "optimizer.npz", lambda p: _save_optimizer(self.model.optimizer, p)
        )
        _atomic_write_text(
            self.run_dir / "history.csv", pd.DataFrame(self.state["history"]).to_csv(index=False)
        )
        _atomic_write_text(self.run_dir / "state.json", json.dumps(self.state, indent=1))


def _continue(model: keras.Model, state: dict, start: Continuation, run_dir: Path) -> None:
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
    _atomic_save(run_dir / "best.weights.h5", model.save_weights)


def run_directory(run_name: str) -> Path:
    """The folder of the training run ``run_name`` under the runs folder."""
    return runs_dir() / run_name


def train(
    model: keras.Model,
    make_stream: Callable[[int, int], tuple[keras.utils.PyDataset, int]],
    val: tuple[np.ndarray, np.ndarray],
    run_name: str,
    config: TrainConfig,
    verbose: bool = True,
    callbacks: list | None = None,
    setup=None,
    continue_from: Continuation | None = None,
) -> TrainResult:
    """Train ``model`` (compiled here) and return its history with the best weights loaded.

    ``make_stream(first_epoch, last_epoch)`` returns (stream of (blurred, sharp), steps per epoch):
    a ``data.stream.Stream`` (``training_stream``, ``patch_stream``) or any PyDataset with a
    ``map(fn)``; ``val`` is (blurred, sharp) arrays. ``setup`` (a ``compute.ComputeSetup``, under
    whose scope the model was built) sets XLA; its description is kept in the run's state, with
    the Keras backend. ``continue_from`` (used only when the run folder holds no state) continues
    a run from saved weights and history, e.g. shipped in-progress weights on a new machine.
    """
    run_dir = run_directory(run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seeds(config.seed)
    total_steps = None
    if config.lr_schedule != "constant":  # the schedule spans the whole run
        total_steps = make_stream(0, 1)[1] * config.epochs
    compile_for_deblurring(model, config, total_steps)
    if setup is not None:
        setup.apply(model)
    fingerprint = _fingerprint(model, config)
    backend = keras.backend.backend()
    state_file = run_dir / "state.json"
    resumed_at = None
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != fingerprint:
            raise RuntimeError(
                f"{run_dir} holds a run of a different model or configuration. Delete that folder "
                "(or run `python -m deblurlab.run --fresh`) to train from scratch, "
                "or pick another run name."
            )
        model.load_weights(run_dir / "last.weights.h5")
        _load_optimizer(model.optimizer, model, run_dir / "optimizer.npz")
        resumed_at = state["epoch"] + 1
        if state.setdefault("backend", "tensorflow") != backend:  # runs before "backend" were TF
            state.setdefault("resumed_on", []).append({"epoch": resumed_at, "backend": backend})
    else:
        state = {
            "fingerprint": fingerprint,
            "config": asdict(config),
            "epoch": -1,
            "best": math.inf,
            "best_epoch": -1,
            "wait": 0,
            "stopped_early": False,
            "history": [],
            "compute": setup.record() if setup is not None else None,
            "backend": backend,
        }
        if continue_from is not None and continue_from.history:
            _continue(model, state, continue_from, run_dir)
            resumed_at = state["epoch"] + 1

    first_epoch = state["epoch"] + 1
    if not state["stopped_early"] and first_epoch < config.epochs:
        if resumed_at and verbose:
            print(f"Resuming {run_name} at epoch {first_epoch + 1} of {config.epochs}.")
        stream, steps = make_stream(first_epoch, config.epochs)
        targets = multi_scale_targets(model)
        stream = stream.map(targets)
        val_blurred, val_sharp = val
        _, val_targets = targets(np.asarray(val_blurred), np.asarray(val_sharp))
        build_training_state(
            model, (val_blurred[:1], keras.tree.map_structure(lambda t: t[:1], val_targets))
        )
        board = []
        if backend == "tensorflow":
            board = [
                keras.callbacks.TensorBoard(
                    str(run_dir / "tensorboard"), write_graph=False, profile_batch=0
                )
            ]
        state["tensorboard"] = "written" if board else TENSORBOARD_SKIPPED
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            ResumableCheckpoint(run_dir, config.patience, state),
            *board,
            *(callbacks or []),
        ]
        if verbose:
            callbacks.append(
                TqdmCallback(verbose=0, tqdm_class=text_tqdm, desc=run_name, initial=first_epoch)
            )
        model.fit(
            stream,
            steps_per_epoch=steps,
            epochs=config.epochs,
            initial_epoch=first_epoch,
            validation_data=(val_blurred, val_targets),
            validation_batch_size=config.batch_size,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,
        )
    elif verbose:
        print(
            f"{run_name} already finished ({len(state['history'])} epochs): "
            f"loading its best weights from {run_dir}."
        )

    if state["history"] and not math.isfinite(state["history"][-1].get("loss", 0.0)):
        raise FloatingPointError(f"{run_name}: the loss became NaN; see {run_dir / 'history.csv'}.")
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")
    history = pd.DataFrame(state["history"])
    return TrainResult(
        history=history,
        epochs_run=len(history),
        best_epoch=state["best_epoch"],
        train_seconds=float(history["seconds"].sum()) if len(history) else 0.0,
        stopped_early=state["stopped_early"],
        resumed_at=resumed_at,
        run_dir=run_dir,
    )


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The finest-scale output of ``model`` for ``images``, clipped to [0, 1], as float32."""
    out = model.predict(images, batch_size=batch_size, verbose=0)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
