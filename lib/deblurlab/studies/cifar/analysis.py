"""The CIFAR-10 chapters' analyses of trained models (notebooks 02-04), kept out of the
architecture files, which import only keras and the shared layers.

- Chapter 2 (EDDenseNet): the report's parameter arithmetic of the bottleneck layer.
- Chapter 3 (CAESSC): RED30's published row, and the dark-area analysis of the report's Fig. 6
  (the darkest test images, errors on dark pixels and a verdict computed from them).
- Chapter 4 (SRNDeblur): every scale's output and its scores against a resized target.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ...core import metrics as M

# ------------------------------------------------------------ chapter 2: EDDenseNet's bottleneck


def encoder_end_conv(model: keras.Model):
    """The convolution at the end of an EDDenseNet's encoder.

    Args: model, built by ``models.eddensenet.eddensenet_model``.
    Returns: the last Conv2D layer before the first decoder ("dec...") layer."""
    convs = []
    for layer in model.layers:
        if layer.name.startswith("dec"):
            break
        if layer.__class__.__name__ == "Conv2D":
            convs.append(layer)
    if not convs or not any(layer.name.startswith("dec") for layer in model.layers):
        raise ValueError(
            f"{model.name}: no encoder convolution followed by a 'dec…' layer; "
            "is this an EDDenseNet built by eddensenet_model()?"
        )
    return convs[-1]


# The report's own numbers for the layer at the end of the encoder (section 3.4).
REPORT_BOTTLENECK = {"report_channels": 124, "report_with": 17_872, "report_without": 138_384}


def bottleneck_arithmetic(model: keras.Model) -> dict:
    """The report's parameter arithmetic, read off ``model``'s layer at the end of the encoder:
    a k x k convolution on ``c`` channels costs k*k*c*c + c parameters if it keeps the ``c``
    channels, and k*k*c*g + g if it reduces them to the growth rate ``g`` (the bottleneck).

    The report prints 124·3·3·124+124 = 138,384, which is the product without the +124 bias
    (138,508 with it); its 124·3·3·16+16 = 17,872 is right.

    Args: model, an EDDenseNet.
    Returns: the layer's name, channels, kernel, filters, both counts with their formulas, and
    the report's numbers (``report_*``)."""
    conv = encoder_end_conv(model)
    channels = int(conv.input.shape[-1])
    kh, kw = conv.kernel_size
    filters = int(conv.filters)
    bias = 1 if conv.use_bias else 0
    return {
        "layer": conv.name,
        "channels": channels,
        "kernel": (kh, kw),
        "filters": filters,
        "with_bottleneck": int(conv.count_params()),
        "formula_with": f"{channels}·{kh}·{kw}·{filters}" + (f"+{filters}" if bias else ""),
        "without_bottleneck": kh * kw * channels * channels + bias * channels,
        "formula_without": f"{channels}·{kh}·{kw}·{channels}" + (f"+{channels}" if bias else ""),
        **REPORT_BOTTLENECK,
    }


# ------------------------------------------------------------------------ chapter 3: CAESSC

# RED30's published PSNR (Mao et al. 2016, gaussian deblurring on their own test images), quoted
# by the report beside its own runs. It is not a model of this study; tables flag its row.
RED30_PAPER = dict(
    model="RED30 (paper, other data)",
    psnr=34.49,
    note="Mao et al. 2016: 30 layers, 128 filters, no downsampling; other data, not comparable",
)


def red30_paper_row(columns) -> dict:
    """The flagged RED30 row of a results table.

    Args: columns, the table's column names.
    Returns: a row (column -> value) with only the model and the report PSNR filled."""
    row = {col: None for col in columns}
    row["model"] = RED30_PAPER["model"] + " †"
    if "report PSNR" in row:
        row["report PSNR"] = RED30_PAPER["psnr"]
    if "run" in row:  # a table with one row per run (cifar_results.results_table)
        row.update(
            {
                "run": "original report",
                "PSNR": f"{RED30_PAPER['psnr']:.2f}",
                "_exact": {"psnr": RED30_PAPER["psnr"]},
            }
        )
    return row


DARK_THRESHOLD = 0.1  # a pixel is dark if all three channels of the sharp image are below this


def darkest_indices(sharp: np.ndarray, n: int = 6) -> np.ndarray:
    """Indices of the ``n`` images of ``sharp`` (N, H, W, C) with the lowest mean intensity,
    darkest first."""
    return np.argsort(np.asarray(sharp).mean(axis=(1, 2, 3)), kind="stable")[:n]


