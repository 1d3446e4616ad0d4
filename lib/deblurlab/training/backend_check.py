"""Do a few layers give the same numbers on this backend and device as on TensorFlow's CPU?

A golden file made once with TensorFlow holds, for each checked layer, its input, its weights and
its output. On another backend or device (JAX on a GPU, say) the same layers are rebuilt, given the
stored weights and called on the stored input; the largest absolute difference must stay within a
tolerance that allows for a different summation order (and TF32-free float32 on a GPU).

    python -m deblurlab.training.backend_check --make  # KERAS_BACKEND=tensorflow: writes the file
    python -m deblurlab.training.backend_check         # any backend: compares, exit 1 on a mismatch

The layers are the ones whose conventions differ most between backends: a strided
``Conv2DTranspose`` (padding of the transposed convolution), ``BatchNormalization`` in training and
inference mode (batch statistics, epsilon) and the ConvLSTM cell of SRNDeblur.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import keras
import numpy as np

from ..core.paths import PACKAGE_DIR
from ..models.convlstm import ConvLSTMCell

GOLDEN = PACKAGE_DIR / "golden" / "layers_tensorflow.npz"
ATOL = 1e-4  # float32 outputs of order 1: a different summation order moves the last digits only
SEED = 7


def _cases() -> dict:
    """name -> (layer factory, input shape, call keyword arguments)."""
    return {
        "conv2d_transpose": (
            lambda: keras.layers.Conv2DTranspose(8, 3, strides=2, padding="same"),
            (2, 8, 8, 5),
            {},
        ),
        "batchnorm_train": (
            lambda: keras.layers.BatchNormalization(momentum=0.9),
            (4, 6, 6, 5),
            {"training": True},
        ),
        "batchnorm_infer": (
            lambda: keras.layers.BatchNormalization(momentum=0.9),
            (4, 6, 6, 5),
            {"training": False},
        ),
        "convlstm_cell": (lambda: ConvLSTMCell(6), (2, 8, 8, 5), {}),
    }


def _weights(layer, rng) -> list[np.ndarray]:
    """Random weights of the layer's shapes (BatchNorm's variance kept positive)."""
    out = []
    for w in layer.weights:
        value = rng.normal(0.0, 0.5, tuple(w.shape)).astype("float32")
        out.append(np.abs(value) + 0.5 if "variance" in w.path else value)
    return out


def _call(layer, x: np.ndarray, kwargs: dict) -> np.ndarray:
    if isinstance(layer, ConvLSTMCell):
        h, c = layer([x])
        h, c = layer([x, h, c])  # a second step from a non-zero state
        return keras.ops.convert_to_numpy(keras.ops.concatenate([h, c], axis=-1))
    return keras.ops.convert_to_numpy(layer(x, **kwargs))


def _build(factory, shape):
    layer = factory()
    layer.build([shape] if isinstance(layer, ConvLSTMCell) else shape)
    return layer


def make_golden(path: Path = GOLDEN) -> Path:
    """Write inputs, weights and outputs of every case (run with the TensorFlow backend)."""
    rng = np.random.default_rng(SEED)
    arrays = {"backend": np.array(keras.backend.backend())}
    for name, (factory, shape, kwargs) in _cases().items():
        layer = _build(factory, shape)
        weights = _weights(layer, rng)
        layer.set_weights(weights)
        x = rng.uniform(0.0, 1.0, shape).astype("float32")
        arrays[f"{name}/input"] = x
        for i, w in enumerate(weights):
            arrays[f"{name}/weight{i}"] = w
        arrays[f"{name}/output"] = _call(layer, x, kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def check_golden(path: Path = GOLDEN, atol: float = ATOL) -> dict[str, float]:
    """Largest absolute difference of each case against the golden file.

    Raises FileNotFoundError naming the file and the command that makes it.
    """
    if not Path(path).exists():
        raise FileNotFoundError(
            f"{path}: no golden file; make it with "
            "KERAS_BACKEND=tensorflow python -m deblurlab.training.backend_check --make"
        )
    stored = np.load(path)
    diffs = {}
    for name, (factory, shape, kwargs) in _cases().items():
        layer = _build(factory, shape)
        n = len(layer.weights)
        layer.set_weights([stored[f"{name}/weight{i}"] for i in range(n)])
        out = _call(layer, stored[f"{name}/input"], kwargs)
        diffs[name] = float(np.max(np.abs(out - stored[f"{name}/output"])))
    return diffs


def main(argv=None) -> int:
    """The command line: ``--make`` writes the golden file, else compares; returns 0 or 1."""
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.training.backend_check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--make", action="store_true", help="write the golden file (TensorFlow)")
    parser.add_argument("--golden", type=Path, default=GOLDEN)
    parser.add_argument("--atol", type=float, default=ATOL)
    args = parser.parse_args(argv)
    if args.make:
        print(f"wrote {make_golden(args.golden)} with {keras.backend.backend()}")
        return 0
    diffs = check_golden(args.golden, args.atol)
    where = f"{keras.backend.backend()} on {_device()}"
    for name, diff in diffs.items():
        print(f"{name:18s} max |diff| {diff:.2e}  {'ok' if diff <= args.atol else 'MISMATCH'}")
    bad = [n for n, d in diffs.items() if d > args.atol]
    print(
        f"{where}: {'all layers match' if not bad else 'mismatch in ' + ', '.join(bad)}"
        f" (tolerance {args.atol:g})"
    )
    return 1 if bad else 0


def _device() -> str:
    if keras.backend.backend() == "jax":
        import jax

        return ", ".join(sorted({d.platform for d in jax.devices()}))
    return "its default device"


if __name__ == "__main__":
    sys.exit(main())
