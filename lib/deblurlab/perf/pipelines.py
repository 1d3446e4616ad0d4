"""The chapters' data pipelines timed alone: the CIFAR blur stream and the REDS patch sampler."""

from __future__ import annotations

import inspect
import statistics
import time

CIFAR_SIZE = (32, 32, 3)


def endless_batches(stream):
    """The batches of a training stream, over and over, in the order ``model.fit`` reads them.

    Args: a ``tf.data.Dataset`` or a ``keras.utils.PyDataset`` (or any iterable of batches).
    Returns: an endless iterator.
    """
    if hasattr(stream, "element_spec") and hasattr(stream, "repeat"):  # tf.data
        return iter(stream.repeat())
    import keras

    if isinstance(stream, keras.utils.PyDataset) and stream.workers > 1:
        # Keras's own reader, with its worker pool (a private module: fall back to indexing)
        try:
            from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter
        except ImportError:
            PyDatasetAdapter = None
        if PyDatasetAdapter is not None:

            def epochs():
                while True:
                    adapter = PyDatasetAdapter(stream, shuffle=False)
                    adapter.on_epoch_begin()
                    yield from adapter.get_numpy_iterator()
                    adapter.on_epoch_end()

            return epochs()

    def again():
        while True:
            count = 0
            for batch in stream:
                count += 1
                yield batch
            if hasattr(stream, "on_epoch_end"):
                stream.on_epoch_end()
            if not count:
                raise ValueError("the training stream holds no batch")

    return again()


def bench_blur_stream(batch_size: int, n_images: int, window_s: float, repeats: int) -> dict:
    """Batches/s that ``data.blur.training_stream`` produces alone (random images of CIFAR's size).

    Args: the batch, how many random images, the window length and count. Returns: batches/s,
    images/s, every window's sample and a note.
    """
    import numpy as np

    from ..data.blur import training_stream

    sharp = np.random.default_rng(0).random((n_images, *CIFAR_SIZE), dtype=np.float32)
    stream, _ = training_stream(sharp, batch_size, seed=0, first_epoch=0, last_epoch=4)
    it = endless_batches(stream)
    for _ in range(3):  # warm-up: tracing, and the look-ahead buffer filled
        next(it)
    # Windows of a fixed duration, not of a call count sized from one call: a prefetched batch
    # returns at once, so a single call says nothing about the stream's rate.
    samples = []
    for _ in range(max(1, repeats)):
        count, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < window_s:
            next(it)
            count += 1
        samples.append(count / (time.perf_counter() - t0))
    per_s = statistics.median(samples)
    return {
        "batch_size": batch_size,
        "batches_per_s": per_s,
        "images_per_s": per_s * batch_size,
        "samples_batches_per_s": samples,
        "stream": type(stream).__name__,
        "note": f"{n_images} random images of {CIFAR_SIZE}; the stream alone, not beside a model; "
        "windows of a fixed duration",
    }


def bench_reds_patches(quick: bool, batch_size: int, patch_size: int) -> dict:
    """Batches/s of the REDS/GoPro patch sampler (``data.patches.benchmark_sampler``), if it exists.

    Returns: the sampler's result with its ``source``, or ``{"skipped": why}``.
    """
    try:
        from ..data import patches
    except ImportError as err:
        return {"skipped": f"lib/deblurlab/data/patches.py is not there ({err}); not measured"}
    fn = getattr(patches, "benchmark_sampler", None)
    if not callable(fn):
        return {"skipped": "deblurlab.data.patches has no benchmark_sampler(); not measured"}
    wanted = dict(
        batches=3 if quick else 10, batch_size=batch_size, patch_size=patch_size, verbose=False
    )
    accepted = inspect.signature(fn).parameters
    try:
        out = fn(**{k: v for k, v in wanted.items() if k in accepted})
    except Exception as err:  # noqa: BLE001 - a missing data set must not stop the benchmark
        return {"skipped": f"data.patches.benchmark_sampler() failed: {type(err).__name__}: {err}"}
    out = dict(out) if isinstance(out, dict) else {"result": out}
    out.setdefault("batch_size", batch_size)
    source = "deblurlab.data.patches.benchmark_sampler (one timed window after a warm-up batch)"
    return {"source": source, **out}


def bench_pipelines(models: list[str], plans: dict, opts: dict, quick: bool) -> dict:
    """The CIFAR blur stream and the REDS patch sampler, each timed alone, at the models' batch.

    Args: the model names, their ``plans`` (input shape, batch), the run's ``opts`` and ``quick``.
    Returns: ``cifar_blur_stream`` and ``reds_patches`` results (or why each was skipped).
    """
    from ..models import get_spec

    cifar = [m for m in models if get_spec(m).dataset == "cifar10"]
    motion = [m for m in models if m not in cifar]
    pipelines = {}
    if cifar:  # every CIFAR model trains at the default profile's one batch size
        stream = bench_blur_stream(
            plans[cifar[0]]["batch_size"], opts["stream_images"], opts["window_s"], opts["repeats"]
        )
        print(
            f"  CIFAR blur stream (batch {stream['batch_size']}): "
            f"{stream['batches_per_s']:.1f} batches/s",
            flush=True,
        )
    else:
        stream = {"skipped": "no CIFAR model selected"}
    pipelines["cifar_blur_stream"] = stream
    if motion:
        plan = plans[motion[0]]
        reds = bench_reds_patches(quick, plan["batch_size"], plan["input_shape"][0])
    else:
        reds = {"skipped": "no motion model selected"}
    pipelines["reds_patches"] = reds
    if "skipped" in reds:
        print(f"  REDS patch sampler: skipped: {reds['skipped']}", flush=True)
    else:
        print(
            f"  REDS patch sampler (batch {reds['batch_size']}, {reds.get('patch_size')}px): "
            f"{reds['batches_per_s']:.2f} batches/s on {reds.get('data', '?')}",
            flush=True,
        )
    return pipelines
