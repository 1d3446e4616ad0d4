"""The layer check that the GPU script runs first, on the backend of this test session."""

import numpy as np
import pytest

from deblurlab.training import backend_check as B

pytestmark = pytest.mark.jax  # part of the JAX subset too


def test_layers_match_the_tensorflow_golden_file():
    diffs = B.check_golden()
    assert set(diffs) == set(B._cases())
    assert max(diffs.values()) <= B.ATOL


def test_a_wrong_output_is_caught(tmp_path):
    stored = dict(np.load(B.GOLDEN))
    stored["conv2d_transpose/output"] = stored["conv2d_transpose/output"] + 1e-2
    bad = tmp_path / "golden.npz"
    np.savez(bad, **stored)
    assert B.check_golden(bad)["conv2d_transpose"] == pytest.approx(1e-2, rel=1e-3)
    assert B.main(["--golden", str(bad)]) == 1


def test_a_missing_golden_file_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="backend_check --make"):
        B.check_golden(tmp_path / "none.npz")
