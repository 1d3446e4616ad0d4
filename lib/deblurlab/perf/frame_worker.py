"""The worker side of ``python -m deblurlab.perf --frame`` (``deblurlab.perf.frame``): the
variants it times, the reference path (``deblur_image`` before the per-size cache) and the loop a
worker process runs (``python -m deblurlab.perf --frame-worker SETTINGS``), answering one JSON
line (after ``MARK``) a request.
"""

from __future__ import annotations

import json
import sys
import time
import weakref
from pathlib import Path

import numpy as np

MODEL = "srndeblur_reds"
MARK = "@@frame "
PEAK_N = 2048
ALTERNATING = ("before", "default")  # the variants also timed on portrait-landscape pairs

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}
VARIANTS = {
    "before": dict(
        group="main",
        text="deblur_image before the per-size cache (the reference): predict_on_batch, its "
        "predict function traced again whenever the frame size changes",
    ),
    "default": dict(
        group="main",
        text="inference.deblur_image as shipped: predict_on_batch, one traced predict function "
        "kept per frame size, the whole frame in one call (up to MAX_PIXELS)",
    ),
    "eager": dict(group="main", text="the eager Keras call on the whole frame (run_model)"),
    "xla": dict(
        group="main",
        text="predict_on_batch with the model's jit_compile=True (XLA), traced per size",
        backend="tensorflow",
    ),
    "tiles_512": dict(
        group="main",
        tile=512,
        text="deblur_image(tile=512): 512x512 tiles overlapping by 2 x 32 px, cross-faded",
    ),
    "onnxruntime": dict(
        group="main",
        text="the model exported by deblurlab.training.onnx_convert, through onnxruntime (its "
        "default threads) and deblur_image",
    ),
    "inter_op_1": dict(
        group="inter_op_1",
        env={"TF_NUM_INTEROP_THREADS": "1"},
        text="the default path, TensorFlow's inter-op threads set to 1 (intra-op: all cores)",
        backend="tensorflow",
    ),
    "one_thread": dict(
        group="one_thread",
        env=ONE_THREAD,
        text="the default path on one thread (TensorFlow intra- and inter-op threads 1)",
        backend="tensorflow",
    ),
    "mixed_bfloat16": dict(
        group="mixed_bfloat16",
        policy="mixed_bfloat16",
        text="the default path under Keras' mixed_bfloat16 policy (bf16 compute, fp32 weights)",
    ),
}

# ------------------------------------------------------------------------------ the reference

_PREVIOUS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> last traced size


def previous_predict_batch(model, batch: np.ndarray) -> np.ndarray:
    """``inference.predict_batch`` as it was before the per-size cache: one predict function a
    model, traced again whenever the image size changes. Kept as the benchmark's reference."""
    from ..training.inference import _finest

    batch = np.asarray(batch, np.float32)
    if _PREVIOUS.get(model) != batch.shape[1:]:
        model.predict_function = None
        _PREVIOUS[model] = batch.shape[1:]
    return _finest(model.predict_on_batch(batch))


def previous_deblur_image(model, image: np.ndarray) -> np.ndarray:
    """A whole any-size frame the way ``deblur_image`` restored it before: padded by reflection,
    ``previous_predict_batch``, cropped back, clipped."""
    from ..training.inference import network_multiple, pad_to_multiple

    padded, (h, w) = pad_to_multiple(np.asarray(image, np.float32), network_multiple(model))
    return np.clip(previous_predict_batch(model, padded[None])[0][:h, :w], 0.0, 1.0)


# ---------------------------------------------------------------------------------- workers


def _runner(label: str, weights, tmp: Path):
    """(a function image -> restored image, what it needs to know) for variant ``label``."""
    import keras

    from ..models import build_model
    from ..training import inference

    spec = VARIANTS[label]
    if spec.get("policy"):
        keras.config.set_dtype_policy(spec["policy"])
    model = build_model(MODEL, input_shape=(None, None, 3))
    model.set_weights(weights)
    if label == "before":
        return lambda image: previous_deblur_image(model, image)
    if label == "eager":

        def eager(image):
            padded, (h, w) = inference.pad_to_multiple(image, inference.network_multiple(model))
            return np.clip(inference.run_model(model, padded)[:h, :w], 0.0, 1.0)

        return eager
    if label == "xla":
        model.jit_compile = True
    if label == "onnxruntime":
        from ..deblur.export import inference_network
        from ..training import onnx_engine
        from ..training.onnx_convert import convert

        path = tmp / f"{MODEL}.onnx"
        convert(inference_network(model), path)
        model = onnx_engine.OnnxModel(path, {"model": MODEL, "required_multiple": 8})
    tile = spec.get("tile")
    return lambda image: inference.deblur_image(model, image, tile=tile)


def _reply(message: dict) -> None:
    print(MARK + json.dumps(message, default=float), flush=True)


def _versions() -> dict:
    from .machine import package_version, versions

    return {**versions(), "onnxruntime": package_version("onnxruntime")}


def worker_loop(settings: dict) -> None:
    """A worker (``python -m deblurlab.perf --frame-worker JSON``): builds its variants, warms
    them up, then answers one JSON request a line on stdin with one timing on stdout."""
    import keras

    from ..models import build_model
    from .clock import maxrss_mb
    from .machine import matmul_peak

    image = np.load(settings["frame"])
    portrait = np.ascontiguousarray(image.transpose(1, 0, 2))
    outputs = Path(settings["outputs"])
    keras.utils.set_random_seed(0)
    weights = build_model(MODEL, input_shape=(None, None, 3)).get_weights()
    runners, ready = {}, {}
    for label in settings["variants"]:
        start = time.perf_counter()
        run = runners[label] = _runner(label, weights, outputs)
        setup = time.perf_counter() - start
        start = time.perf_counter()
        np.save(outputs / f"{label}.npy", run(image))
        ready[label] = {"setup_s": setup, "first_s": time.perf_counter() - start}
        if label in ALTERNATING:  # both sizes warm; the last call is the landscape frame's
            run(portrait)
            run(image)
    _reply({"ready": ready, "peak_rss_mb": maxrss_mb(), "versions": _versions()})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("flops"):
            from .flops import count

            model = build_model(MODEL, input_shape=(None, None, 3))
            _reply({"flops": count(model, tuple(image.shape))["flops"]})
            continue
        if request.get("peak"):
            peak = matmul_peak("float32", settings.get("peak_n", PEAK_N), 0.5, 3)
            _reply({"flops_per_s": peak["flops_per_s"]})
            continue
        run = runners[request["variant"]]
        frames = [image] if request["scenario"] == "frame" else [portrait, image]
        start = time.perf_counter()
        for frame in frames:
            run(frame)
        _reply({"s": time.perf_counter() - start})
