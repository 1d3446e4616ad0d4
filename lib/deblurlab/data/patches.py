"""Training patches from high-resolution frames, chosen for visible blur.

The report cuts two 256x256 patches from each training image (batch 10 = 5 images) and, since a
random patch of a motion-blurred frame is often almost sharp (a static, flat region), keeps only
patches whose blurred-vs-sharp SSIM is below 0.9, falling back to random patches when no
candidate qualifies.

Here, for each image, random windows are drawn in rounds of ``patches_per_image``, each round's
SSIM computed in one batched call (``ssim_batch``), until ``patches_per_image`` windows fall below
the threshold or ``tries`` rounds have been drawn; the passing windows are kept in draw order and,
if too few passed, the remaining slots take the first failing windows (random patches). Everything but the image decoding is TensorFlow ops inside a parallel
``tf.data`` map, so the CPU cores prepare the next batches while the model trains.

``ssim_batch`` is a gaussian-window SSIM over a batch that follows skimage's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)``: an 11-tap gaussian (truncated at 3.5 sigma), population
variances, and the mean of the SSIM map after dropping a 5-pixel border (where skimage's filter
would reflect the image), averaged over channels.

    python -m deblurlab.data.patches        # prints the sampler's patches/s (benchmark_sampler)
"""
from __future__ import annotations

import functools
import time

import numpy as np
import tensorflow as tf

from .pairs import FrameSet

SSIM_THRESHOLD = 0.9
PATCH_SIZE = 256
PATCHES_PER_IMAGE = 2
TRIES = 5  # rounds of candidate windows before falling back to random patches
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
_C1, _C2 = 0.01**2, 0.03**2


