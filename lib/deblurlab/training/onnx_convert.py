"""Keras network -> ONNX file, on the TensorFlow backend: Keras' own exporter first, tf2onnx where
that fails.

    route = onnx_convert.convert(net, "resunet1.onnx")  # {"exporter", "opset", "input", ...}

``keras.Model.export(path, format="onnx")`` traces the model and hands the graph to tf2onnx. Two
things of this library's networks need help there:

- ``Logit`` (the input-to-output skip of every CIFAR model) uses ``log1p``, which tf2onnx 1.17
  has no handler for: ``TF_HANDLERS`` adds one that writes ``Log(1 + x)`` (x = -p with p in
  [1e-3, 1 - 1e-3] here, where ``1 + x`` loses nothing that float32's log1p keeps beyond ~1e-7).
- SRNDeblur's bilinear ``UpSampling2D`` cannot be traced for a dynamic height and width:
  ``keras.ops.image.resize`` compares the symbolic size with 0 in Python. Keras' exporter fails
  on it, so such a model goes through tf2onnx directly (``convert.from_function``), traced with
  the layer's resize made by ``tf.image.resize(method="bilinear", antialias=False)``, the op
  Keras' TensorFlow backend itself runs, at the dynamic size.

Either way the input and output dimensions get readable names (batch, height, width) and the file
passes ``onnx.checker``; ``deblurlab.export`` then checks its outputs against Keras'.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

DIM_NAMES = ("batch", "height", "width")
# tf2onnx handlers this module adds: TensorFlow op -> what it becomes in ONNX.
TF_HANDLERS = {"Log1p": "Log(1 + x)"}
_REGISTERED: list[str] = []


class ConvertError(RuntimeError):
    """The network could not be written as ONNX; the message says by which route and why."""


def _first_line(exc: BaseException) -> str:
    """The exception's kind and its text on one line, at most 300 characters (Keras puts the cause
    on its second line), without terminal colour codes."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", x).strip() for x in str(exc).splitlines()]
    return f"{type(exc).__name__}: {' '.join(x for x in lines if x)[:300]}"


def register_tf_handlers() -> None:
    """Teach tf2onnx the ops of ``TF_HANDLERS`` (idempotent)."""
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    if _REGISTERED:
        return
    _REGISTERED.append("Log1p")

    @tf_op("Log1p")
    class _Log1p:
        @classmethod
        def version_1(cls, ctx, node, **kwargs):
            dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
            one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype))
            add = ctx.make_node(
                "Add", [node.input[0], one.output[0]], name=utils.make_name(f"{node.name}_add")
            )
            ctx.replace_inputs(node, [add.output[0]])
            node.type = "Log"


@contextlib.contextmanager
def tf_bilinear_upsampling():
    """While active, ``keras.layers.UpSampling2D`` resizes bilinearly (channels last) by
    ``tf.image.resize`` at the traced, possibly dynamic, size; other settings are unchanged."""
    import keras
    import tensorflow as tf

    layer = keras.layers.UpSampling2D
    original = layer._resize_images

    def resize(self, x, height_factor, width_factor, data_format, interpolation="nearest"):
        if interpolation != "bilinear" or data_format != "channels_last":
            return original(self, x, height_factor, width_factor, data_format, interpolation)
        shape = tf.shape(x)
        size = tf.stack([shape[1] * height_factor, shape[2] * width_factor])
        return tf.image.resize(x, size, method="bilinear", antialias=False)

    layer._resize_images = resize
    try:
        yield
    finally:
        layer._resize_images = original


@contextlib.contextmanager
def _quiet_tf2onnx():
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _keras_export(net, path: Path, opset: int | None) -> None:
    net.export(str(path), format="onnx", verbose=False, opset_version=opset)


def _tf2onnx_export(net, path: Path, opset: int | None) -> None:
    import tensorflow as tf
    import tf2onnx

    with contextlib.suppress(ImportError):  # numpy 2 names that tf2onnx still uses
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        patch_tf2onnx()
    spec = tf.TensorSpec(net.inputs[0].shape, tf.float32, name=net.inputs[0].name or "blurred")
    with tf_bilinear_upsampling():
        function = tf.function(lambda x: net(x, training=False), input_signature=[spec])
        tf2onnx.convert.from_function(
            function, input_signature=[spec], opset=opset, output_path=str(path)
        )


def name_dimensions(path: Path) -> dict:
    """Give the dynamic dimensions of the file's input and output the names ``DIM_NAMES``, check
    the model with ``onnx.checker`` and return {"opset", "input", "output"} as the file has them."""
    import onnx

    model = onnx.load(str(path))
    for value in [*model.graph.input, *model.graph.output]:
        for dim, name in zip(value.type.tensor_type.shape.dim, DIM_NAMES):
            if not dim.HasField("dim_value"):
                dim.dim_param = name
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

    def shape(value):
        return [
            d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value.type.tensor_type.shape.dim
        ]

    return {
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "input": {"name": model.graph.input[0].name, "shape": shape(model.graph.input[0])},
        "output": {"name": model.graph.output[0].name, "shape": shape(model.graph.output[0])},
    }


def convert(net, path, opset: int | None = None) -> dict:
    """Write the one-input, one-output Keras network ``net`` (TensorFlow backend) as ONNX at
    ``path``: Keras' exporter, else tf2onnx directly. Returns the route taken ("exporter",
    "fallback_reason"), the tf2onnx handlers added, and the file's opset, input and output."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConvertError(
            f"the ONNX export runs on the TensorFlow backend (Keras' exporter and tf2onnx read "
            f"TensorFlow graphs); this process runs {keras.backend.backend()}: unset KERAS_BACKEND "
            "or set KERAS_BACKEND=tensorflow."
        )
    path = Path(path)
    register_tf_handlers()
    net(np.zeros((1, *[d or 32 for d in net.inputs[0].shape[1:]]), np.float32), training=False)
    route = {"exporter": "keras.Model.export(format='onnx') (tf2onnx inside)"}
    with _quiet_tf2onnx():
        try:
            _keras_export(net, path, opset)
        except Exception as exc:  # noqa: BLE001 - any failure of Keras' route: try tf2onnx's
            path.unlink(missing_ok=True)
            route = {
                "exporter": "tf2onnx.convert.from_function, UpSampling2D by tf.image.resize",
                "fallback_reason": f"Keras' exporter failed: {_first_line(exc)}",
            }
            try:
                _tf2onnx_export(net, path, opset)
            except Exception as second:  # noqa: BLE001
                path.unlink(missing_ok=True)
                raise ConvertError(
                    f"{net.name} could not be exported: Keras' exporter ({_first_line(exc)}), "
                    f"then tf2onnx ({_first_line(second)})"
                ) from second
    if not path.exists():
        raise ConvertError(f"{net.name}: the exporter wrote no file at {path}")
    return {**route, "tf2onnx_handlers_added": dict(TF_HANDLERS), **name_dimensions(path)}


def versions() -> dict:
    """The versions of the converters and the runtime, for the record."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "tf2onnx", "onnx", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            out[package] = version(package)
    return out
