"""The benchmark's records: where they live, their schema and their method texts.

Imports no Keras or TensorFlow: the report reads records through here.
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA = "deblurlab.bench/1"  # kept: records written before the package carry it too
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")

METHODS = {
    "timing": (
        "median over timed windows after warm-up; training = model.fit on one constant batch "
        "(compile_for_deblurring: Adam, MSE, PSNR metric), one window = one fit epoch; "
        "inference = one compiled model(x, training=False) (tf.function on TensorFlow, "
        "jax.jit of stateless_call on JAX) called repeatedly on one batch"
    ),
    "flops": (
        "forward_flops_per_image: analytic count (deblurlab.perf.flops.count), 2 FLOPs per "
        "multiply-add of Conv1D/2D/3D (transposed, depthwise, separable), Dense, ConvLSTM and "
        "LSTM/GRU layers, once per call at the shapes of one forward pass (shared layers count "
        "at every call, a composite layer's conv sublayers at theirs). BatchNorm, activations, "
        "adds, concatenations and resizes count 0 FLOPs; traffic holds the same count"
    ),
    "achieved": (
        "training FLOP/s = 3 x forward FLOPs x train img/s; "
        "inference FLOP/s = forward FLOPs x infer img/s"
    ),
    "peak": (
        "median FLOP/s of a square keras.ops.matmul (2 n^3 FLOPs) per dtype over windows after "
        "warm-up, measured at the start and at the end of the run; the higher median is the peak"
    ),
    "bandwidth": (
        "median bytes/s of keras.ops.add on two large float32 vectors (2 reads + 1 write each)"
    ),
    "memory_time_share": (
        "roofline estimate of the share of a forward pass spent in memory-bound "
        "layers: (their bytes / bandwidth) / (that + conv/dense FLOPs / fp32 peak)"
    ),
    "memory": (
        "CPU: peak resident memory (VmHWM of /proc/self/status; ru_maxrss where there is none) "
        "of a fresh child process that benchmarks only this model (peak_rss_mb), and that "
        "minus its resident size after importing the backend, before the model is built "
        "(model_rss_mb); GPU: the backend's peak device memory (peak_gpu_mb)"
    ),
    "traffic": (
        "per image, forward: bytes read and written by every layer call of the model's graph "
        "(activations at their compute dtype) plus the weights once per batch; "
        "arithmetic intensity = FLOPs / traffic"
    ),
    "overhead": (
        "fixed cost per inference call from a straight line through the per-call times at "
        "batch 1 and at the benchmark batch; overhead_share = that cost / the batch's time"
    ),
    "pipeline_headroom": (
        "data batches/s produced (alone) / model training batches/s consumed; < 1 = starving"
    ),
}


def default_out(device: str, tuning: bool = False) -> Path:
    """Where a record goes: the benchmark's in report/results (``bench_<device>.json``); a CPU
    tuning pass's in the package's tuning folder, one file per machine kind, where
    ``deblurlab.runtime.compute`` reads it."""
    from ..core.paths import results_dir
    from ..runtime import compute

    if tuning and device == "cpu":
        return compute.TUNING_DIR / f"{compute.machine_key()}.json"
    return results_dir() / f"bench_{device}{'_tuning' if tuning else ''}.json"


def read(path) -> dict | None:
    """A record, or None where the file is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write(record: dict, path) -> Path:
    """Write ``record`` atomically (a temporary file, then a rename). Returns: the path."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=float))
    os.replace(tmp, path)
    return path


def earlier_tuning(path, device: str) -> dict:
    """The per-model results of an earlier tuning pass on this device (failed models left out)."""
    earlier = read(path) or {}
    if earlier.get("device") != device or "tuning" not in earlier:
        return {}
    return {name: r for name, r in earlier["tuning"].get("models", {}).items() if "error" not in r}


def record_backend(record: dict) -> str:
    """The Keras backend a record was measured on (records from before the key: TensorFlow)."""
    return record.get("backend", "tensorflow")
