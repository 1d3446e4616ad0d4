"""Training patches from high-resolution frames, chosen for visible blur.

The report cuts two 256x256 patches from each training image (batch 10 = 5 images) and, since a
random patch of a motion-blurred frame is often almost sharp (a static, flat region), keeps only
patches whose blurred-vs-sharp SSIM is below 0.9, falling back to random patches when no
candidate qualifies.

Here, for each image, random windows are drawn in rounds of ``patches_per_image``, each round's
SSIM computed in one batched call (``ssim_batch``), until ``patches_per_image`` windows fall below
the threshold or ``tries`` rounds have been drawn; the passing windows are kept in draw order and,
if too few passed, the remaining slots take the first failing windows (random patches). It is
numpy throughout (any Keras backend): the stream (``data.stream.Stream``, a PyDataset) cuts the
next batches on threads while the model trains.

``ssim_batch`` is a gaussian-window SSIM over a batch that follows skimage's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=-1)``: an 11-tap gaussian (truncated at 3.5 sigma), population
variances, and the mean of the SSIM map after dropping a 5-pixel border (where skimage's filter
would reflect the image), averaged over channels.

    python -m deblurlab.data.patches        # prints the sampler's patches/s (benchmark_sampler)
"""

from __future__ import annotations

import time

import numpy as np

from .frames import FrameSet
from .stream import Stream, item_rows

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