def dark_pixel_metrics(
    images: dict[str, np.ndarray], sharp: np.ndarray, threshold: float = DARK_THRESHOLD
) -> pd.DataFrame:
    """Error on the dark pixels of ``sharp`` (all channels < ``threshold``) and on the others.

    Args: images, method name -> images of ``sharp``'s shape (the blurred input and each
    model's restoration); sharp, the sharp images; threshold, what counts as dark.
    Returns: one row a method: dark pixels %, dark MSE, other MSE, dark mean value and the
    sharp images' dark mean value."""
    sharp = np.asarray(sharp, np.float64)
    dark = sharp.max(axis=-1) < threshold
    rows = []
    for name, pred in images.items():
        pred = np.asarray(pred, np.float64)
        if pred.shape != sharp.shape:
            raise ValueError(
                f"dark_pixel_metrics: {name!r} has shape {pred.shape}, "
                f"the sharp images {sharp.shape}"
            )
        err = ((pred - sharp) ** 2).mean(axis=-1)
        rows.append(
            {
                "method": name,
                "dark pixels %": 100.0 * dark.mean(),
                "dark MSE": float(err[dark].mean()) if dark.any() else np.nan,
                "other MSE": float(err[~dark].mean()) if (~dark).any() else np.nan,
                "dark mean value": float(pred[dark].mean()) if dark.any() else np.nan,
                "sharp dark mean value": float(sharp[dark].mean()) if dark.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def dark_failure_verdict(
    table: pd.DataFrame, relu_model: str, sigmoid_model: str, factor: float = 1.25
) -> dict:
    """Does the ReLU-output model fail on dark areas, as the report's Fig. 6 shows?

    Reproduced when its dark-pixel MSE is at least ``factor`` times the sigmoid model's *and* that
    ratio is at least ``factor`` times the ratio on the other pixels (so the failure is specific
    to dark areas, not a model that is worse everywhere).

    Args: table, from ``dark_pixel_metrics``; relu_model, sigmoid_model, two of its methods.
    Returns: reproduced (True, False or None when undecidable), dark_ratio, other_ratio and a
    sentence saying it."""
    rows = table.set_index("method")
    relu, sig = rows.loc[relu_model], rows.loc[sigmoid_model]
    if (
        not np.isfinite(relu["dark MSE"])
        or not np.isfinite(sig["dark MSE"])
        or sig["dark MSE"] <= 0
    ):
        return {
            "reproduced": None,
            "dark_ratio": None,
            "other_ratio": None,
            "sentence": "The test images hold no dark pixels, so the dark-area failure cannot be "
            "judged here.",
        }
    dark_ratio = float(relu["dark MSE"] / sig["dark MSE"])
    other_ratio = float(relu["other MSE"] / sig["other MSE"]) if sig["other MSE"] > 0 else np.inf
    if dark_ratio >= factor and dark_ratio >= factor * other_ratio:
        reproduced = True
        sentence = (
            "We reproduce the failure: on dark pixels the ReLU-output model's error is "
            f"{dark_ratio:.2f}× the sigmoid model's, against {other_ratio:.2f}× on the other "
            "pixels."
        )
    elif dark_ratio >= factor:
        reproduced = False
        sentence = (
            "The ReLU-output model is worse on dark pixels "
            f"({dark_ratio:.2f}× the sigmoid model's error) but about as much worse elsewhere "
            f"({other_ratio:.2f}×), so we see no failure specific to dark areas."
        )
    else:
        reproduced = False
        sentence = (
            f"We do not reproduce the failure: on dark pixels the ReLU-output model's error is "
            f"{dark_ratio:.2f}× the sigmoid model's ({other_ratio:.2f}× on the other pixels)."
        )
    return {
        "reproduced": reproduced,
        "dark_ratio": dark_ratio,
        "other_ratio": other_ratio,
        "sentence": sentence,
    }


# ---------------------------------------------------------------------- chapter 4: SRNDeblur


def scale_estimates(model: keras.Model, images, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every scale's output of a multi-scale model.

    Args: model, e.g. an SRNDeblur; images, its inputs; batch_size, for ``predict``.
    Returns: output name -> output, clipped to [0, 1], as float32 numpy."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {
        name: np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
        for name, out in zip(model.output_names, outputs)
    }


def resize_images(images, size) -> np.ndarray:
    """``images`` (N, H, W, C) resized to ``size`` (h, w) by antialiased bilinear interpolation
    (as the trainer makes the targets of a smaller output), clipped to [0, 1], as float32 numpy."""
    if tuple(images.shape[1:3]) == tuple(size):
        return np.asarray(images, dtype=np.float32)
    resized = keras.ops.image.resize(
        np.asarray(images, dtype=np.float32), tuple(size), interpolation="bilinear", antialias=True
    )
    return np.clip(keras.ops.convert_to_numpy(resized), 0.0, 1.0)


def metrics_per_scale(model: keras.Model, blurred, sharp, batch_size: int = 256) -> pd.DataFrame:
    """Mean MSE / PSNR / SSIM of each scale's output against the sharp image resized to that
    scale, beside the blurred input resized the same way (``resize_images``).

    Args: model, a multi-scale model; blurred, sharp, the test pairs; batch_size, for predict.
    Returns: one row a scale: scale, size, input MSE/PSNR/SSIM, MSE/PSNR/SSIM."""
    rows = []
    for name, estimate in scale_estimates(model, blurred, batch_size).items():
        size = estimate.shape[1:3]
        target = resize_images(sharp, size)
        base = M.summarize(M.per_image_metrics(resize_images(blurred, size), target))
        ours = M.summarize(M.per_image_metrics(estimate, target))
        rows.append(
            {
                "scale": name,
                "size": f"{size[0]}×{size[1]}",
                **{f"input {k.upper()}": base[k] for k in ("mse", "psnr", "ssim")},
                **{k.upper(): ours[k] for k in ("mse", "psnr", "ssim")},
            }
        )
    return pd.DataFrame(rows)
