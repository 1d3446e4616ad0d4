"""Training with checkpoints that survive interruption.

``train(model, stream, val, run_name, config)`` fits with Adam and MSE (summed over the outputs of
a multi-scale model), early stopping on the validation loss and TerminateOnNaN, on any Keras
backend. After every epoch it writes, each atomically (temporary file, then rename), the full
model with its optimizer state, the best weights so far, the CSV history and a small JSON state
(with the backend); on the TensorFlow backend also TensorBoard logs (``runs/<run>/tensorboard``:
watch with ``tensorboard --logdir runs/``). Rerunning with the same run name resumes at the next
epoch with the history and the early-stopping counters intact; a finished run is loaded, not
retrained (``checkpoints`` keeps the run's files).

In a cluster (``deblurlab.runtime.cluster``: several processes, one worker each) the same call
trains one replica a worker: each reads its own rows of every batch, the global batch is the
profile's, and only the chief writes the run's files; ``runs/`` must be one folder that every
worker sees.
"""

from __future__ import annotations

import json
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from keras import ops
from tqdm.keras import TqdmCallback
from tqdm.std import tqdm as text_tqdm

from ..core.paths import runs_dir
from ..runtime import cluster as cluster_lib
from ..runtime import collectives
from ..runtime.provenance import machine
from .checkpoints import (
    Continuation,
    ResumableCheckpoint,
    arithmetic_change,
    build_optimizer,
    continue_run,
    fingerprint,
    last_setup,
    load_optimizer,
    note_machine,
)
from .losses import LOSSES, learning_rate
from .profiles import TrainConfig

TENSORBOARD_SKIPPED = "skipped: the TensorBoard callback needs the TensorFlow backend"
TENSORBOARD_CHIEF = "written by the chief (worker 0) alone"
_fingerprint = fingerprint  # the name the tests and older notes use


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


