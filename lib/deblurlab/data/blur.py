"""Progressive gaussian blur: every image gets its own standard deviation sigma ~ U(0, 3).

One implementation, in TensorFlow ops, serves both the fixed test set and the training stream:
a separable convolution with one normalised kernel per image, truncated at +-3 sigma, with
reflected borders. sigma = 0 gives a delta kernel, so the image comes back unchanged.
"""
from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

MAX_SIGMA = 3.0
TRUNCATE = 3.0  # the kernel covers +-3 sigma
TEST_SEED = 20240601  # the held-out set is blurred once with this seed, for every model


def kernel_radius(max_sigma: float = MAX_SIGMA) -> int:
    return int(math.ceil(TRUNCATE * max_sigma))


def gaussian_kernels(sigmas, radius: int | None = None) -> tf.Tensor:
    """Normalised 1-D kernels of shape (B, 2r+1), zero beyond +-3 sigma; sigma = 0 is a delta."""
    radius = kernel_radius() if radius is None else radius
    sigmas = tf.reshape(tf.cast(sigmas, tf.float32), (-1, 1))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    safe = tf.maximum(sigmas, 1e-6)
    weights = tf.exp(-0.5 * tf.square(x / safe))
    weights = tf.where(tf.abs(x) <= TRUNCATE * sigmas + 1e-6, weights, 0.0)
    delta = tf.cast(tf.equal(x, 0.0), tf.float32)
    weights = tf.where(sigmas > 0, weights, delta)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _filter_axis(images: tf.Tensor, kernels: tf.Tensor, axis: int) -> tf.Tensor:
    """Correlate each image of (B, H, W, C) with its own 1-D kernel along axis 1 or 2."""
    size = kernels.shape[1]
    length = tf.shape(images)[axis] - (size - 1)
    taps = [tf.gather(images, tf.range(i, i + length), axis=axis) for i in range(size)]
    return tf.einsum("bhwck,bk->bhwc", tf.stack(taps, axis=-1), kernels)


def gaussian_blur(images, sigmas, max_sigma: float = MAX_SIGMA) -> tf.Tensor:
    """Blur a batch (B, H, W, C) in [0, 1], image b with standard deviation ``sigmas[b]``."""
    images = tf.convert_to_tensor(images, tf.float32)
    sigmas = tf.convert_to_tensor(sigmas, tf.float32)
    tf.debugging.assert_less_equal(sigmas, max_sigma + 1e-6, message="sigma above max_sigma")
    tf.debugging.assert_greater_equal(sigmas, 0.0, message="sigma must be >= 0")
    radius = kernel_radius(max_sigma)
    kernels = gaussian_kernels(sigmas, radius)
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    rows = _filter_axis(padded, kernels, axis=2)
    return _filter_axis(rows, kernels, axis=1)


def draw_sigmas(n: int, seed, max_sigma: float = MAX_SIGMA) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, max_sigma, size=n).astype(np.float32)


def blur_in_batches(images: np.ndarray, sigmas: np.ndarray, batch_size: int = 512) -> np.ndarray:
    out = [gaussian_blur(images[i:i + batch_size], sigmas[i:i + batch_size]).numpy()
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else images.copy()


def make_blurred_set(sharp: np.ndarray, seed: int = TEST_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Blur a fixed set once, reproducibly: returns (blurred, sigmas)."""
    sigmas = draw_sigmas(len(sharp), seed)
    return blur_in_batches(sharp, sigmas), sigmas


def training_stream(sharp: np.ndarray, batch_size: int, seed: int, first_epoch: int,
                    last_epoch: int) -> tuple[tf.data.Dataset, int]:
    """Batches of (blurred, sharp) for epochs [first_epoch, last_epoch), one dataset for all.

    Each epoch's order and sigmas are a pure function of (seed, epoch), so a run resumed at
    epoch k sees exactly the batches an uninterrupted run would. Returns (dataset, steps/epoch).
    """
    steps = len(sharp) // batch_size
    if steps == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the {len(sharp)} training images")
    index, sigma = [], []
    for epoch in range(first_epoch, last_epoch):
        rng = np.random.default_rng([seed, epoch])
        index.append(rng.permutation(len(sharp))[: steps * batch_size])
        sigma.append(rng.uniform(0.0, MAX_SIGMA, steps * batch_size).astype(np.float32))
    images = tf.constant(sharp, tf.float32)

    def make_pair(idx, sig):
        target = tf.gather(images, idx)
        return gaussian_blur(target, sig), target

    ds = tf.data.Dataset.from_tensor_slices((np.concatenate(index), np.concatenate(sigma)))
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(make_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps
