"""Regenerate ``blur_golden.npz``: the TensorFlow implementation's blur, the reference values
that the backend-neutral ``deblurlab.data.blur`` (numpy) and ``ssim_batch`` are tested against.

It holds the TensorFlow code as it was in ``data/blur.py`` and ``data/patches.py`` before they
became numpy (so it needs TensorFlow, and nothing from the library):

    .venv/bin/python tests/data/make_blur_golden.py      # writes tests/data/blur_golden.npz

Contents: ``images`` (6, 24, 24, 3) and ``sigmas`` (0 and 3 among them) with their ``blurred``
and ``kernels``; ``wide_images``/``wide_sigmas``/``wide_blurred``, a non-square batch;
``stream_x``/``stream_y``, the training stream's 6 batches of 8 images (batch 4, seed 1, epochs
0-2); ``ssim_x``/``ssim_y``/``ssim``, TensorFlow's gaussian-window SSIM of 4 pairs.
"""

import math
from pathlib import Path

import numpy as np
import tensorflow as tf

MAX_SIGMA, TRUNCATE = 3.0, 3.0


def kernel_radius(max_sigma=MAX_SIGMA):
    return int(math.ceil(TRUNCATE * max_sigma))


def gaussian_kernels(sigmas, radius=None):
    radius = kernel_radius() if radius is None else radius
    sigmas = tf.reshape(tf.cast(sigmas, tf.float32), (-1, 1))
    x = tf.range(-radius, radius + 1, dtype=tf.float32)[None, :]
    safe = tf.maximum(sigmas, 1e-6)
    weights = tf.exp(-0.5 * tf.square(x / safe))
    weights = tf.where(tf.abs(x) <= TRUNCATE * sigmas + 1e-6, weights, 0.0)
    delta = tf.cast(tf.equal(x, 0.0), tf.float32)
    weights = tf.where(sigmas > 0, weights, delta)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def _filter_axis(images, kernels, axis):
    size = kernels.shape[1]
    length = tf.shape(images)[axis] - (size - 1)
    taps = [tf.gather(images, tf.range(i, i + length), axis=axis) for i in range(size)]
    return tf.einsum("bhwck,bk->bhwc", tf.stack(taps, axis=-1), kernels)


def gaussian_blur(images, sigmas, max_sigma=MAX_SIGMA):
    images = tf.convert_to_tensor(images, tf.float32)
    sigmas = tf.convert_to_tensor(sigmas, tf.float32)
    radius = kernel_radius(max_sigma)
    kernels = gaussian_kernels(sigmas, radius)
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    return _filter_axis(_filter_axis(padded, kernels, axis=2), kernels, axis=1)


def stream_batches(sharp, batch_size, seed, first_epoch, last_epoch):
    steps = len(sharp) // batch_size
    xs, ys = [], []
    for epoch in range(first_epoch, last_epoch):
        rng = np.random.default_rng([seed, epoch])
        index = rng.permutation(len(sharp))[: steps * batch_size]
        sigma = rng.uniform(0.0, MAX_SIGMA, steps * batch_size).astype(np.float32)
        for b in range(steps):
            target = sharp[index[b * batch_size : (b + 1) * batch_size]]
            xs.append(gaussian_blur(target, sigma[b * batch_size : (b + 1) * batch_size]).numpy())
            ys.append(target)
    return np.stack(xs), np.stack(ys)


def ssim_batch(x, y):
    radius = int(3.5 * 1.5 + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (t / 1.5) ** 2)
    taps = tf.constant((taps / taps.sum()).astype(np.float32))

    def band(length):
        size = taps.shape[0]
        offset = tf.range(length)[:, None] - tf.range(length - size + 1)[None, :]
        inside = (offset >= 0) & (offset < size)
        return tf.where(inside, tf.gather(taps, tf.clip_by_value(offset, 0, size - 1)), 0.0)

    def filt(images):
        shape = tf.shape(images)
        z = tf.einsum("nhwc,wv->nhvc", images, band(shape[2]))
        return tf.einsum("nhwc,hv->nvwc", z, band(shape[1]))

    x, y = tf.constant(x), tf.constant(y)
    n = x.shape[0]
    stack = tf.concat([x, y, x * x, y * y, x * y], axis=0)
    mx, my, mxx, myy, mxy = tf.split(filt(stack), [n] * 5, axis=0)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return tf.reduce_mean(ssim_map, axis=[1, 2, 3]).numpy()


def main():
    rng = np.random.default_rng(20240601)
    images = rng.random((6, 24, 24, 3), dtype=np.float32)
    sigmas = np.array([0.0, 0.3, 1.0, 1.7, 2.5, 3.0], np.float32)
    wide = rng.random((3, 12, 18, 3), dtype=np.float32)
    wide_sigmas = np.array([3.0, 0.05, 1.25], np.float32)
    stream_x, stream_y = stream_batches(rng.random((8, 16, 16, 3), dtype=np.float32), 4, 1, 0, 3)
    ssim_y = rng.random((4, 24, 20, 3), dtype=np.float32)
    ssim_x = gaussian_blur(ssim_y, [0.0, 0.7, 1.5, 3.0]).numpy()
    ssim_x[0] = np.clip(ssim_x[0] + rng.normal(0, 0.05, ssim_x[0].shape), 0, 1)
    out = Path(__file__).with_name("blur_golden.npz")
    np.savez_compressed(
        out,
        images=images,
        sigmas=sigmas,
        blurred=gaussian_blur(images, sigmas).numpy(),
        kernels=gaussian_kernels(sigmas).numpy(),
        wide_images=wide,
        wide_sigmas=wide_sigmas,
        wide_blurred=gaussian_blur(wide, wide_sigmas).numpy(),
        stream_x=stream_x,
        stream_y=stream_y,
        ssim_x=ssim_x,
        ssim_y=ssim_y,
        ssim=ssim_batch(ssim_x, ssim_y),
        tensorflow=np.array(tf.__version__),
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
