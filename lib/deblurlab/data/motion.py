"""Synthetic camera-shake blur: the offline default of the motion-blur chapter.

When neither REDS nor GoPro is at hand, the chapter still trains and evaluates on *real sharp
photographs* (the colour pictures that scikit-image ships, available offline), blurred with
synthetic camera-shake kernels:

- ``shake_trajectory``: a random 2-D camera path in the manner of Boracchi & Foi (2012, "Modeling
  the performance of image restoration from motion blur", IEEE TIP), the generator that DeblurGAN
  (Kupyn et al. 2018) made popular. The path moves at constant speed; at each step its velocity
  is nudged by gaussian jitter, pulled back towards the origin (a centripetal term) and, rarely,
  reversed by an abrupt shake.
- ``trajectory_kernel``: the first fraction of that path (the exposure) rasterised on a small grid
  with bilinear weights, then divided by its sum: a non-negative kernel that sums to 1.
- ``fft_blur``: the kernel applied to each channel by FFT convolution
  (``scipy.signal.fftconvolve``), after reflecting the borders so the frame has no dark rim. The
  intensities are *not* renormalised afterwards (a normalised kernel preserves the mean already),
  only clipped to [0, 1] against floating-point round-off.

Everything is driven by ``numpy.random.Generator`` seeds, so the synthetic dataset is identical on
every machine.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

KERNEL_SIZE = 31  # pixels; the skimage photographs are 300-640 px wide
SYNTHETIC_SEED = 20240715
ANXIETIES = (0.003, 0.001, 0.0001, 0.00003)  # the "expl" values DeblurGAN draws from

# Colour photographs that scikit-image ships inside its wheel (no pooch download needed).
# stereo_motorcycle returns (left, right, disparity): both views are used, as one "scene".
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "motorcycle_right")
# Whole photographs held out for testing (never trained on) and for validation.
SYNTHETIC_TEST_PHOTOS = ("coffee", "rocket")
SYNTHETIC_VAL_PHOTOS = ("chelsea",)


# --- kernels ---------------------------------------------------------------------------------


def shake_trajectory(
    rng: np.random.Generator,
    steps: int = 1000,
    max_length: float = 40.0,
    anxiety: float | None = None,
) -> np.ndarray:
    """A random camera path of ``steps`` complex positions (pixels), starting at 0.

    ``max_length`` is the path length; ``anxiety`` scales the jitter, the pull towards the centre
    and the chance of an abrupt shake, as in Boracchi & Foi's model. When not given it is drawn
    from DeblurGAN's values {3e-3, 1e-3, 1e-4, 3e-5}: larger values turn the path into a random
    walk that covers a few pixels only, smaller ones into a smooth curve.
    """
    anxiety = float(rng.choice(ANXIETIES)) if anxiety is None else anxiety
    centripetal = 0.7 * rng.uniform()
    shake_chance = 0.2 * rng.uniform()
    jitter = 10.0 * rng.uniform()
    step = max_length / (steps - 1)
    angle = rng.uniform(0.0, 2.0 * math.pi)
    velocity = complex(math.cos(angle), math.sin(angle)) * (anxiety if anxiety > 0 else step)
    # Draw every random number up front: one vectorised call instead of three per step.
    shakes = rng.uniform(size=steps) < shake_chance * anxiety
    turn = rng.uniform(size=steps) - 0.5
    noise = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    path = np.zeros(steps, dtype=complex)
    for t in range(steps - 1):
        kick = 2.0 * velocity * np.exp(1j * (math.pi + turn[t])) if shakes[t] else 0.0
        velocity += kick + anxiety * (jitter * noise[t] - centripetal * path[t]) * step
        speed = abs(velocity)
        velocity = velocity / speed * step if speed > 0 else complex(step, 0.0)
        path[t + 1] = path[t] + velocity
    return path


def rasterise(path: np.ndarray, size: int = KERNEL_SIZE) -> np.ndarray:
    """Splat the points of ``path`` on a ``size`` x ``size`` grid with bilinear weights, centred on
    the path's bounding box; the result sums to 1. Paths longer than the grid are shrunk to fit."""
    x, y = path.real - path.real.min(), path.imag - path.imag.min()
    extent = max(x.max(), y.max())
    if extent > size - 2:
        x, y = x * (size - 2) / extent, y * (size - 2) / extent
    x = x + (size - 1 - x.max()) / 2.0
    y = y + (size - 1 - y.max()) / 2.0
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    kernel = np.zeros((size, size))
    for dy, dx, weight in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        np.add.at(kernel, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), weight)
    return kernel / kernel.sum()


