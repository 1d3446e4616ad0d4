"""The progressive gaussian blur and the CIFAR training stream (in the JAX subset: numpy only)."""

from pathlib import Path

import keras
import numpy as np
import pytest

from deblurlab.data.blur import (
    MAX_SIGMA,
    gaussian_blur,
    gaussian_kernels,
    kernel_radius,
    make_blurred_set,
    training_stream,
)

pytestmark = pytest.mark.jax
# The TensorFlow implementation's values, made by tests/data/make_blur_golden.py before the blur
# became numpy (that script holds the TensorFlow code).
GOLDEN = Path(__file__).parent / "data" / "blur_golden.npz"


def images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def test_sigma_zero_is_identity():
    x = images()
    np.testing.assert_array_equal(gaussian_blur(x, np.zeros(len(x))), x)


def test_kernels_are_normalised_and_cut_at_three_sigma():
    sigmas = np.array([0.0, 0.2, 0.5, 1.0, 2.0, 3.0], np.float32)
    k = gaussian_kernels(sigmas)
    assert k.shape == (6, 2 * kernel_radius() + 1) and kernel_radius() == 9
    np.testing.assert_allclose(k.sum(axis=1), 1.0, rtol=1e-6)
    offsets = np.abs(np.arange(-9, 10))
    for sigma, row in zip(sigmas, k):
        assert np.all(row[offsets > 3 * sigma + 1e-6] == 0)
        np.testing.assert_allclose(row, row[::-1])  # symmetric
    # hand check for sigma = 1: weights proportional to exp(-x^2 / 2) on -3..3
    expected = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    np.testing.assert_allclose(k[3][6:13], expected / expected.sum(), rtol=1e-5)


def test_constant_image_stays_constant():
    x = np.full((2, 32, 32, 3), 0.4, np.float32)
    np.testing.assert_allclose(gaussian_blur(x, [1.5, 3.0]), 0.4, atol=1e-6)


def test_blur_grows_with_sigma():
    x = images(1)
    errors = [np.mean((gaussian_blur(x, [s]) - x) ** 2) for s in (0.5, 1.0, 2.0, 3.0)]
    assert errors == sorted(errors) and errors[0] > 0


def test_sigma_outside_range_is_rejected():
    with pytest.raises(Exception, match="sigma"):
        gaussian_blur(images(1), [MAX_SIGMA + 1])


def test_test_set_is_reproducible():
    x = images(8)
    a, sa = make_blurred_set(x, seed=3)
    b, sb = make_blurred_set(x, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sa, sb)
    assert np.all((sa >= 0) & (sa <= 3)) and len(np.unique(sa)) == 8


def test_blur_matches_the_tensorflow_implementation():
    with np.load(GOLDEN) as golden:
        np.testing.assert_allclose(gaussian_kernels(golden["sigmas"]), golden["kernels"], atol=1e-6)
        for prefix in ("", "wide_"):
            blurred = gaussian_blur(golden[f"{prefix}images"], golden[f"{prefix}sigmas"])
            assert blurred.dtype == np.float32
            np.testing.assert_allclose(blurred, golden[f"{prefix}blurred"], atol=1e-5)
        assert 0.0 in golden["sigmas"] and 3.0 in golden["sigmas"]


def test_training_stream_gives_the_tensorflow_streams_batches():
    with np.load(GOLDEN) as golden:
        rng = np.random.default_rng(20240601)  # make_blur_golden.py's draws, in its order
        rng.random((6, 24, 24, 3), dtype=np.float32)
        rng.random((3, 12, 18, 3), dtype=np.float32)
        sharp = rng.random((8, 16, 16, 3), dtype=np.float32)
        stream, steps = training_stream(sharp, 4, 1, 0, 3)
        got = batches(stream)
        assert steps == 2 and len(got) == len(golden["stream_x"]) == 6
        for (x, y), gx, gy in zip(got, golden["stream_x"], golden["stream_y"]):
            np.testing.assert_array_equal(y, gy)
            np.testing.assert_allclose(x, gx, atol=1e-5)


def batches(ds):
    return [(np.asarray(x), np.asarray(y)) for x, y in ds]


def test_training_stream_redraws_each_epoch_and_resumes_exactly():
    x = images(8)
    full, steps = training_stream(x, batch_size=4, seed=1, first_epoch=0, last_epoch=3)
    assert steps == 2
    full = batches(full)
    assert len(full) == 6
    assert not np.allclose(full[0][0], full[2][0])  # epoch 1 differs from epoch 0
    resumed = batches(training_stream(x, batch_size=4, seed=1, first_epoch=2, last_epoch=3)[0])
    assert len(resumed) == 2
    for (a, b), (c, d) in zip(full[4:], resumed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_training_stream_is_a_pydataset_of_pure_numpy_batches():
    x = images(12, size=16)
    stream, steps = training_stream(x, batch_size=4, seed=2, first_epoch=1, last_epoch=3)
    assert isinstance(stream, keras.utils.PyDataset) and len(stream) == 2 * steps == 6
    first = [np.asarray(part) for part in stream[4]]
    again = [np.asarray(part) for part in training_stream(x, 4, 2, 1, 3)[0][4]]  # out of order
    for a, b in zip(first, again):
        assert a.dtype == np.float32 and a.shape == (4, 16, 16, 3)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError):
        stream[6]
