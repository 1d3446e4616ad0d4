"""Test session set-up for both the unit tests and nbval.

Outputs go to a temporary folder so that a test or smoke run never overwrites the report's
figures and tables, and notebooks run at the smoke size. With ``$DEBLURLAB_TEST_OUTPUT`` set
(``make test`` sets it), each pytest-xdist worker writes to its own subfolder of it (gw0, gw1, ...;
"main" without xdist), so that the report can be built afterwards from what the smoke-size
notebooks produced, and two workers never share a training run.

With ``DEBLURLAB_BLOCK_TF=1`` TensorFlow cannot be imported (``tests/block_tf.py``): ``make test``
runs the tests marked ``jax`` so, with ``KERAS_BACKEND=jax``, as in a venv without TensorFlow.
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("DEBLURLAB_PROFILE", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
import block_tf  # noqa: E402 - needs tests/ on the path

block_tf.install()


def pytest_configure(config):
    # Here, not at import: xdist names the worker (config.workerinput) only once it is configured.
    # $DEBLURLAB_TEST_OUTPUT wins over an inherited $DEBLURLAB_OUTPUT_DIR: workers start with the
    # controller's environment.
    base = os.environ.get("DEBLURLAB_TEST_OUTPUT")
    if base:
        worker = getattr(config, "workerinput", {}).get("workerid", "main")
        os.environ["DEBLURLAB_OUTPUT_DIR"] = os.path.join(base, worker)
    elif "DEBLURLAB_OUTPUT_DIR" not in os.environ:
        os.environ["DEBLURLAB_OUTPUT_DIR"] = tempfile.mkdtemp(prefix="deblurlab-test-")
