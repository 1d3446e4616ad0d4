"""Image-quality metrics, with one stated convention for every table of the study.

- Images are float arrays in [0, 1], shape (N, H, W, C) or (H, W, C), never rounded to 8 bits.
- MSE: mean squared error over all pixels and channels of an image, then the mean over images.
- PSNR: 10 log10(1 / MSE) per image, then the mean over images; an identical pair (MSE = 0) counts
  as ``PSNR_CAP_DB``.
- SSIM: skimage ``structural_similarity`` with gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=-1 (Wang et al. 2004), per image, then
  the mean over images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.metrics import structural_similarity

PSNR_CAP_DB = 100.0
DATA_RANGE = 1.0
SSIM_KWARGS = dict(
    gaussian_weights=True,
    sigma=1.5,
    use_sample_covariance=False,
    data_range=DATA_RANGE,
    channel_axis=-1,
)
CONVENTION = (
    "Metrics on un-rounded float images in [0, 1]: MSE and PSNR per image "
    f"(an identical pair counts as {PSNR_CAP_DB:g} dB), SSIM from skimage with "
    "gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, "
    "channel_axis=-1; each is the mean over images."
)


def _batched(images) -> np.ndarray:
    images = np.asarray(images, dtype=np.float64)
    return images[None] if images.ndim == 3 else images


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) or (H, W, C) images, got shape {a.shape}")


def mse_per_image(pred, target) -> np.ndarray:
    """The MSE of each image of ``pred`` against ``target``: shape (N,)."""
    pred, target = _batched(pred), _batched(target)
    _check(pred, target)
    return np.mean((pred - target) ** 2, axis=(1, 2, 3))


def psnr_per_image(pred, target) -> np.ndarray:
    """The PSNR in dB of each image (``PSNR_CAP_DB`` for an identical pair): shape (N,)."""
    mse = mse_per_image(pred, target)
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(DATA_RANGE**2 / mse)
    return np.where(mse == 0, PSNR_CAP_DB, np.minimum(psnr, PSNR_CAP_DB))


def ssim_per_image(pred, target) -> np.ndarray:
    """The SSIM of each image (skimage, ``SSIM_KWARGS``): shape (N,)."""
    pred, target = _batched(pred), _batched(target)
    _check(pred, target)
    return np.array([structural_similarity(p, t, **SSIM_KWARGS) for p, t in zip(pred, target)])


def per_image_metrics(pred, target) -> dict[str, np.ndarray]:
    """MSE, PSNR and SSIM of each image: ``{"mse": ..., "psnr": ..., "ssim": ...}``."""
    return {
        "mse": mse_per_image(pred, target),
        "psnr": psnr_per_image(pred, target),
        "ssim": ssim_per_image(pred, target),
    }


def summarize(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean over images of each metric of ``per_image``."""
    return {name: float(np.mean(values)) for name, values in per_image.items()}


def image_metrics(pred, target) -> dict[str, float]:
    """Mean MSE, PSNR (dB) and SSIM over a batch, under the module's convention."""
    return summarize(per_image_metrics(pred, target))


# Blur-strength bins of the by-sigma tables and plots.
SIGMA_BINS = np.arange(0, 3.01, 0.5)


def metrics_by_sigma(
    sigmas, per_image: dict[str, dict[str, np.ndarray]], bins=SIGMA_BINS
) -> pd.DataFrame:
    """Mean of each metric per sigma bin and method: columns method, bin, n, mse, psnr, ssim."""
    which = np.clip(np.digitize(sigmas, bins) - 1, 0, len(bins) - 2)
    rows = []
    for method, metrics in per_image.items():
        for b in range(len(bins) - 1):
            mask = which == b
            rows.append(
                {
                    "method": method,
                    "σ bin": f"{bins[b]:.1f}–{bins[b + 1]:.1f}",
                    "centre": (bins[b] + bins[b + 1]) / 2,
                    "n": int(mask.sum()),
                    **{
                        m: float(np.mean(metrics[m][mask])) if mask.any() else np.nan
                        for m in ("mse", "psnr", "ssim")
                    },
                }
            )
    return pd.DataFrame(rows)