def _filter_axis(images: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """'Valid' correlation of (N, H, W, C) with ``taps`` along ``axis``: one multiply-add a tap."""
    length = images.shape[axis] - len(taps) + 1

    def window(k):
        return images[(slice(None),) * axis + (slice(k, k + length),)]

    out = window(0) * taps[0]
    for k in range(1, len(taps)):
        out += window(k) * taps[k]
    return out


def _filter(images: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'valid' gaussian filtering of (N, H, W, C), each channel on its own."""
    return _filter_axis(_filter_axis(images, taps, 1), taps, 2)


def ssim_batch(x, y) -> np.ndarray:
    """SSIM of each pair of a batch: x, y of shape (N, H, W, C) in [0, 1] -> (N,) float32."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    n = x.shape[0]
    stack = np.concatenate([x, y, x * x, y * y, x * y], axis=0)
    mx, my, mxx, myy, mxy = np.split(_filter(stack, gaussian_taps()), 5, axis=0)
    vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    ssim_map = ((2 * mx * my + _C1) * (2 * vxy + _C2)) / (
        (mx * mx + my * my + _C1) * (vx + vy + _C2)
    )
    return ssim_map.reshape(n, -1).mean(axis=1, dtype=np.float32)


def ssim_numpy(x, y) -> np.ndarray:
    """``ssim_batch`` for (N, H, W, C) or one (H, W, C) pair; a float for one pair's array."""
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    single = x.ndim == 3
    out = np.asarray(ssim_batch(x[None] if single else x, y[None] if single else y))
    return out[0] if single else out


def _crops(image: np.ndarray, ys, xs, patch_size: int) -> np.ndarray:
    return np.stack([image[y : y + patch_size, x : x + patch_size] for y, x in zip(ys, xs)])


def sample_patches(
    blurred,
    sharp,
    seed,
    patch_size: int = PATCH_SIZE,
    n_patches: int = PATCHES_PER_IMAGE,
    tries: int = TRIES,
    threshold: float | None = SSIM_THRESHOLD,
):
    """Cut ``n_patches`` windows from one (H, W, C) pair; a pure function of ``seed`` (2 ints).

    Windows are drawn in rounds of ``n_patches`` random positions (``np.random.default_rng(seed)``),
    at most ``tries`` rounds, stopping as soon as ``n_patches`` of them have an SSIM below
    ``threshold``. The kept windows are the passing ones in draw order, then, if too few passed,
    the first failing ones (random patches). Returns numpy (blurred patches, sharp patches, their
    SSIM, whether each passed). With ``threshold=None`` the first round is returned unfiltered.
    """
    blurred, sharp = np.asarray(blurred, np.float32), np.asarray(sharp, np.float32)
    height, width = sharp.shape[:2]
    if min(height, width) < patch_size:
        raise ValueError(f"a frame is smaller than the {patch_size}-pixel patch ({height}x{width})")
    rng = np.random.default_rng(np.asarray(seed, np.int64).tolist())
    cand_b, cand_s, ssim = [], [], []
    for _ in range(1 if threshold is None else tries):
        ys = rng.integers(0, height - patch_size + 1, n_patches)
        xs = rng.integers(0, width - patch_size + 1, n_patches)
        cand_b.append(_crops(blurred, ys, xs, patch_size))
        cand_s.append(_crops(sharp, ys, xs, patch_size))
        ssim.append(np.asarray(ssim_batch(cand_b[-1], cand_s[-1])))
        if threshold is not None and (np.concatenate(ssim) < threshold).sum() >= n_patches:
            break
    cand_b, cand_s, ssim = np.concatenate(cand_b), np.concatenate(cand_s), np.concatenate(ssim)
    if threshold is None:
        return cand_b, cand_s, ssim, np.ones(n_patches, bool)
    passed = ssim < threshold
    # passing windows first, each group in draw order
    order = np.argsort(~passed, kind="stable")[:n_patches]
    return cand_b[order], cand_s[order], ssim[order], passed[order]


def _epoch_plan(n_frames: int, images: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (each epoch a fresh permutation, repeated if it must be longer) and one
    sampling seed per image: a pure function of (seed, epoch), so a resumed run sees the same
    data."""
    rng = np.random.default_rng([seed, epoch])
    order = np.concatenate([rng.permutation(n_frames) for _ in range(-(-images // n_frames))])[
        :images
    ]
    seeds = rng.integers(0, 2**31 - 1, size=(images, 2), dtype=np.int64)
    return order.astype(np.int64), seeds


def dihedral(blurred: np.ndarray, sharp: np.ndarray, seed) -> tuple[np.ndarray, np.ndarray]:
    """Each (blurred, sharp) patch pair of a batch (N, S, S, C) turned by the same one of the 8
    flips and 90-degree rotations, drawn per pair from ``seed``: the augmentation of BasicSR and
    NAFNet's option files (``use_hflip``, ``use_rot``). Blur turns with the image, so the pair
    stays a true pair."""
    rng = np.random.default_rng([*np.asarray(seed, np.int64).tolist(), 8])
    ops = rng.integers(0, 8, len(blurred))
    out_b, out_s = np.empty_like(blurred), np.empty_like(sharp)
    for k, op in enumerate(ops):
        b, s = (np.rot90(x, int(op) % 4, axes=(0, 1)) for x in (blurred[k], sharp[k]))
        if op >= 4:
            b, s = b[:, ::-1], s[:, ::-1]
        out_b[k], out_s[k] = b, s
    return out_b, out_s


def _cutter(
    frames: FrameSet,
    patch_size: int,
    n_patches: int,
    tries: int,
    threshold: float | None,
    augment: bool = False,
):
    def cut(index, seed):
        blurred, sharp = frames.load(int(index))
        out = sample_patches(blurred, sharp, seed, patch_size, n_patches, tries, threshold)
        if augment:
            return (*dihedral(out[0], out[1], seed), *out[2:])
        return out

    return cut


def patch_dataset(
    frames: FrameSet,
    indices,
    seeds,
    patch_size: int = PATCH_SIZE,
    n_patches: int = PATCHES_PER_IMAGE,
    tries: int = TRIES,
    threshold: float | None = SSIM_THRESHOLD,
    with_ssim: bool = False,
):
    """Patches (blurred, sharp[, ssim, passed]) of the frames ``indices``, image by image, one
    patch at a time (a generator of numpy arrays); the next frames are cut on threads meanwhile."""
    cut = _cutter(frames, patch_size, n_patches, tries, threshold)
    indices, seeds = np.asarray(indices, np.int64), np.asarray(seeds, np.int64)
    for out in Stream(len(indices), len(indices), lambda i: cut(indices[i], seeds[i])):
        for k in range(len(out[0])):
            patch = tuple(part[k] for part in out)
            yield patch if with_ssim else patch[:2]


def patch_stream(
    frames: FrameSet,
    batch_size: int,
    seed: int,
    first_epoch: int,
    last_epoch: int,
    patch_size: int = PATCH_SIZE,
    patches_per_image: int = PATCHES_PER_IMAGE,
    images_per_epoch: int | None = None,
    tries: int = TRIES,
    threshold: float | None = SSIM_THRESHOLD,
    augment: bool = False,
) -> tuple[Stream, int]:
    """Batches of (blurred, sharp) patches for epochs [first_epoch, last_epoch) and the steps per
    epoch, in the shape ``train.train()`` expects from ``make_stream``: a ``keras.utils.PyDataset``
    of numpy batches (``data.stream.Stream``).

    A batch holds ``batch_size // patches_per_image`` images' patches (the report: 10 = 5 x 2).
    An epoch visits ``images_per_epoch`` frames (default: every training frame once).
    ``augment`` turns each pair by a random flip or 90-degree rotation (``dihedral``).
    """
    if batch_size % patches_per_image:
        raise ValueError(
            f"batch_size={batch_size} is not a multiple of patches_per_image={patches_per_image}"
        )
    per_batch = batch_size // patches_per_image
    images = images_per_epoch or len(frames)
    steps = images // per_batch
    if steps == 0:
        raise ValueError(
            f"an epoch of {images} images cannot fill one batch of {per_batch} images; "
            "lower batch_size or raise images_per_epoch"
        )
    plans = [
        _epoch_plan(len(frames), steps * per_batch, seed, e) for e in range(first_epoch, last_epoch)
    ]
    indices = np.concatenate([p[0] for p in plans]) if plans else np.zeros(0, np.int64)
    seeds = np.concatenate([p[1] for p in plans]) if plans else np.zeros((0, 2), np.int64)
    cut = _cutter(frames, patch_size, patches_per_image, tries, threshold, augment)

    def make_batch(i, part=slice(0, batch_size)):
        first = i * per_batch
        return item_rows(lambda j: cut(indices[j], seeds[j])[:2], first, patches_per_image, part)

    return Stream(len(indices) // per_batch, steps, make_batch, rows=batch_size), steps


def fixed_patches(
    frames: FrameSet,
    n_patches: int,
    patch_size: int = PATCH_SIZE,
    seed: int = 1,
    patches_per_image: int = PATCHES_PER_IMAGE,
    tries: int = TRIES,
    threshold: float | None = SSIM_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
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
    for b, s in patch_dataset(
        frames, indices, seeds, patch_size, patches_per_image, tries, threshold
    ):
        blurred.append(np.asarray(b))
        sharp.append(np.asarray(s))
    return np.stack(blurred[:n_patches]), np.stack(sharp[:n_patches])


def _frame_seeds(n: int, seed: int) -> np.ndarray:
    """One (2,) int64 sampler seed per frame, drawn from ``seed``."""
    return np.random.default_rng(seed).integers(0, 2**31 - 1, size=(n, 2), dtype=np.int64)


def random_patch_ssim(
    frames: FrameSet, patches_per_image: int, patch_size: int = PATCH_SIZE, seed: int = 2
) -> np.ndarray:
    """SSIM (blurred vs sharp) of ``patches_per_image`` unfiltered random patches of every frame:
    the distribution a threshold-free sampler would draw from."""
    seeds = _frame_seeds(len(frames), seed)
    ds = patch_dataset(
        frames,
        np.arange(len(frames)),
        seeds,
        patch_size,
        patches_per_image,
        threshold=None,
        with_ssim=True,
    )
    return np.array([float(ssim) for _, _, ssim, _ in ds], dtype=np.float64)


def sampler_statistics(
    frames: FrameSet,
    patch_size: int = PATCH_SIZE,
    patches_per_image: int = PATCHES_PER_IMAGE,
    tries: int = TRIES,
    threshold: float = SSIM_THRESHOLD,
    seed: int = 3,
) -> dict:
    """One pass of the thresholded sampler over every frame: the SSIM of the patches it keeps and
    the fraction that had to fall back to a random patch."""
    seeds = _frame_seeds(len(frames), seed)
    ds = patch_dataset(
        frames,
        np.arange(len(frames)),
        seeds,
        patch_size,
        patches_per_image,
        tries,
        threshold,
        with_ssim=True,
    )
    ssim, passed = [], []
    for _, _, s, p in ds:
        ssim.append(float(s))
        passed.append(bool(p))
    ssim, passed = np.array(ssim), np.array(passed)
    return {
        "ssim": ssim,
        "fallback_fraction": float(1 - passed.mean()) if len(passed) else float("nan"),
        "n_patches": int(len(ssim)),
    }


def too_perfect_probability(ssim: np.ndarray, threshold: float = SSIM_THRESHOLD) -> dict:
    """P(SSIM >= threshold) for a random patch: from a gaussian kernel density estimate (scipy's
    ``gaussian_kde``, Scott's bandwidth) and as the plain fraction of patches."""
    from scipy.stats import gaussian_kde

    ssim = np.asarray(ssim, dtype=np.float64)
    kde = gaussian_kde(ssim)
    return {
        "kde": float(kde.integrate_box_1d(threshold, np.inf)),
        "empirical": float(np.mean(ssim >= threshold)),
        "n_patches": int(len(ssim)),
        "threshold": float(threshold),
        "bandwidth": float(kde.factor * ssim.std(ddof=1)),
    }


def benchmark_sampler(
    frames: FrameSet | None = None,
    batches: int = 10,
    batch_size: int = 10,
    patch_size: int = PATCH_SIZE,
    patches_per_image: int = PATCHES_PER_IMAGE,
    seed: int = 0,
    verbose: bool = True,
    label: str = "given frames",
) -> dict:
    """Time the training stream alone (decoding, candidate SSIM, selection, batching) over
    ``batches`` batches after one warm-up batch; returns patches/s with the settings and data
    (``label`` names the frames; without ``frames`` the chapter's training frames are used)."""
    from .sources import find_motion_data

    if frames is None:
        data = find_motion_data()
        frames, label = data.train, data.label
    stream, _ = patch_stream(
        frames,
        batch_size,
        seed,
        0,
        1,
        patch_size,
        patches_per_image,
        images_per_epoch=(batches + 1) * batch_size // patches_per_image,
    )
    iterator = iter(stream)
    next(iterator)  # warm-up: the first reads and the threads started
    start = time.perf_counter()
    n = 0
    for blurred, _ in iterator:
        n += int(blurred.shape[0])
    seconds = time.perf_counter() - start
    result = {
        "patches_per_s": n / seconds,
        "batches_per_s": n / batch_size / seconds,
        "patches": n,
        "seconds": seconds,
        "patch_size": patch_size,
        "batch_size": batch_size,
        "patches_per_image": patches_per_image,
        "data": label,
    }
    if verbose:
        print(
            f"patch sampler: {result['patches_per_s']:.1f} patches/s "
            f"({result['batches_per_s']:.2f} "
            f"batches of {batch_size} per s, {patch_size}x{patch_size}) on {label}"
        )
    return result


if __name__ == "__main__":
    benchmark_sampler()