def gaussian_taps(sigma: float = SSIM_SIGMA, truncate: float = SSIM_TRUNCATE) -> np.ndarray:
    """The 1-D window scipy.ndimage.gaussian_filter uses (radius int(truncate*sigma + 0.5))."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def _band(length: tf.Tensor, taps: tf.Tensor) -> tf.Tensor:
    """(length, length - len(taps) + 1) matrix whose column v holds the taps at rows v..v+10:
    multiplying by it is a 'valid' correlation along one axis, done as one matrix product (far
    faster on a CPU than TensorFlow's depthwise convolution with one channel a group)."""
    size = taps.shape[0]
    offset = tf.range(length)[:, None] - tf.range(length - size + 1)[None, :]
    inside = (offset >= 0) & (offset < size)
    return tf.where(inside, tf.gather(taps, tf.clip_by_value(offset, 0, size - 1)), 0.0)


def _filter(images: tf.Tensor, taps: tf.Tensor) -> tf.Tensor:
    """Separable 'valid' gaussian filtering of (N, H, W, C), each channel on its own."""
    shape = tf.shape(images)
    x = tf.einsum("nhwc,wv->nhvc", images, _band(shape[2], taps))
    return tf.einsum("nhwc,hv->nvwc", x, _band(shape[1], taps))


def ssim_batch(x, y) -> tf.Tensor:
    """SSIM of each pair of a batch: x, y of shape (N, H, W, C) in [0, 1] -> (N,) float32."""
    x = tf.convert_to_tensor(x, tf.float32)
    y = tf.convert_to_tensor(y, tf.float32)
    taps = tf.constant(gaussian_taps())
    stack = tf.concat([x, y, x * x, y * y, x * y], axis=0)
    n = tf.shape(x)[0]
    mx, my, mxx, myy, mxy = tf.split(_filter(stack, taps), [n, n, n, n, n], axis=0)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    ssim_map = ((2 * mx * my + _C1) * (2 * vxy + _C2)) / ((mx * mx + my * my + _C1) * (vx + vy + _C2))
    return tf.reduce_mean(ssim_map, axis=[1, 2, 3])


def ssim_numpy(x, y) -> np.ndarray:
    """``ssim_batch`` for numpy arrays, (N, H, W, C) or (H, W, C)."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    single = x.ndim == 3
    out = ssim_batch(x[None] if single else x, y[None] if single else y).numpy()
    return out[0] if single else out


def _crops(image, ys, xs, patch_size: int, count: int):
    return tf.stack([tf.slice(image, [ys[i], xs[i], 0], [patch_size, patch_size, -1]) for i in range(count)])


def sample_patches(blurred, sharp, seed, patch_size: int = PATCH_SIZE, n_patches: int = PATCHES_PER_IMAGE,
                   tries: int = TRIES, threshold: float | None = SSIM_THRESHOLD):
    """Cut ``n_patches`` windows from one (H, W, C) pair; a pure function of ``seed`` (shape [2]).

    Windows are drawn in rounds of ``n_patches`` random positions, at most ``tries`` rounds,
    stopping as soon as ``n_patches`` of them have an SSIM below ``threshold``. The kept windows
    are the passing ones in draw order, then, if too few passed, the first failing ones (random
    patches). Returns (blurred patches, sharp patches, their SSIM, whether each passed). With
    ``threshold=None`` the first round is returned unfiltered.
    """
    blurred = tf.convert_to_tensor(blurred, tf.float32)
    sharp = tf.convert_to_tensor(sharp, tf.float32)
    seed = tf.cast(seed, tf.int64)
    shape = tf.shape(sharp)
    tf.debugging.assert_greater_equal(tf.reduce_min(shape[:2]), patch_size,
                                      message=f"a frame is smaller than the {patch_size}-pixel patch")
    channels = sharp.shape[-1]

    def draw(round_index):
        round_seed = tf.stack([seed[0], seed[1] + 2 * tf.cast(round_index, tf.int64)])
        ys = tf.random.stateless_uniform([n_patches], round_seed, 0, shape[0] - patch_size + 1, dtype=tf.int32)
        xs = tf.random.stateless_uniform([n_patches], round_seed + [0, 1], 0, shape[1] - patch_size + 1,
                                         dtype=tf.int32)
        cand_b = _crops(blurred, ys, xs, patch_size, n_patches)
        cand_s = _crops(sharp, ys, xs, patch_size, n_patches)
        return cand_b, cand_s, ssim_batch(cand_b, cand_s)

    if threshold is None:
        cand_b, cand_s, ssim = draw(0)
        return cand_b, cand_s, ssim, tf.ones([n_patches], tf.bool)

    def more(r, b, s, v):
        return (r < tries) & (tf.reduce_sum(tf.cast(v < threshold, tf.int32)) < n_patches)

    def another(r, b, s, v):
        nb, ns, nv = draw(r)
        return r + 1, tf.concat([b, nb], 0), tf.concat([s, ns], 0), tf.concat([v, nv], 0)

    empty = tf.zeros([0, patch_size, patch_size, channels], tf.float32)
    patch = tf.TensorShape([None, patch_size, patch_size, channels])
    _, cand_b, cand_s, ssim = tf.while_loop(
        more, another, (tf.constant(0), empty, empty, tf.zeros([0], tf.float32)),
        shape_invariants=(tf.TensorShape([]), patch, patch, tf.TensorShape([None])))
    passed = ssim < threshold
    count = tf.shape(ssim)[0]
    key = tf.where(passed, 0, count) + tf.range(count)  # passing windows first, each group in draw order
    order = tf.argsort(key)[:n_patches]
    return (tf.gather(cand_b, order), tf.gather(cand_s, order), tf.gather(ssim, order),
            tf.gather(passed, order))


@functools.lru_cache(maxsize=None)
def compiled_sampler(patch_size: int, n_patches: int, tries: int, threshold: float | None):
    """``sample_patches`` as one traced function per setting, reused by every dataset in the
    process (tracing it costs seconds; a tf.data map would otherwise retrace it each time)."""
    image = tf.TensorSpec([None, None, 3], tf.float32)

    def sampler(blurred, sharp, seed):
        return sample_patches(blurred, sharp, seed, patch_size, n_patches, tries, threshold)

    return tf.function(sampler, input_signature=[image, image, tf.TensorSpec([2], tf.int64)])


def _loader(frames: FrameSet):
    def load(index):
        blurred, sharp = tf.numpy_function(frames.load, [index], [tf.float32, tf.float32], stateful=False)
        blurred.set_shape([None, None, 3])
        sharp.set_shape([None, None, 3])
        return blurred, sharp

    return load


def _epoch_plan(n_frames: int, images: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (each epoch a fresh permutation, repeated if it must be longer) and one
    sampling seed per image: a pure function of (seed, epoch), so a resumed run sees the same data."""
    rng = np.random.default_rng([seed, epoch])
    order = np.concatenate([rng.permutation(n_frames) for _ in range(-(-images // n_frames))])[:images]
    seeds = rng.integers(0, 2**31 - 1, size=(images, 2), dtype=np.int64)
    return order.astype(np.int64), seeds


def patch_dataset(frames: FrameSet, indices, seeds, patch_size: int = PATCH_SIZE,
                  n_patches: int = PATCHES_PER_IMAGE, tries: int = TRIES,
                  threshold: float | None = SSIM_THRESHOLD, with_ssim: bool = False) -> tf.data.Dataset:
    """Patches (blurred, sharp[, ssim, passed]) of the frames ``indices``, image by image, un-batched."""
    load = _loader(frames)
    sampler = compiled_sampler(patch_size, n_patches, tries, threshold)

    def cut(index, seed):
        blurred, sharp = load(index)
        out = sampler(blurred, sharp, seed)
        return out if with_ssim else out[:2]

    ds = tf.data.Dataset.from_tensor_slices((np.asarray(indices, np.int64), np.asarray(seeds, np.int64)))
    ds = ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.unbatch()


def patch_stream(frames: FrameSet, batch_size: int, seed: int, first_epoch: int, last_epoch: int,
                 patch_size: int = PATCH_SIZE, patches_per_image: int = PATCHES_PER_IMAGE,
                 images_per_epoch: int | None = None, tries: int = TRIES,
                 threshold: float | None = SSIM_THRESHOLD) -> tuple[tf.data.Dataset, int]:
    """Batches of (blurred, sharp) patches for epochs [first_epoch, last_epoch) and the steps per
    epoch, in the shape ``train.train()`` expects from ``make_stream``.

    A batch holds ``batch_size // patches_per_image`` images' patches (the report: 10 = 5 x 2).
    An epoch visits ``images_per_epoch`` frames (default: every training frame once).
    """
    if batch_size % patches_per_image:
        raise ValueError(f"batch_size={batch_size} is not a multiple of patches_per_image={patches_per_image}")
    per_batch = batch_size // patches_per_image
    images = images_per_epoch or len(frames)
    steps = images // per_batch
    if steps == 0:
        raise ValueError(f"an epoch of {images} images cannot fill one batch of {per_batch} images; "
                         "lower batch_size or raise images_per_epoch")
    plans = [_epoch_plan(len(frames), steps * per_batch, seed, e) for e in range(first_epoch, last_epoch)]
    indices = np.concatenate([p[0] for p in plans])
    seeds = np.concatenate([p[1] for p in plans])
    ds = patch_dataset(frames, indices, seeds, patch_size, patches_per_image, tries, threshold)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE), steps


def fixed_patches(frames: FrameSet, n_patches: int, patch_size: int = PATCH_SIZE, seed: int = 1,
                  patches_per_image: int = PATCHES_PER_IMAGE, tries: int = TRIES,
                  threshold: float | None = SSIM_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of ``n_patches`` (blurred, sharp) patches, e.g. for validation, each of the
    frames used giving ``patches_per_image``: frames evenly spread over the set (so a long set of
    clips contributes from every clip), or every frame in turn when there are too few."""
    images = -(-n_patches // patches_per_image)
    if images <= len(frames):
        indices = np.linspace(0, len(frames) - 1, images).round().astype(np.int64)
    else:
        indices = np.arange(images) % len(frames)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(images, 2), dtype=np.int64)
    blurred, sharp = [], []
    for b, s in patch_dataset(frames, indices, seeds, patch_size, patches_per_image, tries, threshold):
        blurred.append(b.numpy())
        sharp.append(s.numpy())
    return np.stack(blurred[:n_patches]), np.stack(sharp[:n_patches])


def random_patch_ssim(frames: FrameSet, patches_per_image: int, patch_size: int = PATCH_SIZE,
                      seed: int = 2) -> np.ndarray:
    """SSIM (blurred vs sharp) of ``patches_per_image`` unfiltered random patches of every frame:
    the distribution a threshold-free sampler would draw from."""
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(len(frames), 2), dtype=np.int64)
    ds = patch_dataset(frames, np.arange(len(frames)), seeds, patch_size, patches_per_image,
                       threshold=None, with_ssim=True)
    return np.array([float(ssim) for _, _, ssim, _ in ds], dtype=np.float64)


def sampler_statistics(frames: FrameSet, patch_size: int = PATCH_SIZE, patches_per_image: int = PATCHES_PER_IMAGE,
                       tries: int = TRIES, threshold: float = SSIM_THRESHOLD, seed: int = 3) -> dict:
    """One pass of the thresholded sampler over every frame: the SSIM of the patches it keeps and
    the fraction that had to fall back to a random patch."""
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=(len(frames), 2), dtype=np.int64)
    ds = patch_dataset(frames, np.arange(len(frames)), seeds, patch_size, patches_per_image, tries,
                       threshold, with_ssim=True)
    ssim, passed = [], []
    for _, _, s, p in ds:
        ssim.append(float(s))
        passed.append(bool(p))
    ssim, passed = np.array(ssim), np.array(passed)
    return {"ssim": ssim, "fallback_fraction": float(1 - passed.mean()) if len(passed) else float("nan"),
            "n_patches": int(len(ssim))}


def too_perfect_probability(ssim: np.ndarray, threshold: float = SSIM_THRESHOLD) -> dict:
    """P(SSIM >= threshold) for a random patch: from a gaussian kernel density estimate (scipy's
    ``gaussian_kde``, Scott's bandwidth) and as the plain fraction of patches."""
    from scipy.stats import gaussian_kde

    ssim = np.asarray(ssim, dtype=np.float64)
    kde = gaussian_kde(ssim)
    return {"kde": float(kde.integrate_box_1d(threshold, np.inf)),
            "empirical": float(np.mean(ssim >= threshold)), "n_patches": int(len(ssim)),
            "threshold": float(threshold), "bandwidth": float(kde.factor * ssim.std(ddof=1))}


def benchmark_sampler(frames: FrameSet | None = None, batches: int = 10, batch_size: int = 10,
                      patch_size: int = PATCH_SIZE, patches_per_image: int = PATCHES_PER_IMAGE,
                      seed: int = 0, verbose: bool = True, label: str = "given frames") -> dict:
    """Time the training stream alone (decoding, candidate SSIM, selection, batching) over
    ``batches`` batches after one warm-up batch; returns patches/s with the settings and data
    (``label`` names the frames; without ``frames`` the chapter's training frames are used)."""
    from .pairs import find_motion_data

    if frames is None:
        data = find_motion_data()
        frames, label = data.train, data.label
    stream, _ = patch_stream(frames, batch_size, seed, 0, 1, patch_size, patches_per_image,
                             images_per_epoch=(batches + 1) * batch_size // patches_per_image)
    iterator = iter(stream)
    next(iterator)  # warm-up: tracing and the first reads
    start = time.perf_counter()
    n = 0
    for blurred, _ in iterator:
        n += int(blurred.shape[0])
    seconds = time.perf_counter() - start
    result = {"patches_per_s": n / seconds, "batches_per_s": n / batch_size / seconds, "patches": n,
              "seconds": seconds, "patch_size": patch_size, "batch_size": batch_size,
              "patches_per_image": patches_per_image, "data": label}
    if verbose:
        print(f"patch sampler: {result['patches_per_s']:.1f} patches/s ({result['batches_per_s']:.2f} "
              f"batches of {batch_size} per s, {patch_size}x{patch_size}) on {label}")
    return result


if __name__ == "__main__":
    benchmark_sampler()
