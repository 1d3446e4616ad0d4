"""Timing one model through Keras on any backend, and the chapters' small speed helpers.

Training is ``model.fit`` exactly as ``train.compile_for_deblurring`` sets it up (Adam, MSE, the
PSNR metric, ``steps_per_execution``) on one constant batch, so no data pipeline is in the
measurement; inference is one compiled call of ``model(x, training=False)`` (``tf.function`` on
TensorFlow, ``jax.jit`` of ``stateless_call`` on JAX).
"""

from __future__ import annotations

import json
import statistics
import time

from . import machine
from .clock import cpu_seconds, epoch_timer, maxrss_mb, rss_mb, time_calls


def constant_batches(model, x, y):
    """A never-ending source of the one batch ``(x, targets)`` for ``model.fit``.

    Args: a compiled ``model`` and numpy ``x``, ``y``. Returns: a repeated ``tf.data`` dataset on
    TensorFlow, a Python generator on the other backends; the targets are resized to every
    output of a multi-scale model (``train.multi_scale_targets``).
    """
    import keras

    from ..training.train import multi_scale_targets

    pair = multi_scale_targets(model)(x, y)
    pair = keras.tree.map_structure(keras.ops.convert_to_numpy, pair)
    if machine.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors(pair).repeat().prefetch(tf.data.AUTOTUNE)

    def forever():
        while True:
            yield pair

    return forever()


def inference_fn(model, jit: bool):
    """``(call, to_device)``: a compiled ``model(images, training=False)`` and a function that
    puts a numpy batch where the model computes. ``jit`` is XLA on TensorFlow; JAX always jits."""
    name = machine.backend()
    if name == "tensorflow":
        import tensorflow as tf

        call = tf.function(lambda images: model(images, training=False), jit_compile=bool(jit))
        return call, tf.identity
    if name == "jax":
        import jax

        @jax.jit
        def run(trainable, fixed, images):
            return model.stateless_call(trainable, fixed, images, training=False)[0]

        def call(images):  # the variables' values now: a later fit donates the older buffers
            trainable = [v.value for v in model.trainable_variables]
            fixed = [v.value for v in model.non_trainable_variables]
            return run(trainable, fixed, images)

        return call, jax.device_put
    import keras

    return (lambda images: model(images, training=False)), keras.ops.convert_to_tensor


def build_for_timing(
    name: str,
    input_shape,
    batch_size: int,
    precision: str = "float32",
    steps_per_execution: int = 1,
    jit: bool | None = None,
) -> dict:
    """One model built, compiled as training compiles it, with its constant batch.

    Args: the model ``name`` and its sizes, the Keras dtype ``precision``, ``steps_per_execution``,
    ``jit`` (XLA on/off on TensorFlow; None: Keras's choice; JAX always compiles). Returns:
    ``model``, ``data``, ``x`` (numpy), ``batch``, ``spe``, ``jit_compile``.
    """
    import keras
    import numpy as np

    from ..models import build_model
    from ..training.profiles import TrainConfig
    from ..training.train import compile_for_deblurring, set_seeds

    keras.mixed_precision.set_global_policy(precision)
    set_seeds(0)
    model = build_model(name, input_shape=tuple(input_shape))
    spe = max(1, int(steps_per_execution))
    compile_for_deblurring(
        model, TrainConfig(epochs=1, batch_size=batch_size, steps_per_execution=spe)
    )
    if jit is not None and machine.backend() == "tensorflow":
        model.jit_compile = bool(jit)
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *input_shape), dtype=np.float32)
    y = rng.random((batch_size, *input_shape), dtype=np.float32)
    return dict(
        model=model,
        data=constant_batches(model, x, y),
        x=x,
        batch=batch_size,
        spe=spe,
        jit_compile=bool(model.jit_compile),
    )


