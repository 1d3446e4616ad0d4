"""One worker of tests/test_cluster.py: a few steps of a small model through ``train.train``.

    python tests/cluster_worker.py --out DIR [--epochs 3] [--hold-after-epoch K --hold-worker W]

Run under ``python -m deblurlab.runtime.launch`` (or ``deblurlab.runtime.launch.start``), which
sets the cluster variables. Writes ``DIR/weights-<worker>.npz`` and ``DIR/result-<worker>.json``.
With ``--hold-after-epoch``, worker W stops after that epoch's checkpoint (writing ``DIR/held-<W>``)
and waits to be killed, at most ``HOLD_LIMIT`` seconds. ``train_once`` is the same run in this
process (the single-process reference).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import block_tf

block_tf.install()  # with DEBLURLAB_BLOCK_TF=1, as the JAX subset runs

import keras  # noqa: E402
import numpy as np  # noqa: E402

from deblurlab.data.blur import make_blurred_set, training_stream  # noqa: E402
from deblurlab.runtime import cluster, compute  # noqa: E402
from deblurlab.training.profiles import TrainConfig  # noqa: E402
from deblurlab.training.train import set_seeds, train  # noqa: E402

RUN = "cluster-test"
GLOBAL_BATCH = 8
HOLD_LIMIT = 90  # seconds a held worker waits to be killed before it gives up


def tiny_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x))


class Hold(keras.callbacks.Callback):
    """After epoch ``epoch`` (counted from 0), say so in ``marker`` and wait to be killed."""

    def __init__(self, epoch: int, marker: Path):
        super().__init__()
        self.epoch, self.marker = epoch, marker

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.marker.write_text(str(os.getpid()))
            time.sleep(HOLD_LIMIT)
            sys.exit(f"held for {HOLD_LIMIT} s and nobody killed this worker")


def train_once(run_name: str, epochs: int, callbacks=None):
    """Train the tiny model (global batch 8, seed 0) as this process's worker; returns
    (weights as numpy arrays, TrainResult, set-up)."""
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 16, 16, 3)).astype("float32")
    val = rng.random((8, 16, 16, 3)).astype("float32")
    val = (make_blurred_set(val, seed=1)[0], val)
    config = TrainConfig(epochs=epochs, batch_size=GLOBAL_BATCH, patience=50, seed=0)
    setup = compute.current()
    with setup.scope():
        set_seeds(config.seed)
        model = tiny_model()
        result = train(
            model,
            lambda a, b: training_stream(sharp, config.batch_size, 0, a, b),
            val,
            run_name,
            config,
            verbose=False,
            callbacks=callbacks,
            setup=setup,
        )
    return [np.asarray(w) for w in model.get_weights()], result, setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--hold-after-epoch", type=int, default=None)
    parser.add_argument("--hold-worker", type=int, default=1)
    args = parser.parse_args()
    me = cluster.initialize()
    args.out.mkdir(parents=True, exist_ok=True)
    hold = []
    if args.hold_after_epoch is not None and me.index == args.hold_worker:
        hold = [Hold(args.hold_after_epoch, args.out / f"held-{me.index}")]
    weights, result, setup = train_once(RUN, args.epochs, hold)
    np.savez(args.out / f"weights-{me.index}.npz", *weights)
    summary = {
        "worker": me.index,
        "workers": me.count,
        "describe": setup.describe(),
        "resumed_at": result.resumed_at,
        "epochs": result.history["epoch"].tolist(),
        "loss": result.history["loss"].tolist(),
    }
    (args.out / f"result-{me.index}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
