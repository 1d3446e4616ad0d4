"""Where a number came from: data, profile, compute, Keras backend, date, commit, machine."""

from __future__ import annotations

import datetime as _dt
import os
import subprocess

from ..core.host import cpu_features, cpu_name
from ..core.paths import REPO_ROOT


def git_commit() -> str:
    """The checkout's short commit hash (``+changes`` appended if tracked files changed), or
    ``unknown``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return sha + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def backend() -> str:
    """The Keras backend in use, with its version: e.g. "Keras 3.15.1 on TensorFlow 2.21.0"."""
    import importlib.metadata as metadata

    import keras

    name = keras.backend.backend()
    try:
        version = " " + metadata.version(name)
    except metadata.PackageNotFoundError:  # e.g. tensorflow-cpu: ask the module
        version = f" {getattr(__import__(name), '__version__', '')}".rstrip()
    return f"Keras {keras.__version__} on {BACKEND_NAMES.get(name, name)}{version}"


def machine() -> str:
    """One line: the CPU, its features, the core count and any GPUs."""
    from .compute import gpu_devices

    names = [gpu["name"] for gpu in gpu_devices()]
    accel = f"GPU: {', '.join(names)}" if names else "no GPU"
    return f"{cpu_name()} ({cpu_features()}), {os.cpu_count()} cores, {accel}"


def today() -> str:
    """The current local date and time, ``YYYY-MM-DD HH:MM``."""
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def provenance(data_source: str, profile: str) -> dict:
    """What a result rests on: ``data_source``, ``profile``, compute, backend, date, commit and
    machine."""
    from .compute import current

    return {
        "data": data_source,
        "profile": profile,
        "compute": current().arithmetic(),
        "backend": backend(),
        "date": today(),
        "commit": git_commit(),
        "machine": machine(),
    }
