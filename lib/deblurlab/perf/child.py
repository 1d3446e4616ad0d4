"""The parent side of one model's benchmark or tuning in a fresh child process (its own peak
memory, and one failing model does not stop the others)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_model(name: str, settings: dict, timeout_s: float, env: dict | None = None) -> dict:
    """``timing.bench_model`` (or ``tuning.tune_model`` for ``settings["mode"] == "tune"``, the
    ``engines`` workers for "export" and "frame") in a child ``python -m deblurlab.perf
    --worker``; a failure comes back as ``{"name", "error"}``.

    The child inherits the environment, ``KERAS_BACKEND`` included, updated by ``env``.
    """
    with tempfile.TemporaryDirectory(prefix="deblurlab-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "deblurlab.perf",
            "--worker",
            json.dumps({"name": name, **settings}),
            "--out",
            str(out),
        ]
        env = {
            **os.environ,
            "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
            **(env or {}),
        }
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return {
                "name": name,
                "error": f"timed out after {timeout_s:.0f} s (raise --model-timeout)",
            }
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
            return {"name": name, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
        return json.loads(out.read_text())
