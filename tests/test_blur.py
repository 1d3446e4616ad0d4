import numpy as np
import pytest

from deblurlab.data.blur import (MAX_SIGMA, gaussian_blur, gaussian_kernels, kernel_radius,
                                 make_blurred_set, training_stream)


def images(n=4, size=32, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def test_sigma_zero_is_identity():
    x = images()
    np.testing.assert_array_equal(gaussian_blur(x, np.zeros(len(x))).numpy(), x)


def test_kernels_are_normalised_and_cut_at_three_sigma():
    sigmas = np.array([0.0, 0.2, 0.5, 1.0, 2.0, 3.0], np.float32)
    k = gaussian_kernels(sigmas).numpy()
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
    np.testing.assert_allclose(gaussian_blur(x, [1.5, 3.0]).numpy(), 0.4, atol=1e-6)


def test_blur_grows_with_sigma():
    x = images(1)
    errors = [np.mean((gaussian_blur(x, [s]).numpy() - x) ** 2) for s in (0.5, 1.0, 2.0, 3.0)]
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


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_training_stream_redraws_each_epoch_and_resumes_exactly():
    x = images(8)
    full, steps = training_stream(x, batch_size=4, seed=1, first_epoch=0, last_epoch=3)
    assert steps == 2
    full = batches(full)
    assert len(full) == 6
    assert not np.allclose(full[0][0], full[2][0])  # epoch 1 differs from epoch 0
    resumed = batches(training_stream(x, batch_size=4, seed=1, first_epoch=2, last_epoch=3)[0])
    for (a, b), (c, d) in zip(full[4:], resumed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
