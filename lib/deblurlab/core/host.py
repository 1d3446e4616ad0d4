"""This machine as the code sees it without asking a framework for devices: the CPU's name, flags
and vector units, and the Keras backend in use."""

from __future__ import annotations

import platform


def cpu_name() -> str:
    """The CPU's model name, from /proc/cpuinfo or ``platform``."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where unreadable)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features(flags: set[str] | None = None) -> str:
    """The vector units that decide CPU speed: "AVX2", "AVX-512", "AVX-512 + bf16", "... + AMX"."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return platform.machine()
    base = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    extra = [name for flag, name in (("avx512_bf16", "bf16"), ("amx_bf16", "AMX")) if flag in flags]
    return " + ".join([base, *extra])


def keras_backend() -> str:
    """The Keras backend in use: "tensorflow", "jax" or "torch"."""
    import keras

    return keras.backend.backend()
