import numpy as np
import pytest
from skimage.metrics import structural_similarity

from deblurlab.core import metrics as M


def test_mse_and_psnr_by_hand():
    target = np.zeros((2, 16, 16, 3))
    pred = target.copy()
    pred[0] += 0.1  # MSE 0.01 -> PSNR 20 dB
    pred[1] += 0.01  # MSE 1e-4 -> PSNR 40 dB
    np.testing.assert_allclose(M.mse_per_image(pred, target), [0.01, 1e-4])
    np.testing.assert_allclose(M.psnr_per_image(pred, target), [20.0, 40.0])
    summary = M.image_metrics(pred, target)
    assert summary["psnr"] == pytest.approx(30.0)  # mean of per-image PSNR, not PSNR of mean MSE
    assert summary["mse"] == pytest.approx(0.00505)


def test_identical_images_score_the_cap():
    x = np.random.default_rng(0).random((3, 16, 16, 3))
    assert np.all(M.psnr_per_image(x, x) == M.PSNR_CAP_DB)
    np.testing.assert_allclose(M.ssim_per_image(x, x), 1.0)


def test_ssim_uses_the_stated_convention():
    rng = np.random.default_rng(1)
    a, b = rng.random((16, 16, 3)), rng.random((16, 16, 3))
    expected = structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )
    assert M.ssim_per_image(a, b)[0] == pytest.approx(expected)
    # the default (uniform 7x7, sample covariance) gives a different number: the convention matters
    assert structural_similarity(a, b, data_range=1.0, channel_axis=-1) != pytest.approx(expected)


def test_ssim_of_a_constant_shift_by_hand():
    # With gaussian weights and population covariance, a constant shift d of a constant image c
    # gives SSIM = (2 c (c + d) + C1) / (c^2 + (c + d)^2 + C1) exactly (structure term is 1).
    c, d, c1 = 0.5, 0.1, (0.01 * 1.0) ** 2
    a = np.full((16, 16, 3), c)
    expected = (2 * c * (c + d) + c1) / (c**2 + (c + d) ** 2 + c1)
    assert M.ssim_per_image(a + d, a)[0] == pytest.approx(expected)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        M.image_metrics(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 5, 3)))
