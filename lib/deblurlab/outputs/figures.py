"""Every figure of the study is drawn here and saved by ``save_fig`` under figures/<name>.png."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.metrics import SIGMA_BINS, metrics_by_sigma
from ..core.paths import figures_dir

PRINT_DPI = 200


def save_fig(name: str, fig=None, dpi: int = PRINT_DPI):
    """Save ``fig`` (default: the current figure) as figures/<name>.png at print resolution."""
    fig = fig or plt.gcf()
    path = figures_dir() / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def plot_training_curves(histories: dict[str, pd.DataFrame], title: str = "Training curves"):
    """Loss and validation loss (log scale), and validation PSNR, per epoch, one colour a model.
    Every epoch is marked, so a run of one or two epochs still shows."""
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(10, 3.6))
    line = dict(marker="o", markersize=4)
    all_epochs = set()
    for (label, history), colour in zip(histories.items(), plt.cm.tab10.colors):
        epochs = history["epoch"]
        all_epochs.update(int(e) for e in epochs)
        ax_loss.plot(epochs, history["loss"], color=colour, label=f"{label} train", **line)
        if "val_loss" in history:
            ax_loss.plot(
                epochs,
                history["val_loss"],
                color=colour,
                ls="--",
                label=f"{label} val",
                **{**line, "marker": "s"},
            )
        psnr_cols = [c for c in history.columns if c.endswith("psnr")]
        for col in psnr_cols:
            val = col.startswith("val_")
            ax_psnr.plot(
                epochs,
                history[col],
                color=colour,
                ls="--" if val else "-",
                label=f"{label} {'val' if val else 'train'}",
                **{**line, "marker": "s" if val else "o"},
            )
    ax_loss.set(xlabel="epoch", ylabel="MSE loss", yscale="log", title="Loss")
    ax_psnr.set(xlabel="epoch", ylabel="PSNR (dB)", title="PSNR")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
        if all_epochs:
            ax.set_xlim(min(all_epochs) - 0.5, max(all_epochs) + 0.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_restorations(
    blurred,
    restored: dict[str, np.ndarray],
    sharp,
    sigmas=None,
    n: int = 6,
    title: str | None = None,
):
    """Rows of images: blurred (with sigma), each model's restoration, and the sharp original."""
    columns = [("blurred", blurred), *restored.items(), ("sharp", sharp)]
    n = min(n, len(sharp))
    fig, axes = plt.subplots(n, len(columns), figsize=(1.6 * len(columns), 1.6 * n), squeeze=False)
    for row in range(n):
        for col, (label, images) in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(np.clip(images[row], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=8)
        if sigmas is not None:
            axes[row, 0].set_ylabel(f"σ = {sigmas[row]:.2f}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_blur_examples(images, sigma_values, blur_fn):
    """Each image (row) blurred at each sigma (column)."""
    fig, axes = plt.subplots(
        len(images),
        len(sigma_values),
        figsize=(1.5 * len(sigma_values), 1.5 * len(images)),
        squeeze=False,
    )
    for col, sigma in enumerate(sigma_values):
        blurred = np.asarray(blur_fn(images, np.full(len(images), sigma, np.float32)))
        for row in range(len(images)):
            ax = axes[row, col]
            ax.imshow(np.clip(blurred[row], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"σ = {sigma:g}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_sigma_distribution(sigmas, title: str = "Blur strength of the test images"):
    """A histogram of the blur sigmas of the test images; returns the figure."""
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(sigmas, bins=SIGMA_BINS.size * 2 - 2, range=(0, 3), color="tab:blue", edgecolor="white")
    ax.set(xlabel="gaussian σ (pixels)", ylabel="images", title=title)
    fig.tight_layout()
    return fig


def plot_metric_vs_sigma(sigmas, per_image: dict[str, dict[str, np.ndarray]], bins=SIGMA_BINS):
    """MSE, PSNR and SSIM by sigma bin for each method: ``per_image[method][metric]`` arrays."""
    table = metrics_by_sigma(sigmas, per_image, bins)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for method, rows in table.groupby("method", sort=False):
        for ax, metric in zip(axes, ("mse", "psnr", "ssim")):
            ax.plot(rows["centre"], rows[metric], marker="o", label=method)
    for ax, metric, unit in zip(axes, ("MSE", "PSNR", "SSIM"), ("", " (dB)", "")):
        ax.set(
            xlabel="blur σ (bin centre)", ylabel=metric + unit, title=f"{metric} by blur strength"
        )
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def style_method_lines(fig, dashed=(), dotted=()):
    """Restyle a many-method line plot by label: ``dotted`` methods (e.g. the blurred input) in
    black, ``dashed`` ones (e.g. classical baselines) dashed with square markers in muted colours,
    every other method a distinct solid colour; one legend, outside the panels on the right."""
    solid_colours = list(plt.cm.tab10.colors) + list(plt.cm.tab20.colors[1::2])
    dashed_colours = list(plt.cm.Dark2.colors)
    assigned: dict[str, tuple] = {}
    for ax in fig.axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        for line in ax.get_lines():
            label = line.get_label()
            if label in dotted:
                line.set(linestyle=":", color="black")
                continue
            if label not in assigned:
                pool = dashed_colours if label in dashed else solid_colours
                used = sum(1 for name in assigned if (name in dashed) == (label in dashed))
                assigned[label] = pool[used % len(pool)]
            line.set_color(assigned[label])
            if label in dashed:
                line.set(linestyle="--", marker="s")
    handles, labels = fig.axes[-1].get_legend_handles_labels()
    fig.axes[-1].legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def plot_method_grid(
    images: dict[str, np.ndarray],
    titles: dict[str, str] | None = None,
    columns: int = 6,
    title: str | None = None,
    size: float = 1.9,
):
    """One image per method in a grid, each titled with its name and ``titles[name]`` (e.g. its
    PSNR and SSIM); unused cells are left blank."""
    names = list(images)
    rows = int(np.ceil(len(names) / columns))
    fig, axes = plt.subplots(
        rows, columns, figsize=(size * columns, (size + 0.45) * rows), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.imshow(np.clip(images[name], 0, 1), interpolation="nearest")
        label = name if not titles or name not in titles else f"{name}\n{titles[name]}"
        ax.set_title(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_quality_vs_budget(
    curves: dict[str, pd.DataFrame],
    reference: dict[str, pd.DataFrame] | None = None,
    title: str = "Validation PSNR against training budget",
):
    """Each model's validation PSNR per epoch against its cumulative training time (left) and
    training FLOPs (right, where known), log x; ``curves[model]`` has columns seconds, tflop and
    val_psnr (``deblurlab.findings.budget_curves``). One colour a model, its last epoch marked;
    ``reference`` (``findings.reference_curves``: the shipped reference runs) dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    reference = reference or {}
    names = list(dict.fromkeys([*curves, *reference]))
    colours = dict(zip(names, list(plt.cm.tab10.colors) * 2))
    runs = [(m, c, "-", m) for m, c in curves.items()]
    runs += [
        (m, c, "--", c.attrs.get("label", f"{m} (reference run)")) for m, c in reference.items()
    ]
    for model, curve, style, label in runs:
        colour = colours[model]
        for ax, x in zip(axes, ("seconds", "tflop")):
            if x not in curve or not np.isfinite(curve[x]).any():
                continue
            ax.plot(
                curve[x],
                curve["val_psnr"],
                style,
                marker="o" if style == "-" else None,
                markersize=3,
                color=colour,
                label=label,
            )
            ax.plot(
                curve[x].iloc[-1:],
                curve["val_psnr"].iloc[-1:],
                marker="*",
                markersize=10,
                color=colour,
            )
    for ax, label in zip(
        axes, ("training time (s, cumulative)", "training FLOPs (TFLOP, cumulative)")
    ):
        ax.set(xlabel=label, ylabel="validation PSNR (dB)")
        if ax.lines:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            low, high = ax.get_xlim()
            if high / low <= 300:  # label 2x and 5x between the decades only where they fit
                ax.xaxis.set_minor_formatter(
                    FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
                )
            else:
                ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        else:
            ax.text(
                0.5,
                0.5,
                "no training history found",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.grid(alpha=0.3, which="both")
    if axes[0].lines:
        axes[1].legend(
            *axes[0].get_legend_handles_labels(),
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
        )
    fig.suptitle(title)
    fig.tight_layout()
    return fig
