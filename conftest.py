"""Test session set-up for both the unit tests and nbval.

Outputs go to a temporary folder so that a test or smoke run never overwrites the report's
figures and tables, and notebooks run at the smoke size.
"""
import os
import tempfile

os.environ.setdefault("DEBLURLAB_PROFILE", "smoke")
os.environ.setdefault("DEBLURLAB_OUTPUT_DIR", tempfile.mkdtemp(prefix="deblurlab-test-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
