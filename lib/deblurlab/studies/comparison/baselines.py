"""Classical deconvolution baselines with the TRUE blur kernel of each image (non-blind).

The CIFAR test set records the σ of every image (``study.test_sigmas``), so the exact kernel that
blurred it can be rebuilt: the normalised gaussian of ``deblurlab.data.blur``, cut at ±3σ, whose
2-D form is the outer product of the 1-D one. Knowing the kernel is information the networks never
get, so these baselines are an upper reference for classical methods, not a fair blind contest.

- ``wiener``: skimage.restoration.wiener, one ``balance`` (tuned on the validation split).
- ``unsupervised_wiener``: skimage.restoration.unsupervised_wiener, which estimates its own noise
  and prior levels by Gibbs sampling (nothing to tune; seeded, so it is reproducible).
- ``richardson_lucy``: skimage.restoration.richardson_lucy's iteration, ``num_iter`` tuned on the
  validation split. By default it runs batched (``engine="batched"``): the same multiplicative
  update, with the same zero-padded 'same' convolutions, computed by FFT for every image of a
  kernel size at once; the tests check it against skimage's function image by image. skimage's
  own function (``engine="skimage"``) gives the same numbers, several times slower.

Every image is deconvolved channel by channel after reflect-padding, and cropped back; the result
is clipped to [0, 1]. The pad is ``PAD_FACTOR`` (2) kernel radii: skimage's Wiener filter is
circular and its Richardson–Lucy pads with zeros, so the outermost radius of the padded image is
modelled wrongly, and a second radius keeps that error out of the image itself (one radius leaves
visible ringing at the borders; ``padding_effect`` measures the difference on validation images).
A σ whose kernel is a delta (σ < 1/3 with the cut at ±3σ) leaves the image unchanged, since
deconvolving by a delta is the identity.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import fft as sfft
from skimage import restoration

from ...core import metrics as M
from ...data.blur import TRUNCATE, gaussian_kernels, kernel_radius

WIENER = "Wiener"
UNSUPERVISED_WIENER = "unsupervised Wiener"
RICHARDSON_LUCY = "Richardson–Lucy"

PAD_FACTOR = 2.0  # reflect-pad by this many kernel radii before deconvolving

# The small grids searched on the validation split, one parameter a method.
DEFAULT_GRIDS = {
    WIENER: {"balance": [3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]},
    # 40 iterations is the cap: in a trial on 400 validation images, 80 lowered the MSE by < 0.2%
    # at twice the cost.
    RICHARDSON_LUCY: {"num_iter": [5, 10, 20, 40]},
    UNSUPERVISED_WIENER: {},
}


def true_psfs(sigmas) -> list[np.ndarray]:
    """The 2-D kernels that ``data.blur.gaussian_blur`` applies for ``sigmas``, trimmed to their
    support.

    Each is the outer product of ``gaussian_kernels``' 1-D kernel (zero beyond ±3σ), so it sums to
    1; a σ below 1/3 gives the 1×1 delta ``[[1.0]]``.
    """
    sigmas = np.asarray(sigmas, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(sigmas)) or np.any(sigmas < 0):
        bad = sigmas[~(np.isfinite(sigmas) & (sigmas >= 0))]
        raise ValueError(f"sigmas must be finite and >= 0, got {bad[:3]}")
    if len(sigmas) == 0:
        return []
    radius = max(kernel_radius(), int(math.ceil(TRUNCATE * float(sigmas.max()))) + 1)
    kernels = gaussian_kernels(sigmas, radius=radius).astype(np.float64)
    psfs = []
    for k in kernels:
        support = np.flatnonzero(k > 0)
        k = k[support[0] : support[-1] + 1]
        psfs.append(np.outer(k, k))
    return psfs


def true_psf(sigma: float) -> np.ndarray:
    """The 2-D kernel of one σ (see ``true_psfs``)."""
    return true_psfs([sigma])[0]


def is_delta(psf: np.ndarray) -> bool:
    """Whether ``psf`` is the 1x1 delta kernel (no blur to undo)."""
    return psf.size == 1


def _wiener(padded, psf, balance, seed):
    return np.stack(
        [restoration.wiener(padded[..., c], psf, balance) for c in range(padded.shape[-1])], -1
    )


def _unsupervised_wiener(padded, psf, seed):
    out = []
    for c in range(padded.shape[-1]):
        rng = np.random.default_rng(np.append(np.atleast_1d(seed), c).astype(np.int64))
        out.append(restoration.unsupervised_wiener(padded[..., c], psf, rng=rng)[0])
    return np.stack(out, -1)


def _richardson_lucy(padded, psf, num_iter, seed):
    # One call for all channels: a kernel of depth 1 convolves each channel on its own, so this is
    # exactly the per-channel result, with a third of the Python overhead.
    return restoration.richardson_lucy(padded, psf[:, :, None], num_iter=int(num_iter))


def _same_convolver(shape, kernels):
    """A function computing scipy.signal.convolve(x, kernel, mode="same") by FFT for a batch
    (n, C, H, W) with one (k, k) kernel per image (zero padding beyond the frame, as scipy's)."""
    height, width = shape
    k = kernels.shape[-1]
    size = (
        sfft.next_fast_len(height + k - 1, real=True),
        sfft.next_fast_len(width + k - 1, real=True),
    )
    spectrum = sfft.rfft2(kernels, s=size)[:, None]  # (n, 1, ., .)
    start = (k - 1) // 2

    def convolve(x):
        full = sfft.irfft2(sfft.rfft2(x, s=size) * spectrum, s=size)
        return full[..., start : start + height, start : start + width]

    return convolve


def richardson_lucy_batched(padded: np.ndarray, kernels: np.ndarray, num_iter: int) -> np.ndarray:
    """skimage.restoration.richardson_lucy (filter_epsilon=None, clip=True) for a batch of padded
    images (n, H, W, C), image i with ``kernels[i]`` (all k x k), every channel on its own."""
    # float32, as skimage computes for float32 images
    image = np.moveaxis(np.asarray(padded, dtype=np.float32), -1, 1)  # (n, C, H, W)
    kernels = np.asarray(kernels, dtype=np.float32)
    forward = _same_convolver(image.shape[-2:], kernels)
    backward = _same_convolver(image.shape[-2:], kernels[:, ::-1, ::-1])
    estimate = np.full(image.shape, 0.5, dtype=np.float32)
    eps = np.float32(1e-12)  # as skimage, against division by zero
    for _ in range(int(num_iter)):
        estimate *= backward(image / (forward(estimate) + eps))
    return np.moveaxis(np.clip(estimate, -1.0, 1.0), 1, -1)


def _richardson_lucy_all(images, psfs, num_iter, pad_factor) -> np.ndarray:
    """Batched Richardson–Lucy over images grouped by kernel size: pad, deconvolve, crop, clip."""
    out = np.array(images, dtype=np.float32, copy=True)  # delta kernels keep the input
    height, width = images.shape[1:3]
    sizes = np.array([psf.shape[0] for psf in psfs])
    for k in np.unique(sizes[sizes > 1]):
        idx = np.flatnonzero(sizes == k)
        r = int(math.ceil(pad_factor * (k // 2)))
        padded = np.pad(images[idx], ((0, 0), (r, r), (r, r), (0, 0)), mode="reflect")
        restored = richardson_lucy_batched(padded, np.stack([psfs[i] for i in idx]), num_iter)
        out[idx] = np.clip(restored[:, r : r + height, r : r + width], 0.0, 1.0)
    return out


_METHODS = {
    WIENER: _wiener,
    UNSUPERVISED_WIENER: _unsupervised_wiener,
    RICHARDSON_LUCY: _richardson_lucy,
}


def method_names() -> list[str]:
    """The names of the classical baselines, in table order."""
    return list(_METHODS)


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise KeyError(f"unknown baseline {method!r}; choose one of {', '.join(_METHODS)}")


def deconvolve_image(
    image: np.ndarray,
    sigma: float,
    method: str,
    seed=0,
    psf=None,
    pad_factor: float = PAD_FACTOR,
    **params,
) -> np.ndarray:
    """Deconvolve one (H, W, C) image in [0, 1] blurred with ``sigma``: pad, per channel, crop,
    clip.

    ``psf`` (default: ``true_psf(sigma)``) is the 2-D kernel; the reflect pad is ``pad_factor``
    kernel radii; ``seed`` (an int or a sequence of ints) seeds the unsupervised Wiener sampler.
    """
    _check_method(method)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"expected one (H, W, C) image, got shape {image.shape}")
    psf = (true_psf(sigma) if psf is None else np.asarray(psf)).astype(np.float32)
    if is_delta(psf):
        return image.copy()  # deconvolving by a delta is the identity
    if not pad_factor >= 0:
        raise ValueError(f"pad_factor must be >= 0 kernel radii, got {pad_factor!r}")
    r = int(math.ceil(pad_factor * (psf.shape[0] // 2)))
    height, width = image.shape[:2]
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="reflect")
    restored = _METHODS[method](padded, psf, seed=seed, **params)[r : r + height, r : r + width]
    return np.clip(restored, 0.0, 1.0).astype(np.float32)


def default_workers() -> int:
    """Worker processes for deconvolving a set: the CPU count, between 1 and 8."""
    return max(1, min(8, os.cpu_count() or 1))


def deconvolve(
    images: np.ndarray,
    sigmas,
    method: str,
    workers: int | None = None,
    seed: int = 0,
    pad_factor: float = PAD_FACTOR,
    engine: str = "batched",
    **params,
) -> np.ndarray:
    """Deconvolve a batch (N, H, W, C), image i with its own true kernel of ``sigmas[i]``.

    Wiener and unsupervised Wiener run image by image through skimage, spread over a thread pool;
    the result does not depend on ``workers`` (each image's sampler is seeded by (seed, i,
    channel)). Richardson–Lucy runs batched unless ``engine="skimage"``.
    """
    _check_method(method)
    images = np.asarray(images)
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    if images.ndim != 4 or len(images) != len(sigmas):
        raise ValueError(
            f"need (N, H, W, C) images and N sigmas, got images {images.shape} and "
            f"{len(sigmas)} sigmas"
        )
    if method in (WIENER, RICHARDSON_LUCY):
        missing = set(DEFAULT_GRIDS[method]) - set(params)
        if missing:
            raise TypeError(
                f"{method} needs the parameter(s) {', '.join(sorted(missing))}: tune them "
                "with baselines.tune() on the validation split"
            )
    if engine not in ("batched", "skimage"):
        raise ValueError(f"engine must be 'batched' or 'skimage', got {engine!r}")
    psfs = true_psfs(sigmas)
    if method == RICHARDSON_LUCY and engine == "batched" and len(images):
        if not pad_factor >= 0:
            raise ValueError(f"pad_factor must be >= 0 kernel radii, got {pad_factor!r}")
        return _richardson_lucy_all(images.astype(np.float32), psfs, params["num_iter"], pad_factor)

    def work(i):
        return deconvolve_image(
            images[i],
            sigmas[i],
            method,
            seed=[seed, i],
            psf=psfs[i],
            pad_factor=pad_factor,
            **params,
        )

    workers = workers or default_workers()
    if workers == 1 or len(images) < 2:
        out = [work(i) for i in range(len(images))]
    else:
        with ThreadPoolExecutor(workers) as pool:
            out = list(pool.map(work, range(len(images))))
    return np.stack(out) if out else np.zeros_like(images, dtype=np.float32)


_LOWER_IS_BETTER = {"mse": True, "psnr": False, "ssim": False}


@dataclass
class TuneResult:
    """One baseline's tuning: the chosen ``params``, the ``metric`` it minimised and the
    score of every grid value (``scores``)."""

    method: str
    params: dict
    metric: str
    scores: pd.DataFrame = field(
        repr=False
    )  # one row per grid value: the parameter(s) and the score

    def describe(self) -> str:
        """One line: the chosen parameter values and how many were compared."""
        if not self.params:
            return f"{self.method}: nothing to tune"
        chosen = ", ".join(f"{k} = {v:g}" for k, v in self.params.items())
        return (
            f"{self.method}: {chosen} "
            f"(best validation {self.metric.upper()} of {len(self.scores)} values)"
        )


def tune(
    restore: Callable[..., np.ndarray],
    param: str,
    values,
    blurred,
    sharp,
    sigmas,
    metric: str = "mse",
    method: str = "",
) -> TuneResult:
    """Pick the value of ``param`` whose restorations score best on a validation set.

    ``restore(blurred, sigmas, **{param: value})`` returns restored images; the score is the mean
    per-image ``metric`` (mse: lower is better; psnr, ssim: higher). Ties go to the earlier value.
    """
    if metric not in _LOWER_IS_BETTER:
        raise ValueError(f"metric must be one of {', '.join(_LOWER_IS_BETTER)}, got {metric!r}")
    values = list(values)
    if not values:
        raise ValueError(f"the grid of {param!r} is empty: give at least one value")
    score_fn = {"mse": M.mse_per_image, "psnr": M.psnr_per_image, "ssim": M.ssim_per_image}[metric]
    rows = []
    for value in values:
        restored = restore(blurred, sigmas, **{param: value})
        rows.append({param: value, metric: float(np.mean(score_fn(restored, sharp)))})
    scores = pd.DataFrame(rows)
    col = scores[metric].to_numpy()
    best = int(np.argmin(col) if _LOWER_IS_BETTER[metric] else np.argmax(col))
    chosen = values[best]
    chosen = chosen.item() if isinstance(chosen, np.generic) else chosen
    return TuneResult(method, {param: chosen}, metric, scores)


def tune_baselines(
    blurred,
    sharp,
    sigmas,
    grids: dict | None = None,
    metric: str = "mse",
    workers: int | None = None,
) -> dict[str, TuneResult]:
    """Tune every baseline on a validation set (blurred, sharp, sigmas); one parameter per method.

    Returns method -> ``TuneResult``."""
    grids = DEFAULT_GRIDS if grids is None else grids
    tuned = {}
    for method in method_names():
        grid = grids.get(method, {})
        if not grid:
            tuned[method] = TuneResult(method, {}, metric, pd.DataFrame())
            continue
        if len(grid) != 1:
            raise ValueError(
                f"the grid of {method} must name exactly one parameter, got {list(grid)}"
            )
        ((param, values),) = grid.items()

        def restore(images, sig, _method=method, **params):
            return deconvolve(images, sig, _method, workers=workers, **params)

        tuned[method] = tune(restore, param, values, blurred, sharp, sigmas, metric, method)
    return tuned


def run_baselines(
    images, sigmas, tuned: dict[str, TuneResult], workers: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Restore ``images`` with every tuned baseline: {method: restored images}."""
    return {
        method: deconvolve(images, sigmas, method, workers=workers, seed=seed, **result.params)
        for method, result in tuned.items()
    }


def padding_effect(
    blurred,
    sharp,
    sigmas,
    tuned: dict[str, TuneResult],
    factors=(1.0, PAD_FACTOR),
    workers: int | None = None,
) -> pd.DataFrame:
    """Mean MSE of each tuned baseline with reflect pads of ``factors`` kernel radii: one row a
    method."""
    rows = []
    for method, result in tuned.items():
        row = {"method": method}
        for factor in factors:
            restored = deconvolve(
                blurred, sigmas, method, workers=workers, pad_factor=factor, **result.params
            )
            row[f"pad {factor:g}r MSE"] = float(np.mean(M.mse_per_image(restored, sharp)))
        rows.append(row)
    return pd.DataFrame(rows)
