"""Run an exported model through ONNX Runtime, without TensorFlow or Keras.

    model = onnx_engine.load("resunet1")              # onnx/resunet1.onnx, its record checked
    model = onnx_engine.load(path="my/resunet1.onnx")  # any exported file
    restored = inference.deblur_image(model, image)    # the same padding and tiles as Keras'

``python -m deblurlab.export NAME`` writes ``NAME.onnx`` and its record ``NAME.json`` into the
export folder: ``--out DIR``, else ``$DEBLURLAB_ONNX_DIR``, else ``onnx/`` in the checkout (under
``$DEBLURLAB_OUTPUT_DIR`` when that is set). ``load(name)`` looks there; ``load(path=...)`` takes
any ``.onnx`` file, with its record beside it when there is one. The record gives the network's
size multiple, its fixed input size if any and the sha256 that the file must still have.

``OnnxModel`` looks like a Keras model to ``deblurlab.training.inference`` (``inputs[0].shape``,
``name``, ``required_multiple``, ``predict_on_batch``), so whole frames, tiles and padding are the
Keras path's own code. This module imports numpy, and ``onnxruntime`` only when a model is loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..core.paths import REPO_ROOT, file_digest, output_root

ONNX_DIR_ENV = "DEBLURLAB_ONNX_DIR"
RECORD_FORMAT = "deblurlab-onnx-1"
PROVIDERS = ["CPUExecutionProvider"]


class OnnxEngineError(RuntimeError):
    """An exported model cannot be run; the message names the file and the fix."""


def export_dir() -> Path:
    """The export folder: ``$DEBLURLAB_ONNX_DIR``, else ``onnx/`` under the output root."""
    env = os.environ.get(ONNX_DIR_ENV)
    return Path(env).expanduser() if env else output_root() / "onnx"


def onnx_path(name: str, folder=None) -> Path:
    """Where model ``name``'s exported file is (or would be) in ``folder`` (default: the export
    folder)."""
    return Path(folder or export_dir()) / f"{name}.onnx"


def record_path(path) -> Path:
    """The record beside an exported file: ``X.onnx`` -> ``X.json``."""
    return Path(path).with_suffix(".json")


def _shown(path: Path) -> str:
    path = Path(path)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _runtime():
    try:
        import onnxruntime
    except ImportError:
        raise OnnxEngineError(
            "onnxruntime is not installed in this Python: `python -m pip install onnxruntime` "
            "(the project's requirements.txt pins it), or run with --engine keras."
        ) from None
    return onnxruntime


class _Input:
    """What ``inference`` reads of a model's input: its shape, None where it is dynamic."""

    def __init__(self, shape):
        self.shape = tuple(shape)


class OnnxModel:
    """An exported network in an ONNX Runtime session, shaped like a Keras model for
    ``deblurlab.training.inference``: ``predict_on_batch`` takes an (N, H, W, C) float32 batch and
    returns the finest-scale output as numpy."""

    def __init__(self, path, record: dict | None = None, threads: int | None = None):
        ort = _runtime()
        self.path = Path(path)
        self.record = record or {}
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers say nothing here
        try:
            self.session = ort.InferenceSession(str(path), options, providers=PROVIDERS)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own kinds for a damaged file
            raise OnnxEngineError(
                f"{path} cannot be loaded by onnxruntime ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300]}). Export it again: "
                "`python -m deblurlab.export NAME`."
            ) from None
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        dims = [d if isinstance(d, int) else None for d in first.shape]
        self.inputs = [_Input([None, *dims[1:]])]
        self.name = self.record.get("model") or self.path.stem
        self.required_multiple = int(self.record.get("required_multiple", 8))

    def predict_on_batch(self, batch) -> np.ndarray:
        """The network's (finest-scale) output for an (N, H, W, C) batch, as float32 numpy."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run(None, {self.input_name: batch})[0]

    def __call__(self, batch, training: bool = False) -> np.ndarray:
        """The same as ``predict_on_batch`` (an eager call, as ``inference.run_model`` makes)."""
        return self.predict_on_batch(batch)

    def count_params(self) -> int | None:
        """The Keras model's parameter count, as the record keeps it (None without a record)."""
        return self.record.get("params")