def trajectory_kernel(
    rng: np.random.Generator,
    size: int = KERNEL_SIZE,
    exposure: float | None = None,
    max_length: float | None = None,
) -> np.ndarray:
    """A normalised, non-negative camera-shake kernel of shape (size, size), float64.

    The exposure (fraction of the path swept while the shutter is open) is drawn from
    {1/10, 1/2, 1} and the path length from U(size/4, size) unless given.
    """
    max_length = rng.uniform(size / 4, size) if max_length is None else max_length
    exposure = rng.choice([0.1, 0.5, 1.0]) if exposure is None else exposure
    path = shake_trajectory(rng, max_length=max_length)
    swept = path[: max(2, int(round(exposure * len(path))))]
    return rasterise(swept, size)


def random_kernels(n: int, seed, size: int = KERNEL_SIZE) -> np.ndarray:
    """``n`` kernels, a pure function of ``seed``: shape (n, size, size)."""
    rng = np.random.default_rng(seed)
    return (
        np.stack([trajectory_kernel(rng, size) for _ in range(n)])
        if n
        else np.zeros((0, size, size))
    )


# --- blur --------------------------------------------------------------------------------------


def fft_blur(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an (H, W, C) or (H, W) float image with ``kernel`` by FFT, per channel.

    The borders are reflected by the kernel's half-size first and the 'valid' part kept, so the
    output has the input's size. No renormalisation follows; values are only clipped to [0, 1].
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or np.any(kernel < 0):
        raise ValueError("kernel must be a 2-D array of non-negative weights")
    kh, kw = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    pad = ((top, kh - 1 - top), (left, kw - 1 - left))
    channels = image[..., None] if image.ndim == 2 else image
    out = np.stack(
        [
            fftconvolve(np.pad(channels[..., c], pad, mode="reflect"), kernel, mode="valid")
            for c in range(channels.shape[-1])
        ],
        axis=-1,
    )
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    return out[..., 0] if image.ndim == 2 else out


# --- the offline dataset ---------------------------------------------------------------------


def skimage_photo(name: str) -> np.ndarray | None:
    """A colour photograph from ``skimage.data`` as float32 RGB in [0, 1], or None if it is not
    available offline (some need a pooch download)."""
    import skimage.data

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if name.startswith("motorcycle_"):
                left, right, _ = skimage.data.stereo_motorcycle()
                image = left if name.endswith("left") else right
            else:
                image = getattr(skimage.data, name)()
    except Exception:  # noqa: BLE001 - missing optional download, or an unknown name
        return None
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] < 3:
        return None
    return image[..., :3].astype(np.float32) / 255.0


@dataclass
class SyntheticPairs:
    """Blurred/sharp pairs in memory: ``names[i]`` is "<photo>/k<j>" for kernel j of a photo."""

    names: list[str]
    blurred: list[np.ndarray]
    sharp: list[np.ndarray]
    kernels: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.names)


def make_synthetic_pairs(
    photos, kernels_per_photo: int, seed: int = SYNTHETIC_SEED, size: int = KERNEL_SIZE
) -> SyntheticPairs:
    """Blur each photo with ``kernels_per_photo`` kernels. Photo p's kernels depend only on
    (seed, p's name), so adding or removing a photo never changes the others' pairs."""
    out = SyntheticPairs([], [], [], [])
    for name, image in photos.items():
        tag = sum(ord(ch) * 31**i for i, ch in enumerate(name)) % (2**31)
        for j, kernel in enumerate(random_kernels(kernels_per_photo, [seed, tag], size)):
            out.names.append(f"{name}/k{j}")
            out.blurred.append(fft_blur(image, kernel))
            out.sharp.append(image)
            out.kernels.append(kernel.astype(np.float32))
    return out


def available_photos(names=SKIMAGE_PHOTOS) -> dict[str, np.ndarray]:
    """The photos of ``names`` that skimage can provide here, by name (missing ones left
    out)."""
    photos = {name: skimage_photo(name) for name in names}
    return {name: image for name, image in photos.items() if image is not None}
