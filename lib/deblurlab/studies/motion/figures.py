"""The motion chapters' figures: zoomed frame comparisons, patches, the SSIM distribution,
camera-shake kernels and training curves.

    box = detail_box(blurred, sharp, size=160)        # where blur destroyed most
    fig = plot_frame_comparison({"blurred": b, "restored": r, "sharp": s}, box)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ...data import patches as P
from ...data.frames import FrameSet
from ...training.train import TrainResult
from .patch_analysis import PatchAnalysis


def detail_box(blurred: np.ndarray, sharp: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``size`` window where blur destroyed most (largest
    blurred-vs-sharp error, summed by an integral image)."""
    size = min(size, blurred.shape[0], blurred.shape[1])
    error = np.mean((blurred - sharp) ** 2, axis=-1)
    total = np.pad(error.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), size, size


def plot_frame_comparison(images: dict[str, np.ndarray], box, title: str | None = None):
    """Top row: each whole image (e.g. blurred / restored / sharp) with the zoom box drawn;
    bottom row: the boxed region enlarged, so fine detail can be compared."""
    from matplotlib.patches import Rectangle

    top, left, h, w = box
    fig, axes = plt.subplots(
        2,
        len(images),
        figsize=(4.2 * len(images), 5.6),
        squeeze=False,
        gridspec_kw={
            "height_ratios": [
                images[next(iter(images))].shape[0] / images[next(iter(images))].shape[1] * 1.6,
                1,
            ]
        },
    )
    for col, (name, image) in enumerate(images.items()):
        ax = axes[0, col]
        ax.imshow(np.clip(image, 0, 1))
        ax.add_patch(Rectangle((left, top), w, h, fill=False, edgecolor="yellow", linewidth=1.5))
        ax.set_title(name, fontsize=9)
        zoom = axes[1, col]
        zoom.imshow(np.clip(image[top : top + h, left : left + w], 0, 1), interpolation="nearest")
        for ax_ in (ax, zoom):
            ax_.set_xticks([])
            ax_.set_yticks([])
    axes[1, 0].set_ylabel("zoom", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_patch_examples(
    frames: FrameSet, n: int = 4, patch_size: int = P.PATCH_SIZE, seed: int = 7
):
    """``n`` random (unfiltered) patches, blurred over sharp, each titled with its SSIM."""
    n_frames = min(n, len(frames))
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(frames), n_frames, replace=False)
    seeds = rng.integers(0, 2**31 - 1, size=(n_frames, 2))
    size = min(patch_size, *[min(frames.sizes()[i]) for i in indices])
    ds = P.patch_dataset(frames, indices, seeds, size, 1, threshold=None, with_ssim=True)
    fig, axes = plt.subplots(2, n_frames, figsize=(2.4 * n_frames, 5.0), squeeze=False)
    for col, (blurred, sharp, ssim, _) in enumerate(ds):
        for row, image in enumerate((blurred, sharp)):
            ax = axes[row, col]
            ax.imshow(np.clip(image, 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(
            f"SSIM {float(ssim):.3f}" + (" (too perfect)" if ssim >= P.SSIM_THRESHOLD else ""),
            fontsize=8,
        )
    axes[0, 0].set_ylabel("blurred", fontsize=9)
    axes[1, 0].set_ylabel("sharp", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ssim_distribution(analysis: PatchAnalysis):
    """Histogram of random-patch SSIM and its gaussian KDE (seaborn), the threshold, and the
    area above it."""
    import seaborn as sns
    from scipy.stats import gaussian_kde

    ssim = analysis.random_ssim
    fig, (ax_hist, ax_kde) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_hist.hist(
        ssim, bins=30, range=(max(0.0, ssim.min() - 0.02), 1.0), color="tab:blue", edgecolor="white"
    )
    ax_hist.axvline(
        P.SSIM_THRESHOLD, color="tab:red", ls="--", label=f"threshold {P.SSIM_THRESHOLD}"
    )
    ax_hist.set(
        xlabel="SSIM (blurred vs sharp patch)",
        ylabel="patches",
        title=f"Histogram: {len(ssim):,} random {P.PATCH_SIZE}×{P.PATCH_SIZE} patches",
    )
    ax_hist.legend(fontsize=8)
    sns.kdeplot(x=ssim, ax=ax_kde, color="tab:blue", bw_method="scott")
    kde = gaussian_kde(ssim)
    # The estimate integrates the density from the threshold upwards, past 1 where the kernels
    # spill.
    grid = np.linspace(
        P.SSIM_THRESHOLD, max(1.0, ssim.max()) + 4 * analysis.too_perfect["bandwidth"], 200
    )
    ax_kde.fill_between(
        grid,
        kde(grid),
        color="tab:red",
        alpha=0.35,
        label=f"P(SSIM ≥ {P.SSIM_THRESHOLD}) = {analysis.too_perfect['kde']:.1%} (KDE)",
    )
    ax_kde.axvline(P.SSIM_THRESHOLD, color="tab:red", ls="--")
    ax_kde.set(
        xlabel="SSIM", ylabel="density", title="Kernel density estimate (scipy, Scott's bandwidth)"
    )
    ax_kde.legend(fontsize=8)
    fig.suptitle(analysis.data.label, fontsize=10)
    fig.tight_layout()
    return fig


def plot_kernels(n: int = 8, seed: int = 0):
    """Synthetic camera-shake kernels (Boracchi & Foi trajectories), brightest = most weight."""
    from ...data.motion import random_kernels

    kernels = random_kernels(n, seed)
    fig, axes = plt.subplots(1, n, figsize=(1.3 * n, 1.5))
    for ax, kernel in zip(np.atleast_1d(axes), kernels):
        ax.imshow(kernel, cmap="inferno", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_training_histories(results: dict[str, TrainResult]):
    """The training curves of the motion runs ``results``; returns the figure."""
    from ...outputs.figures import plot_training_curves

    return plot_training_curves(
        {name: r.history for name, r in results.items()},
        title="SRNDeblur_reds training (loss = MSE summed over both scales)",
    )


def plot_blurred_and_restored(blurred, restored, sharp, model: str, title: str):
    """The blurred frame beside its restoration, each titled with its PSNR against ``sharp``."""
    from ...core.metrics import psnr_per_image

    fig, axes = plt.subplots(1, 2, figsize=(13, 4), constrained_layout=True)
    panels = [("blurred input", blurred), (f"deblurlab.deblur with {model}", restored)]
    for ax, (label, image) in zip(axes, panels):
        ax.imshow(image)
        ax.set_title(f"{label} ({float(psnr_per_image(image, sharp)[0]):.2f} dB)")
        ax.axis("off")
    fig.suptitle(title)
    return fig


def plot_restored_frame(
    images: dict[str, np.ndarray], names, box_size: int = 160, title: str | None = None
):
    """``plot_frame_comparison`` of one frame's ``images`` (an evaluation's ``hardest``: the
    blurred input, each model's output and ``"sharp"``): the blurred input, then each of ``names``
    that it holds, then the sharp frame, each titled with its PSNR, and the region where blur
    destroyed most enlarged."""
    from ...core.metrics import psnr_per_image
    from ...core.results import BLURRED_INPUT

    sharp = images["sharp"]
    panels = {}
    for name in [BLURRED_INPUT, *(n for n in names if n in images)]:
        panels[f"{name} ({float(psnr_per_image(images[name], sharp)[0]):.2f} dB)"] = images[name]
    panels["sharp"] = sharp
    box = detail_box(images[BLURRED_INPUT], sharp, size=min(box_size, *sharp.shape[:2]))
    return plot_frame_comparison(panels, box, title)