def _load_model_weights(model: keras.Model, path: Path) -> None:
    """The model's weights from a checkpoint. Keras also finds the optimiser's variables there and
    warns that it skips them while the optimiser is unbuilt: ``optimizer.npz`` restores those."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


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
    build_optimizer(model.optimizer, model)


def run_directory(run_name: str) -> Path:
    """The folder of the training run ``run_name`` under the runs folder."""
    return runs_dir() / run_name


def _open_state(
    model, run_dir: Path, config, setup, continue_from, chief: bool
) -> tuple[dict, int | None]:
    """The run's state: resumed from ``run_dir`` (weights and optimizer loaded), continued from
    ``continue_from``, or fresh; and the epoch it resumes at (None when fresh)."""
    stamp = fingerprint(model, config)
    backend = keras.backend.backend()
    state_file = run_dir / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        if state.get("fingerprint") != stamp:
            raise RuntimeError(
                f"{run_dir} holds a run of a different model or configuration. Delete that folder "
                "(or run `python -m deblurlab.run --fresh`) to train from scratch, "
                "or pick another run name."
            )
        _load_model_weights(model, run_dir / "last.weights.h5")
        load_optimizer(model.optimizer, model, run_dir / "optimizer.npz")
        resumed_at = state["epoch"] + 1
        state.setdefault("backend", "tensorflow")  # runs before "backend" were TensorFlow's
        now = {"backend": backend, "arithmetic": setup.arithmetic() if setup else None}
        change = arithmetic_change(resumed_at, last_setup(state), now)
        going_on = resumed_at < config.epochs and not state.get("stopped_early")
        if change and going_on:
            state.setdefault("resumed_on", []).append(change)  # the record says so
        if going_on and "machines" in state:  # (runs begun before it was kept have none)
            note_machine(state, resumed_at + 1, machine())
        return state, resumed_at
    state = {
        "fingerprint": stamp,
        "config": asdict(config),
        "epoch": -1,
        "best": math.inf,
        "best_epoch": -1,
        "wait": 0,
        "stopped_early": False,
        "history": [],
        "compute": setup.record() if setup is not None else None,
        "backend": backend,
        "machines": [],
    }
    if continue_from is not None and continue_from.history:
        state["machines"] = list(continue_from.machines or [])
        note_machine(state, len(continue_from.history) + 1, machine())
        now = {"backend": backend, "arithmetic": setup.arithmetic() if setup else None}
        shipped = {"arithmetic": continue_from.arithmetic}  # its backend is not recorded
        change = arithmetic_change(len(continue_from.history), shipped, now)
        if change:  # the shipped epochs ran in another arithmetic
            state["resumed_on"] = [change]
        continue_run(model, state, continue_from, run_dir, write=chief)
        return state, state["epoch"] + 1
    note_machine(state, 1, machine())
    return state, None


def _agree(cluster, state: dict, run_dir: Path) -> None:
    """Every worker of a cluster starts from the same run and epoch, or none does."""
    if cluster.multi:
        collectives.check_same(
            f"the run to resume ({run_dir}: fingerprint prefix, next epoch)",
            [int(state["fingerprint"][:7], 16), state["epoch"] + 1],
            hint="Every worker must run the same command and code, and see the chief's runs "
            "folder (a shared filesystem, or $DEBLURLAB_OUTPUT_DIR on one).",
        )


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
    ``map(fn)`` (and, in a cluster, ``shard(index, count)``); ``val`` is (blurred, sharp) arrays.
    ``setup`` (a ``compute.ComputeSetup``, under whose scope the model was built and this is
    called) sets XLA; its description is kept in the run's state, with the Keras backend.
    ``continue_from`` (used only when the run folder holds no state) continues a run from saved
    weights and history, e.g. shipped in-progress weights on a new machine.
    """
    cluster = cluster_lib.current()
    run_dir = run_directory(run_name)
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seeds(config.seed)
    total_steps = None
    if config.lr_schedule != "constant":  # the schedule spans the whole run
        total_steps = make_stream(0, 1)[1] * config.epochs
    compile_for_deblurring(model, config, total_steps)
    if setup is not None:
        setup.apply(model)
    state, resumed_at = _open_state(model, run_dir, config, setup, continue_from, cluster.is_chief)
    _agree(cluster, state, run_dir)
    verbose = verbose and cluster.is_chief
    first_epoch = state["epoch"] + 1
    if not state["stopped_early"] and first_epoch < config.epochs:
        if resumed_at and verbose:
            print(f"Resuming {run_name} at epoch {first_epoch + 1} of {config.epochs}.")
        stream, steps = make_stream(first_epoch, config.epochs)
        targets = multi_scale_targets(model)
        stream = stream.map(targets)
        if cluster.multi and not hasattr(stream, "shard"):
            raise TypeError(
                "training across workers needs a stream with shard(index, count), such as "
                "deblurlab.data.stream.Stream"
            )
        val_blurred, val_sharp = val
        _, val_targets = targets(np.asarray(val_blurred), np.asarray(val_sharp))
        tensorflow = keras.backend.backend() == "tensorflow"
        spread = cluster.multi or (setup is not None and setup.distribute)
        if not spread:  # under a strategy the trainer builds it itself, in the strategy's scope
            build_training_state(
                model, (val_blurred[:1], keras.tree.map_structure(lambda t: t[:1], val_targets))
            )
        board = []
        if tensorflow and cluster.is_chief:
            board = [
                keras.callbacks.TensorBoard(
                    str(run_dir / "tensorboard"), write_graph=False, profile_batch=0
                )
            ]
        state["tensorboard"] = (
            ("written" if cluster.is_chief else TENSORBOARD_CHIEF)
            if tensorflow
            else TENSORBOARD_SKIPPED
        )
        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            ResumableCheckpoint(run_dir, config.patience, state, write=cluster.is_chief),
            *board,
            *(callbacks or []),
        ]
        if verbose:
            callbacks.append(
                TqdmCallback(
                    epochs=config.epochs,
                    verbose=0,
                    tqdm_class=text_tqdm,
                    desc=run_name,
                    initial=first_epoch,  # a resumed run counts from its epoch
                )
            )
        try:
            model.fit(
                collectives.fit_input(stream),
                steps_per_epoch=steps,
                epochs=config.epochs,
                initial_epoch=first_epoch,
                validation_data=(val_blurred, val_targets),
                validation_batch_size=config.batch_size,
                callbacks=callbacks,
                verbose=0,
                shuffle=False,
            )
        except Exception as error:
            done = f"{run_dir}, after epoch {state['epoch'] + 1}"
            lost = collectives.lost_worker(error, done if state["epoch"] >= 0 else str(run_dir))
            if lost is not None:
                raise lost from error
            raise
    elif verbose:
        print(
            f"{run_name} already finished ({len(state['history'])} epochs): "
            f"loading its best weights from {run_dir}."
        )

    if state["history"] and not math.isfinite(state["history"][-1].get("loss", 0.0)):
        raise FloatingPointError(f"{run_name}: the loss became NaN; see {run_dir / 'history.csv'}.")
    if cluster.multi:
        collectives.barrier()  # the chief has written the run's last files
    best = run_dir / "best.weights.h5"
    if best.exists():
        _load_model_weights(model, best)
    elif state["best_epoch"] >= 0 and not cluster.is_chief:
        raise cluster_lib.ClusterError(
            f"worker {cluster.index} cannot see {best}, which the chief wrote: the runs folder "
            "must be one folder that every worker shares"
        )
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


def local_copy(model: keras.Model, build: Callable[[], keras.Model], setup=None) -> keras.Model:
    """``model``, or, when it trained across workers, a copy on this process alone (``build()``
    under the set-up's local scope, with the weights): evaluating or exporting it then needs no
    other worker. Call it outside the set-up's scope."""
    if setup is None or setup.workers == 1:
        return model
    weights = [np.asarray(w) for w in model.get_weights()]
    with setup.local().scope():
        copy = build()
    copy.set_weights(weights)
    return copy


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The finest-scale output of ``model`` for ``images``, clipped to [0, 1], as float32."""
    out = model.predict(images, batch_size=batch_size, verbose=0)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
