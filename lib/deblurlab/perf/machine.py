"""The machine: CPU flags, Keras backend and device, measured matmul and bandwidth peaks.

Peaks are timed through ``keras.ops``, so they measure the backend that the models run on.
TensorFlow and JAX are imported only when that is the backend.
"""

from __future__ import annotations

from .clock import time_calls

PEAK_DTYPES = {"cpu": ("float32", "bfloat16"), "gpu": ("float32", "bfloat16", "float16")}
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni", "avx_vnni")


def cpu_flags() -> dict:
    """Which of ``CPU_FLAGS`` /proc/cpuinfo lists (all False where there is none)."""
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {flag: flag in flags for flag in CPU_FLAGS}


def backend() -> str:
    """The Keras backend in use: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    import keras

    return keras.backend.backend()


def versions() -> dict:
    """Keras's version and the backend's, by package name."""
    import keras

    out = {"keras": keras.__version__}
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
    elif name == "jax":
        import jax

        out["jax"] = jax.__version__
    elif name == "torch":
        import torch

        out["torch"] = torch.__version__
    return out


def detect_device() -> str:
    """``"gpu"`` when the Keras backend computes on a GPU, else ``"cpu"``."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    if name == "jax":
        import jax

        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    if name == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    return "cpu"


def gpu_memory_growth() -> None:
    """TensorFlow: let a process take GPU memory as it needs it, not the whole card at start-up."""
    if backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised
            pass


def reset_gpu_peak() -> None:
    """Restart the GPU's peak-memory counter where the backend has one (TensorFlow)."""
    if backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")


def peak_gpu_mb() -> float | None:
    """Peak GPU memory of this process (MB), or None where the backend does not say."""
    name = backend()
    if name == "tensorflow":
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    if name == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return None if peak is None else peak / 2**20
    if name == "torch":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    return None


def fetch(out) -> float:
    """One element of ``out`` (the last of a list) as a float: waits for the device to finish."""
    import keras

    if isinstance(out, (list, tuple)):
        out = out[-1]
    corner = out[(0,) * len(out.shape)] if len(out.shape) else out
    return float(keras.ops.convert_to_numpy(keras.ops.cast(corner, "float32")))


def _random(n_rows: int, n_cols: int, dtype: str, seed: int):
    import keras
    import numpy as np

    values = np.random.default_rng(seed).random((n_rows, n_cols), dtype=np.float32)
    return keras.ops.cast(keras.ops.convert_to_tensor(values), dtype)


def matmul_peak(dtype: str, n: int, window_s: float, repeats: int) -> dict:
    """Median FLOP/s of an ``n x n`` by ``n x n`` ``keras.ops.matmul`` in ``dtype``.

    Returns: ``flops_per_s``, ``n`` and every window's FLOP/s (``samples_flops_per_s``).
    """
    import keras

    a, b = _random(n, n, dtype, 0), _random(n, n, dtype, 1)
    timing = time_calls(lambda: keras.ops.matmul(a, b), window_s, repeats, warmup=2, sync=fetch)
    flops = 2.0 * n**3
    return {
        "flops_per_s": flops / timing["median_s"],
        "n": n,
        "samples_flops_per_s": [flops / s for s in timing["samples_s"]],
    }


def matmul_peak_gflops(n: int = 2048, repeats: int = 7) -> float:
    """This machine's fp32 matmul GFLOP/s: the median of ``repeats`` single timed calls after two
    untimed ones (``matmul_peak`` with one call a window)."""
    return matmul_peak("float32", n, window_s=0.0, repeats=repeats)["flops_per_s"] / 1e9


def memory_bandwidth(elems: int, window_s: float, repeats: int) -> dict:
    """Median bytes/s of ``keras.ops.add`` on two float32 vectors of ``elems`` elements
    (2 reads + 1 write each). Returns: ``bytes_per_s`` and ``elements``."""
    import keras

    a = keras.ops.ones((elems,), "float32")
    b = keras.ops.ones((elems,), "float32")
    timing = time_calls(lambda: keras.ops.add(a, b), window_s, repeats, warmup=2, sync=fetch)
    return {"bytes_per_s": 3 * 4 * elems / timing["median_s"], "elements": elems}


def machine_peaks(device: str, opts: dict, earlier: dict | None = None) -> dict:
    """Matmul FLOP/s per dtype and the add bandwidth.

    Args: ``device``; ``opts`` (``matmul_n``, ``bandwidth_elems``, ``window_s``, ``repeats``);
    ``earlier``: the first pass (the run measures at its start and again at its end). Each figure
    is then the higher of the two passes' medians: a peak is a ceiling, and a busy machine only
    ever lowers it. Returns: one entry per dtype, ``bandwidth`` and the machine balance.
    """
    n = opts["matmul_n"] * (4 if device == "gpu" else 1)
    peaks = {
        dtype: matmul_peak(dtype, n, opts["window_s"], opts["repeats"])
        for dtype in PEAK_DTYPES[device]
    }
    peaks["bandwidth"] = memory_bandwidth(
        opts["bandwidth_elems"], opts["window_s"], opts["repeats"]
    )
    if earlier:
        for key in (*PEAK_DTYPES[device], "bandwidth"):
            unit = "bytes_per_s" if key == "bandwidth" else "flops_per_s"
            passes = [earlier[key][unit], peaks[key][unit]]
            peaks[key] = {**peaks[key], unit: max(passes), "passes": passes}
    for dtype in PEAK_DTYPES[device]:
        gflops = peaks[dtype]["flops_per_s"] / 1e9
        print(f"  matmul {dtype:9s} n={n}: {gflops:8.1f} GFLOP/s", flush=True)
    print(
        f"  memory bandwidth (add): {peaks['bandwidth']['bytes_per_s'] / 1e9:.1f} GB/s", flush=True
    )
    if device == "gpu":
        peaks["note"] = (
            "float32 matmul on an Ampere+ GPU uses TF32 tensor cores unless TF32 is disabled"
        )
    balance = peaks["float32"]["flops_per_s"] / peaks["bandwidth"]["bytes_per_s"]
    peaks["machine_balance_flop_per_byte"] = balance
    return peaks


def package_version(package: str) -> str | None:
    """The installed version of ``package`` (or of ``<package>-cpu``), None where neither is."""
    from importlib.metadata import PackageNotFoundError, version

    for name in (package, f"{package}-cpu"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None
