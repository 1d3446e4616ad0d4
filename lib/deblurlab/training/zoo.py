"""Shipped weights of the reference runs: ``zoo/<model>.weights.h5`` and ``zoo/<model>.json``.

    model = zoo.load("resunet3")      # built from the registry, sha256 and architecture checked
    zoo.available()                   # the models with shipped weights
    zoo.status()                      # every model: "finished", "in progress", "not run", ...

The weights file holds the model's weights only (no optimiser state), one HDF5 dataset a weight
in the model's own order, in the smallest storage that keeps the scores within ``TOLERANCE`` and
the file under ``MAX_BYTES`` (``choose_storage``; the record says which): float16, or int8 for
the large kernels, with a float32 scale for each slice of their last axis (a convolution's output
channels), when float16 is too large; float32 when neither holds.
The record keeps the sha256 of the file, the data, the training set-up, the history, the
test-split scores measured when training ended, and the scores of a fixed check slice
(``zoo/check_images.npz``: sharp test images and their blur sigmas) that a test re-measures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..core.paths import REPO_ROOT, file_digest

ZOO_DIR = REPO_ROOT / "zoo"
ZOO_ENV = "DEBLURLAB_ZOO"
CHECK_IMAGES = "check_images.npz"
# How far re-measured check-slice scores may drift from the record (threads sum floats in any order;
# a smaller storage is accepted only within the same bounds, see storage_keeps).
TOLERANCE = {"mse": 2e-5, "psnr": 0.05, "ssim": 1e-3}
MAX_BYTES = 5_000_000  # a file the repository tracks stays under 5 MB
STORAGES = ("float16", "int8")  # tried in this order; float32 is the fallback
# int8 only for kernels this large: the small ones (a network's first and last convolutions, to
# and from the 3 colour channels) weigh little and move the output most, so they stay float16
INT8_MIN_SIZE = 16_384


class ZooError(RuntimeError):
    """A shipped model cannot be loaded; the message names the file and the fix."""


GPU_SUBDIR = "gpu"  # zoo/gpu/: the reference runs of tools/gpu_reference.sh on a lent GPU
_LOCATED: list[Path] = []


def zoo_dir() -> Path:
    """The zoo folder: the one ``located`` gives, else ``$DEBLURLAB_ZOO`` or the checkout's
    ``zoo/``."""
    return _LOCATED[-1] if _LOCATED else Path(os.environ.get(ZOO_ENV) or ZOO_DIR)


def gpu_dir() -> Path:
    """The zoo of the GPU reference runs, inside the zoo folder."""
    return zoo_dir() / GPU_SUBDIR


@contextmanager
def located(folder) -> Iterator[Path]:
    """Within the block, every zoo call reads and writes ``folder`` (e.g. ``gpu_dir()``)."""
    _LOCATED.append(Path(folder))
    try:
        yield _LOCATED[-1]
    finally:
        _LOCATED.pop()


def weights_path(name: str) -> Path:
    """Where model ``name``'s weights file is (or would be)."""
    return zoo_dir() / f"{name}.weights.h5"


def record_path(name: str) -> Path:
    """Where model ``name``'s record is (or would be)."""
    return zoo_dir() / f"{name}.json"


def sha256(path: Path) -> str:
    """The file's sha256, hex."""
    return file_digest(path, "sha256")


def available() -> list[str]:
    """Models whose record and weights are both in the zoo."""
    return sorted(
        p.name[: -len(".json")] for p in zoo_dir().glob("*.json") if weights_path(p.stem).exists()
    )


def read_record(name: str) -> dict:
    """Model ``name``'s record; ``ZooError`` naming the command that makes it when missing."""
    path = record_path(name)
    if not path.exists():
        raise ZooError(
            f"{path} is missing: no reference run of {name!r} is shipped. Train one with "
            f"`python -m deblurlab.reference --models {name}`."
        )
    return json.loads(path.read_text())


def weight_shapes(model) -> list[list[int]]:
    """The shape of every weight of ``model``, in order."""
    return [list(w.shape) for w in model.weights]