def bench_model(
    name: str,
    input_shape,
    batch_size: int,
    precision: str = "float32",
    steps_per_execution: int = 1,
    jit: bool | None = None,
    repeats: int = 5,
    window_s: float = 1.0,
    budget_s: float = 60.0,
    overhead_probe: bool = True,
) -> dict:
    """Time one model in this process (``cli.run_model`` runs it in a child process).

    Args: as ``build_for_timing``, plus ``repeats`` windows of about ``window_s`` seconds within
    ``budget_s``, and ``overhead_probe`` (also time batch 1 for the fixed per-call cost).
    Returns: the model's benchmark row (speeds with every window's sample, FLOPs, memory).
    """
    t_start = time.perf_counter()
    import keras

    from ..models import get_spec
    from . import flops

    device = machine.detect_device()
    if device == "gpu":
        machine.gpu_memory_growth()
        machine.reset_gpu_peak()
    rss_before = rss_mb()
    built = build_for_timing(name, input_shape, batch_size, precision, steps_per_execution, jit)
    model, data, spe = built["model"], built["data"], built["spe"]
    stats = flops.count(model)
    forward = stats["flops"]

    # training: a warm-up execution (tracing), then timed fit epochs (the windows)
    timer = epoch_timer()
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=spe, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    warmup_s = time.perf_counter() - t0

    def train_window(steps):
        model.fit(
            data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False, callbacks=[timer]
        )
        return timer.seconds[-1] / steps

    step_s = max(train_window(spe), 1e-6)
    train_samples = [batch_size / step_s] if step_s * spe >= window_s / 2 else []
    # inference costs about a third of training per image: leave it a third of what is left
    left = max(budget_s - (time.perf_counter() - t_start), 0.0) * 0.65
    steps = max(spe, int(round(min(window_s, left / max(repeats, 1)) / step_s / spe)) * spe)
    n_windows = max(3, min(repeats, int(left // (steps * step_s))))
    while len(train_samples) < n_windows:
        train_samples.append(batch_size / train_window(steps))

    infer, to_device = inference_fn(model, built["jit_compile"])
    xt = to_device(built["x"])
    left = max(budget_s - (time.perf_counter() - t_start), 0.0)
    infer_timing = time_calls(
        lambda: infer(xt), window_s, repeats, warmup=1, sync=machine.fetch, budget_s=left * 0.8
    )
    infer_samples = [batch_size / s for s in infer_timing["samples_s"]]
    overhead = None
    if overhead_probe and batch_size > 1:
        left = max(budget_s - (time.perf_counter() - t_start), 0.0)
        x1 = to_device(built["x"][:1])
        one = time_calls(
            lambda: infer(x1), window_s / 2, 3, warmup=1, sync=machine.fetch, budget_s=left
        )
        t1, tb = one["median_s"], infer_timing["median_s"]
        fixed = max((batch_size * t1 - tb) / (batch_size - 1), 0.0)
        overhead = {"batch1_s": t1, "batch_s": tb, "fixed_s": fixed, "share": min(fixed / tb, 1.0)}

    spec = get_spec(name)
    result = {
        "name": name,
        "dataset": spec.dataset,
        "family": spec.family,
        "input_shape": list(input_shape),
        "batch_size": batch_size,
        "precision": precision,
        "steps_per_execution": spe,
        "jit_compile": built["jit_compile"],
        "device": device,
        "backend": keras.backend.backend(),
        "params": int(model.count_params()),
        "forward_flops_per_image": forward,
        "flops_method": flops.METHOD,
        "traffic": stats,
        "train_images_per_s": statistics.median(train_samples),
        "train_images_per_s_samples": train_samples,
        "train_steps_per_window": steps,
        "train_step_s": batch_size / statistics.median(train_samples),
        "first_execution_s": warmup_s,
        "infer_images_per_s": statistics.median(infer_samples),
        "infer_images_per_s_samples": infer_samples,
        "infer_calls_per_window": infer_timing["calls_per_window"],
        "overhead": overhead,
        "peak_rss_mb": maxrss_mb(),
        "base_rss_mb": rss_before,
        "model_rss_mb": maxrss_mb() - rss_before,
        "seconds": time.perf_counter() - t_start,
        "cpu_seconds": cpu_seconds(),
    }
    if device == "gpu":
        result["peak_gpu_mb"] = machine.peak_gpu_mb()
    return result


# --- the chapters' speed helpers (the comparison chapter's cost table)


def inference_images_per_second(model, images, repeats: int = 3, batch_size: int = 256) -> float:
    """Images per second of ``model.predict`` on ``images``: the median of ``repeats`` timed calls
    after one warm-up call."""
    import numpy as np

    model.predict(images, batch_size=batch_size, verbose=0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(images, batch_size=batch_size, verbose=0)
        times.append(time.perf_counter() - start)
    return len(images) / float(np.median(times))


def training_setup(result) -> dict | None:
    """How a run trained (``compute.ComputeSetup.record``), from the saved state of ``result``
    (a ``train.TrainResult``); None if unknown."""
    try:
        setup = json.loads((result.run_dir / "state.json").read_text()).get("compute")
    except (OSError, ValueError, TypeError):
        return None
    return setup if isinstance(setup, dict) else None  # runs from before the record was kept


def training_images_per_second(study, name: str, result) -> float | None:
    """Training images seen per second of training: epochs x images an epoch / train seconds.

    Args: a CIFAR ``study``, the model ``name`` and its ``train.TrainResult``. An epoch sees
    ``steps x batch_size`` of the images the profile trains ``name`` on (all, or the profile's
    cap; the remainder batch is dropped); the seconds are the run's recorded epoch times, which
    include the per-epoch validation pass. Returns: images/s, or None without recorded seconds.
    """
    if not result.train_seconds:
        return None
    batch = study.plan.train_config(name).batch_size
    images = len(study.splits.train[: study.plan.train_images(name)])
    per_epoch = (images // batch) * batch
    return result.epochs_run * per_epoch / result.train_seconds
