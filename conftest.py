"""Test session set-up for both the unit tests and nbval.

Outputs go to a temporary folder so that a test or smoke run never overwrites the report's
figures and tables, and notebooks run at the smoke size. With ``$DEBLURLAB_TEST_OUTPUT`` set
(``make test`` sets it), each pytest-xdist worker writes to its own subfolder of it, so that the
report can be built afterwards from what the smoke-size notebooks produced.
"""
import os
import tempfile

os.environ.setdefault("DEBLURLAB_PROFILE", "smoke")
if os.environ.get("DEBLURLAB_TEST_OUTPUT"):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    os.environ.setdefault("DEBLURLAB_OUTPUT_DIR", os.path.join(os.environ["DEBLURLAB_TEST_OUTPUT"], worker))
os.environ.setdefault("DEBLURLAB_OUTPUT_DIR", tempfile.mkdtemp(prefix="deblurlab-test-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