def _atomic(path: Path, write) -> None:
    tmp = path.with_name("tmp-" + path.name)
    write(tmp)
    os.replace(tmp, path)


def _int8(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 values and one float32 scale for each index of the last axis."""
    flat = np.abs(kernel.astype(np.float32)).reshape(-1, kernel.shape[-1])
    scale = flat.max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def write_weights(model, path: Path, dtype: str = "float16") -> None:
    """Every weight of ``model`` as one dataset ``w0000``, ``w0001``, ... cast to ``dtype``
    ("float32", "float16", or "int8": kernels of at least ``INT8_MIN_SIZE`` values as int8 with
    a ``scale`` attribute, the other weights as float16)."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as handle:
            handle.attrs["format"] = "deblurlab-zoo-1"
            for i, weight in enumerate(model.weights):
                value, scale = np.asarray(weight), None
                if dtype == "int8" and value.ndim >= 2 and value.size >= INT8_MIN_SIZE:
                    value, scale = _int8(value)
                elif dtype == "int8":
                    value = value.astype("float16")
                else:
                    value = value.astype(dtype)
                data = handle.create_dataset(f"w{i:04d}", data=value)
                data.attrs["path"] = weight.path
                if scale is not None:
                    data.attrs["scale"] = scale

    _atomic(path, write)


def read_weights(path: Path) -> list[np.ndarray]:
    """The arrays of a weights file written by ``write_weights``, in the model's order (int8
    kernels multiplied back by their scales)."""
    import h5py

    with h5py.File(path, "r") as handle:
        datasets = [handle[key] for key in sorted(handle.keys())]
        return [d[()] * d.attrs["scale"] if "scale" in d.attrs else d[()] for d in datasets]


def choose_storage(model, rebuild, path: Path) -> tuple[str, dict]:
    """Write ``model``'s weights to ``path`` in the first of ``STORAGES`` whose file is under
    ``MAX_BYTES`` and whose check-slice scores keep float32's (``storage_keeps``), else
    float32. ``rebuild()`` makes an empty copy of the model. Returns (dtype, every score
    measured: "float32", each storage tried, and "stored")."""
    import tempfile

    exact = rebuild()  # float32 arithmetic, whatever policy the model trained in
    exact.set_weights(model.get_weights())
    checks = {"float32": score_check_slice(exact)}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in STORAGES:
            trial = Path(tmp) / f"{dtype}.weights.h5"
            write_weights(model, trial, dtype)
            if trial.stat().st_size > MAX_BYTES:
                continue
            copy = rebuild()
            assign_weights(copy, read_weights(trial), trial)
            checks[dtype] = score_check_slice(copy)
            if storage_keeps(checks[dtype], checks["float32"]):
                break
        else:
            dtype = "float32"
    write_weights(model, path, dtype)  # the same values as the trial that was scored
    return dtype, {**checks, "stored": checks[dtype]}


def assign_weights(model, arrays: list[np.ndarray], source: Path) -> None:
    """Give ``model`` the ``arrays`` read from ``source``; ``ZooError`` when they do not fit."""
    shapes = weight_shapes(model)
    if [list(a.shape) for a in arrays] != shapes:
        raise ZooError(
            f"{source} does not fit {model.name}: the architecture changed since these weights "
            f"were made ({len(arrays)} weights saved, {len(shapes)} built, or their shapes "
            "differ). "
            "Retrain it (`python -m deblurlab.reference --models NAME`), or check out the commit "
            "named in its record."
        )
    for weight, value in zip(model.weights, arrays):
        weight.assign(value.astype(weight.dtype))


def in_progress(record: dict) -> bool:
    """Whether a record is of a run cut by its time limit (``reference --export-unfinished``)."""
    return str(record.get("stopped", "")).startswith("in progress")


def continuation(name: str, capped: bool = False):
    """A ``train.Continuation`` from model ``name``'s shipped weights when its record says the
    run is still in progress (cut by a time limit), or, with ``capped``, stopped at its epoch
    limit; else None: how a reference run continues on a machine where its checkpoints are gone."""
    from .train import Continuation

    if name not in available():
        return None
    record = read_record(name)
    at_cap = capped and str(record.get("stopped", "")).startswith("epoch limit")
    if not (in_progress(record) or at_cap):
        return None
    path = weights_path(name)
    what = "weights stopped at their epoch limit" if at_cap else "in-progress weights"
    return Continuation(
        assign=lambda model: assign_weights(model, read_weights(path), path),
        history=record.get("history", []),
        note=(
            f"continued from the shipped {what} {path.name} ({record['epochs']} "
            f"epochs, {record.get('date', '?')}, {record.get('machine', '?')}) with a fresh "
            "optimiser"
        ),
        arithmetic=record.get("arithmetic"),
        machines=record.get("machines") or [{"epoch": 1, "machine": record.get("machine", "?")}],
    )


def write_record(name: str, record: dict) -> None:
    """Write model ``name``'s record atomically."""
    text = json.dumps(record, indent=1, default=float)
    _atomic(record_path(name), lambda tmp: tmp.write_text(text))


def load(name: str, verify: bool = True):
    """The shipped reference model ``name``, built from the registry with its weights loaded.

    Raises ``ZooError`` naming the file and the fix when the record or weights are missing, the
    sha256 differs from the record, or the architecture no longer matches the weights.
    """
    from ..models import build_model

    record = read_record(name)
    path = weights_path(name)
    if not path.exists():
        shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        raise ZooError(
            f"{path} is missing though its record exists: restore it from git "
            f"(`git checkout -- {shown}`) "
            f"or retrain (`python -m deblurlab.reference --models {name}`)."
        )
    if verify and sha256(path) != record["sha256"]:
        raise ZooError(
            f"{path} does not match the sha256 in {record_path(name)}: the file is damaged or was "
            "replaced. Restore it from git, or retrain the model."
        )
    model = build_model(
        name,
        input_shape=tuple(record.get("input_shape", (32, 32, 3))),
        **record.get("build_options", {}),
    )
    assign_weights(model, read_weights(path), path)
    return model


def check_images() -> tuple[np.ndarray, np.ndarray]:
    """(sharp images as float32 in [0, 1], blur sigmas) of the fixed check slice."""
    path = zoo_dir() / CHECK_IMAGES
    if not path.exists():
        raise ZooError(
            f"{path} is missing: restore it from git or rerun `python -m deblurlab.reference`."
        )
    with np.load(path) as saved:
        return saved["sharp"].astype(np.float32) / 255.0, saved["sigmas"].astype(np.float32)


def write_check_images(sharp: np.ndarray, sigmas: np.ndarray) -> None:
    """Store the check slice (images as uint8, their blur sigmas) in the zoo."""
    as_bytes = np.round(np.asarray(sharp) * 255.0).astype(np.uint8)
    _atomic(
        zoo_dir() / CHECK_IMAGES,
        lambda tmp: np.savez_compressed(
            open(tmp, "wb"), sharp=as_bytes, sigmas=np.asarray(sigmas, np.float32)
        ),
    )


def score_check_slice(model) -> dict[str, float]:
    """Mean MSE, PSNR and SSIM of ``model`` on the check slice, blurred by the library's blur."""
    from ..core import metrics as M
    from ..data.blur import blur_in_batches
    from .train import predict

    sharp, sigmas = check_images()
    blurred = blur_in_batches(sharp, sigmas)
    return M.image_metrics(predict(model, blurred), sharp)


def storage_keeps(stored: dict, exact: dict) -> bool:
    """Whether a storage's check-slice scores keep float32's: MSE, SSIM and the PSNR of the mean
    MSE within ``TOLERANCE``. Not the mean per-image PSNR: the slice's least blurred images score
    near-identity PSNRs that move by tenths of a dB at any change of the weights (the convention
    that methods are compared by the PSNR of the mean MSE, docs/conventions.md)."""

    def psnr_of_mean(scores):
        return 10 * np.log10(1 / scores["mse"])

    return (
        abs(stored["mse"] - exact["mse"]) <= TOLERANCE["mse"]
        and abs(stored["ssim"] - exact["ssim"]) <= TOLERANCE["ssim"]
        and abs(psnr_of_mean(stored) - psnr_of_mean(exact)) <= TOLERANCE["psnr"]
    )


def within_tolerance(a: dict, b: dict) -> bool:
    """Whether two check-slice scores agree within ``TOLERANCE``."""
    return all(abs(a[k] - b[k]) <= TOLERANCE[k] for k in TOLERANCE)


def checkpoints(name: str, profile: str = "full") -> list[Path]:
    """The ``state.json`` of model ``name``'s runs of ``profile`` in ``runs/`` on this machine:
    ``cifar-<model>-<profile>``, or a motion run's ``motion-<data>-<model>-<recipe>-<profile>``."""
    from ..core.paths import runs_dir

    runs = runs_dir()
    return sorted(runs.glob(f"*-{name}-{profile}/state.json")) + sorted(
        runs.glob(f"*-{name}-*-{profile}/state.json")
    )


def status(models: list[str] | None = None) -> dict[str, str]:
    """For each model: "finished" (its run ended and its weights are shipped), "shipped in
    progress" (weights shipped while the run goes on), "in progress" (a reference checkpoint on
    this machine only) or "not run"."""
    from ..models import list_models

    out, shipped = {}, set(available())
    for name in models or list_models(dataset="cifar10") + list_models(dataset="motion"):
        if name in shipped:
            out[name] = "shipped in progress" if in_progress(read_record(name)) else "finished"
        elif checkpoints(name):
            out[name] = "in progress"
        else:
            out[name] = "not run"
    return out


SHIPPED = ("finished", "shipped in progress")  # the ``status`` values with weights to load


def records_table(folder=None) -> list[dict]:
    """One row a shipped run of ``folder`` (default: this zoo): epochs, how it stopped, minutes,
    arithmetic, machine, the test data and scores its record measured at the end, and storage."""
    from .checkpoints import machine_story

    rows = []
    with located(folder or zoo_dir()):
        for name in available():
            r = read_record(name)
            scores, n = r.get("test_scores") or {}, (r.get("test_scores") or {}).get("n")
            motion = r.get("data", {}).get("kind") in ("combined", "reds", "gopro-sample")
            what = "motion test frames" if motion else "CIFAR-10 test images"
            rows.append(
                {
                    "model": name,
                    "epochs": r.get("epochs"),
                    "stopped by": f"{r.get('stopped')} (best epoch {r.get('best_epoch')})"
                    + (" (continued from shipped weights)" if r.get("continued_from") else ""),
                    "minutes": f"{r.get('train_seconds', 0) / 60:.1f}",
                    "arithmetic": arithmetic_story(r),
                    "machine": machine_story(r),
                    "test data": f"{n} {what}",
                    "test MSE": f"{scores['mse']:.5f}" if "mse" in scores else "",
                    "test SSIM": f"{scores['ssim']:.4f}" if "ssim" in scores else "",
                    "stored": f"{r.get('dtype')}, {r.get('bytes', 0) / 1e6:.1f} MB",
                }
            )
    return rows


def arithmetic_story(record: dict) -> str:
    """A record's arithmetic, with each change a resumed run made, e.g. "float32 on CPU for
    epochs 1-40, then mixed_bfloat16 on CPU"."""
    changes = [
        c
        for c in record.get("resumed_on", [])
        if c.get("arithmetic") and c.get("before") and c["arithmetic"] != c["before"]
    ]
    if not changes:
        return record.get("arithmetic", "")
    parts, start = [], 1
    for change in changes:
        parts.append(f"{change['before']} for epochs {start}-{change['epoch']}")
        start = change["epoch"] + 1
    return ", then ".join(parts + [f"{record.get('arithmetic', '?')} from epoch {start}"])
