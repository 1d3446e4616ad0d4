"""Progressive gaussian blur: every image gets its own standard deviation sigma ~ U(0, 3).

One implementation, in numpy (float32), serves both the fixed test set and the training stream:
a separable correlation with one normalised kernel per image, truncated at +-3 sigma, with
reflected borders. sigma = 0 gives a delta kernel, so the image comes back unchanged. It gives
the values of the TensorFlow implementation it replaced (tests/data/blur_golden.npz).
"""

from __future__ import annotations

import math

import numpy as np

from .stream import Stream

MAX_SIGMA = 3.0
TRUNCATE = 3.0  # the kernel covers +-3 sigma
TEST_SEED = 20240601  # the held-out set is blurred once with this seed, for every model


def kernel_radius(max_sigma: float = MAX_SIGMA) -> int:
    """The half-width in pixels of the kernels for sigmas up to ``max_sigma`` (+-3 sigma)."""
    return int(math.ceil(TRUNCATE * max_sigma))


def gaussian_kernels(sigmas, radius: int | None = None) -> np.ndarray:
    """Normalised 1-D kernels of shape (B, 2r+1), zero beyond +-3 sigma; sigma = 0 is a delta."""
    radius = kernel_radius() if radius is None else radius
    sigmas = np.asarray(sigmas, np.float32).reshape(-1, 1)
    x = np.arange(-radius, radius + 1, dtype=np.float32)[None, :]
    safe = np.maximum(sigmas, np.float32(1e-6))
    weights = np.exp(np.float32(-0.5) * np.square(x / safe))
    weights = np.where(np.abs(x) <= TRUNCATE * sigmas + np.float32(1e-6), weights, np.float32(0))
    weights = np.where(sigmas > 0, weights, (x == 0).astype(np.float32))
    return weights / weights.sum(axis=1, keepdims=True, dtype=np.float32)


def _filter_axis(images: np.ndarray, kernels: np.ndarray, axis: int) -> np.ndarray:
    """Correlate each image of (B, H, W, C) with its own 1-D kernel along axis 1 or 2 ('valid')."""
    size = kernels.shape[1]
    length = images.shape[axis] - (size - 1)
    out = np.zeros_like(np.take(images, np.arange(length), axis=axis))
    for k in range(size):
        taps = np.take(images, np.arange(k, k + length), axis=axis)
        out += taps * kernels[:, k, None, None, None]
    return out


def gaussian_blur(images, sigmas, max_sigma: float = MAX_SIGMA) -> np.ndarray:
    """Blur a batch (B, H, W, C) in [0, 1], image b with standard deviation ``sigmas[b]``.

    Returns float32 (B, H, W, C). Raises ValueError for a sigma outside [0, max_sigma].
    """
    images = np.asarray(images, np.float32)
    sigmas = np.asarray(sigmas, np.float32).reshape(-1)
    if np.any(sigmas > max_sigma + 1e-6):
        raise ValueError(f"sigma above max_sigma={max_sigma}: {sigmas.max()}")
    if np.any(sigmas < 0):
        raise ValueError(f"sigma must be >= 0: {sigmas.min()}")
    radius = kernel_radius(max_sigma)
    kernels = np.asarray(gaussian_kernels(sigmas, radius))
    padded = np.pad(images, [(0, 0), (radius, radius), (radius, radius), (0, 0)], mode="reflect")
    return _filter_axis(_filter_axis(padded, kernels, axis=2), kernels, axis=1)


def draw_sigmas(n: int, seed, max_sigma: float = MAX_SIGMA) -> np.ndarray:
    """``n`` float32 sigmas drawn uniformly from [0, max_sigma) with ``seed``."""
    return np.random.default_rng(seed).uniform(0.0, max_sigma, size=n).astype(np.float32)


def blur_in_batches(images: np.ndarray, sigmas: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """``gaussian_blur`` of ``images`` (image i with ``sigmas[i]``), ``batch_size`` images
    at a time; returns float32 (N, H, W, C)."""
    out = [
        np.asarray(gaussian_blur(images[i : i + batch_size], sigmas[i : i + batch_size]))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out) if out else images.copy()


def make_blurred_set(sharp: np.ndarray, seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Blur a fixed set once, reproducibly: returns (blurred, sigmas)."""
    sigmas = draw_sigmas(len(sharp), seed)
    return blur_in_batches(sharp, sigmas), sigmas


def training_stream(
    sharp: np.ndarray, batch_size: int, seed: int, first_epoch: int, last_epoch: int
) -> tuple[Stream, int]:
    """Batches of (blurred, sharp) for epochs [first_epoch, last_epoch), one stream for all.

    Each epoch's order and sigmas are a pure function of (seed, epoch), so a run resumed at
    epoch k sees exactly the batches an uninterrupted run would. Returns (stream, steps/epoch):
    a ``keras.utils.PyDataset`` of numpy float32 batches (``data.stream.Stream``).
    """
    steps = len(sharp) // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {len(sharp)} training images")
    index, sigma = [], []
    for epoch in range(first_epoch, last_epoch):
        rng = np.random.default_rng([seed, epoch])
        index.append(rng.permutation(len(sharp))[: steps * batch_size])
        sigma.append(rng.uniform(0.0, MAX_SIGMA, steps * batch_size).astype(np.float32))
    index = np.concatenate(index) if index else np.zeros(0, np.int64)
    sigma = np.concatenate(sigma) if sigma else np.zeros(0, np.float32)
    images = np.asarray(sharp, np.float32)

    def make_pair(i, part=slice(None)):
        batch = np.arange(i * batch_size, (i + 1) * batch_size)[part]
        target = images[index[batch]]
        return np.asarray(gaussian_blur(target, sigma[batch])), target

    return Stream(len(index) // batch_size, steps, make_pair, rows=batch_size), steps