def read_record(path) -> dict | None:
    """The record beside the exported file ``path``, or None when there is none."""
    record = record_path(path)
    if not record.exists():
        return None
    data = json.loads(record.read_text())
    if data.get("format") != RECORD_FORMAT:
        raise OnnxEngineError(
            f"{record} is not a deblurlab ONNX record (format {data.get('format')!r}); "
            "export the model again: `python -m deblurlab.export NAME`."
        )
    return data


def _export_needs(name: str) -> str:
    """What the export of ``name`` needs when the zoo lacks its weights, else ""."""
    from . import zoo

    weights = zoo.weights_path(name)
    if weights.exists():
        return ""
    return (
        f"; the export reads {_shown(weights)}, which is missing too: make it with "
        f"`python -m deblurlab.reference --models {name}`, or export a training run's weights "
        f"(`python -m deblurlab.export {name} --weights runs/<run>/best.weights.h5`)"
    )


def load(name: str | None = None, path=None, threads: int | None = None) -> OnnxModel:
    """Model ``name`` from the export folder, or the exported file ``path``, in an ONNX Runtime
    session (``threads``: intra-op threads, default ONNX Runtime's choice).

    With a record beside the file, the file's sha256 must match it and ``name`` (when given) must
    be the model it was exported from. Raises ``OnnxEngineError`` naming the file and the fix."""
    if path is None:
        if not name:
            raise OnnxEngineError("load() needs a model name or the path of an exported file")
        path = onnx_path(name)
        if not path.exists():
            raise OnnxEngineError(
                f"no exported model for {name}: {_shown(path)} is missing. Export it with "
                f"`python -m deblurlab.export {name}` (it writes to {_shown(export_dir())}; "
                f"${ONNX_DIR_ENV} or --out choose another folder){_export_needs(name)}, "
                "or pass --onnx PATH."
            )
    path = Path(path).expanduser()
    if not path.is_file():
        raise OnnxEngineError(
            f"{path} does not exist: pass an .onnx file written by `python -m deblurlab.export`."
        )
    record = read_record(path)
    if record is not None:
        if file_digest(path, "sha256") != record.get("sha256"):
            raise OnnxEngineError(
                f"{path} does not match the sha256 in {record_path(path)}: the file was changed "
                f"or replaced. Export it again: `python -m deblurlab.export {record.get('model')}`."
            )
        if name and record.get("model") != name:
            raise OnnxEngineError(
                f"{path} holds {record.get('model')}, not {name}: pass the matching --model, "
                "or export the model you want."
            )
    return OnnxModel(path, record, threads)


def describe(model: OnnxModel) -> str:
    """One line: what will run, on which input sizes, and what the model was trained for."""
    h, w = model.inputs[0].shape[1:3]
    size = "any size" if (h, w) == (None, None) else f"{w}x{h} tiles only, its training size"
    record = model.record
    params = record.get("params")
    note = record.get("note")
    provider = ", ".join(model.session.get_providers()[:1])
    return (
        f"{model.name}{f' ({params:,} parameters)' if params else ''} through onnxruntime "
        f"({provider}, opset {record.get('opset', '?')}): runs on {size}, padded to a multiple "
        f"of {model.required_multiple}{f'; note: {note}' if note else ''}"
    )


def stale(model: OnnxModel) -> str | None:
    """A warning when the zoo record that the file's weights came from now names other weights
    (the zoo was retrained after the export), else None."""
    weights = model.record.get("weights", {})
    if not weights.get("zoo_record"):
        return None
    record = Path(weights["zoo_record"])
    record = record if record.is_absolute() else REPO_ROOT / record
    if record.exists() and json.loads(record.read_text()).get("sha256") != weights.get("sha256"):
        return (
            f"{weights['zoo_record']} now names other weights than {_shown(model.path)} was "
            f"exported from: export it again (`python -m deblurlab.export {model.name}`)"
        )
    return None


def weights_line(model: OnnxModel) -> str:
    """Where the exported file and the weights it was made from came from (and a warning when
    those weights are no longer the zoo's)."""
    if not model.record:
        return f"onnx: {_shown(model.path)} (no record beside it: sha256 not checked)"
    weights = model.record.get("weights", {}).get("path", "?")
    warning = stale(model)
    return f"onnx: {_shown(model.path)}, exported from {weights}" + (
        f"; warning: {warning}" if warning else ""
    )
