"""The project's Jupyter kernel: this environment's Python, with TensorFlow's start-up noise kept
out of notebook outputs (``capture_fd_output=False`` leaves C-level stderr on the terminal)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "deblurlab"
DISPLAY_NAME = "Python (deblurlab)"


def kernel_spec() -> dict:
    """The ``kernel.json`` contents of the ``deblurlab`` Jupyter kernel (this interpreter)."""
    return {
        "argv": [
            sys.executable,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            "--IPKernelApp.capture_fd_output=False",
        ],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "env": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore::DeprecationWarning"},
        "metadata": {"debugger": True},
    }


def ensure_kernel(prefix: str | None = None) -> Path:
    """Install (or refresh) the ``deblurlab`` kernelspec inside this environment; return its
    folder."""
    folder = Path(prefix or sys.prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    spec = kernel_spec()
    path = folder / "kernel.json"
    if not path.exists() or json.loads(path.read_text()) != spec:
        path.write_text(json.dumps(spec, indent=1))
    return folder


if __name__ == "__main__":
    print(f"kernel {KERNEL_NAME!r} installed in {ensure_kernel()}")
