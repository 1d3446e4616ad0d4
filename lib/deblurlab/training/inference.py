"""Whole-frame inference: padding to the network's size multiple, tiles, any-size rebuilds.

    net = full_resolution_model(trained)            # the trained weights, any input size
    restored = deblur_frame(net, blurred)           # padded, run whole, cropped back, clipped
    restored = deblur_image(model, image, tile=512) # tiles cross-faded without a seam

Backend-neutral: frames and tiles run through ``predict_on_batch`` (``predict_batch``: the
backend's compiled predict function, traced once per image size and kept, which frees each
activation once it is used: far less peak memory on large frames than an eager call, and faster);
``run_model`` / ``run_batch`` are the eager Keras call, for small batches. Which path and which
settings are fastest on a whole 1280x720 frame is measured by ``python -m deblurlab.perf --frame``
(``deblurlab.perf.frame``; the record: ``tuning/<machine key>.frame.json``).

Importing this module imports neither Keras nor TensorFlow: the padding and tiles also serve any
object that looks like a model from outside (``inputs[0].shape``, ``name``, ``required_multiple``,
``predict_on_batch`` returning numpy), such as an ONNX Runtime session (``onnx_engine``).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

MAX_PIXELS = 1024 * 1024  # a (padded) frame up to this many pixels runs whole; larger ones in tiles
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
FIXED_TILE_BATCH = 64  # tiles a call for a model that runs on 32x32 tiles only


# ------------------------------------------------------------------------------------- networks


def network_multiple(model: keras.Model, default: int = 8) -> int:
    """The size multiple the network's sides need (SRNDeblur_reds: 8)."""
    return int(getattr(model, "required_multiple", default))


def input_size(model) -> tuple[int | None, int | None]:
    """(height, width) the model's input is built for; (None, None) when any size."""
    shape = model.inputs[0].shape
    return shape[1], shape[2]


def is_any_size(model) -> bool:
    """Whether ``model`` accepts inputs of any height and width."""
    return input_size(model) == (None, None)


def weight_shapes(model) -> list[list[int]]:
    """The shape of each of ``model``'s weights, in order."""
    return [list(w.shape) for w in model.weights]


def full_resolution_model(trained: keras.Model, model_name: str) -> keras.Model:
    """``model_name`` built for any input size, holding the weights of ``trained``."""
    from ..models import build_model

    model = build_model(model_name, input_shape=(None, None, 3))
    model.set_weights(trained.get_weights())
    return model


_ANY_SIZE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its any-size copy
_FIXED: weakref.WeakSet = weakref.WeakSet()  # models whose weights depend on the input size


def any_size(model, name: str | None = None):
    """``model`` rebuilt for input shape (None, None, C) with its weights, when its architecture
    allows it (a registered model whose weights do not depend on the image size); otherwise
    ``model`` itself, which then runs on tiles of its own input size. ``name``: the registered
    name when it differs from ``model.name``. Cached per model. A model without Keras weights
    (an ONNX session: ``onnx_engine``) is returned as it is."""
    if is_any_size(model) or not callable(getattr(model, "get_weights", None)):
        return model
    if model in _FIXED:
        return model
    from ..models import build_model, list_models

    if model in _ANY_SIZE:
        return _ANY_SIZE[model]
    name = name or model.name
    if name in list_models():
        overrides = dict(getattr(model, "build_overrides", {}))
        try:
            rebuilt = build_model(
                name, input_shape=(None, None, model.inputs[0].shape[-1]), **overrides
            )
        except ValueError:  # the architecture needs a fixed size (srndeblur_cifar_lstm)
            rebuilt = None
        if rebuilt is not None and weight_shapes(rebuilt) == weight_shapes(model):
            rebuilt.set_weights(model.get_weights())
            _ANY_SIZE[model] = rebuilt
            return rebuilt
    _FIXED.add(model)
    return model


# -------------------------------------------------------------------------------------- running


def _finest(out) -> np.ndarray:
    out = out[-1] if isinstance(out, (list, tuple)) else out
    if isinstance(out, np.ndarray):
        return out.astype(np.float32, copy=False)
    import keras

    return np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32)


def run_model(model: keras.Model, image: np.ndarray) -> np.ndarray:
    """The finest output of ``model`` for one (H, W, C) image, by an eager Keras call."""
    return run_batch(model, image[None])[0]


def run_batch(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """The finest output of ``model`` for an (N, H, W, C) batch, by an eager Keras call (no
    tracing: quick for small batches)."""
    return _finest(model(np.asarray(batch, np.float32), training=False))


MAX_TRACES = 8  # input shapes whose traced predict function a model keeps (least recent dropped)
_TRACES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {(H, W, C): function}


def predict_batch(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """The finest output of ``model`` for a batch of images, by ``predict_on_batch``.

    The predict function is traced once per image size and kept (up to ``MAX_TRACES`` sizes a
    model), so frames of alternating sizes (landscape and portrait photos) are not traced again:
    a trace generalised to any size fails on layers that need static sizes (srndeblur's bilinear
    upsampling). A model without Keras' predict function (an ONNX session) is simply called."""
    batch = np.asarray(batch, np.float32)
    if not callable(getattr(model, "make_predict_function", None)):
        return _finest(model.predict_on_batch(batch))
    traces = _TRACES.setdefault(model, {})
    key = batch.shape[1:]
    function = traces.pop(key, None)
    if function is None:
        if len(traces) >= MAX_TRACES:
            traces.pop(next(iter(traces)))
        model.predict_function = None
        model.make_predict_function()
        function = model.predict_function
    traces[key] = function  # most recent last
    model.predict_function = function
    return _finest(model.predict_on_batch(batch))


def traced_sizes(model) -> list[tuple[int, ...]]:
    """The (H, W, C) sizes whose predict function ``predict_batch`` keeps for ``model``."""
    return list(_TRACES.get(model, {}))


# -------------------------------------------------------------------------------------- padding


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an (H, W, C) image at the bottom and right to multiples of ``multiple``.
    Returns (padded, (H, W))."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    mode = "reflect" if ph < h and pw < w else "symmetric"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode), (h, w)


def centre_crop(image: np.ndarray, size) -> np.ndarray:
    """The centre (h, w) = ``size`` window of ``image`` (all of it when ``size`` is None)."""
    if size is None:
        return image
    h, w = min(size[0], image.shape[0]), min(size[1], image.shape[1])
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return image[top : top + h, left : left + w]


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average downscaling by an integer factor (a low-resolution view of a frame)."""
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, -1)
    return blocks.mean(axis=(1, 3)).astype(np.float32)


# ---------------------------------------------------------------------------------------- tiles


def fixed_overlap(tile: int) -> int:
    """Overlap of the tiles of a fixed-size model: a quarter of its size (8 px for 32x32)."""
    return max(1, tile // 4)


def _starts(length: int, tile: int, step: int) -> list[int]:
    if length <= tile:
        return [0]
    return [*range(0, length - tile, step), length - tile]


def _window(length: int, start: int, total: int, overlap: int) -> np.ndarray:
    """1-D blending weight of a tile along one axis. On a side inside the frame the tile's outer
    overlap/2 pixels get no weight (the network's own border effects), the next ``overlap`` pixels
    ramp linearly to 1; a side on the frame's border keeps full weight. Neighbouring tiles share
    2 x overlap pixels, so their ramps are complementary and cross-fade without a seam."""
    if overlap <= 0:
        return np.ones(length, np.float32)
    d = np.arange(length, dtype=np.float32) + 0.5
    lead = np.ones(length, np.float32) if start == 0 else np.clip((d - overlap / 2) / overlap, 0, 1)
    trail = (
        np.ones(length, np.float32)
        if start + length >= total
        else np.clip((d[::-1] - overlap / 2) / overlap, 0, 1)
    )
    return np.minimum(lead, trail)


def deblur_tiled(
    model, padded: np.ndarray, tile: tuple[int, int], overlap: int, multiple: int, batch: int = 1
) -> np.ndarray:
    """Run ``model`` over an (H, W, C) image already padded to ``multiple`` in tiles of
    ``tile`` = (th, tw) whose starts are multiples of ``multiple`` (so the strided layers see the
    same pixel grid as on the whole frame), neighbours sharing at least 2 x ``overlap`` pixels,
    blended by ``_window``, ``batch`` tiles a call. Returns the (H, W, C) output, not clipped."""
    H, W = padded.shape[:2]
    th, tw = min(tile[0], H), min(tile[1], W)
    steps = []
    for size, length in ((th, H), (tw, W)):
        step = size if length <= size else (size - 2 * overlap) // multiple * multiple
        if step <= 0:
            raise ValueError(
                f"tile {size} px is too small for an overlap of {overlap} px: it must "
                f"be at least 2 x overlap + {multiple} (the network's multiple)"
            )
        steps.append(step)
    coords = [(y, x) for y in _starts(H, th, steps[0]) for x in _starts(W, tw, steps[1])]
    if len(coords) == 1:  # the whole frame at once
        return predict_batch(model, padded[None])[0]
    out = np.zeros((H, W, padded.shape[-1]), np.float64)
    weight = np.zeros((H, W, 1), np.float64)
    for i in range(0, len(coords), batch):
        chunk = coords[i : i + batch]
        pieces = predict_batch(model, np.stack([padded[y : y + th, x : x + tw] for y, x in chunk]))
        for (y, x), piece in zip(chunk, pieces):
            w = np.outer(_window(th, y, H, overlap), _window(tw, x, W, overlap))[..., None]
            out[y : y + th, x : x + tw] += piece * w
            weight[y : y + th, x : x + tw] += w
    return (out / weight).astype(np.float32)


def deblur_frame(
    model: keras.Model,
    blurred: np.ndarray,
    multiple: int | None = None,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
) -> np.ndarray:
    """Restore one whole (H, W, 3) frame with an any-size ``model``: pad to the network's
    multiple, run whole (``predict_batch``), crop back to (H, W), clip to [0, 1]. With ``tile`` (a
    multiple of the network's multiple), a frame larger than it runs in tile x tile pieces
    cross-faded over ``overlap`` pixels (``deblur_tiled``), for when it does not fit in memory."""
    multiple = multiple or network_multiple(model)
    padded, (h, w) = pad_to_multiple(np.asarray(blurred, np.float32), multiple)
    if tile is None or (padded.shape[0] <= tile and padded.shape[1] <= tile):
        return np.clip(predict_batch(model, padded[None])[0][:h, :w], 0.0, 1.0)
    if tile % multiple or tile - 2 * overlap < multiple:
        raise ValueError(
            f"tile={tile} must be a multiple of {multiple} and at least "
            f"2 x overlap + {multiple} = {2 * overlap + multiple}"
        )
    return np.clip(deblur_tiled(model, padded, (tile, tile), overlap, multiple)[:h, :w], 0.0, 1.0)


def check_tile(model, tile: int | None, overlap: int = DEFAULT_OVERLAP) -> None:
    """Raise ``ValueError`` when ``tile`` / ``overlap`` cannot be used with ``model``."""
    model = any_size(model)
    multiple = network_multiple(model)
    fixed = input_size(model)
    if fixed != (None, None):
        if tile not in (None, fixed[0]) or fixed[0] != fixed[1]:
            raise ValueError(
                f"{model.name} runs only on {fixed[1]}x{fixed[0]} inputs (its weights "
                "depend on the image size), so it is always run on tiles of that size; "
                f"--tile {tile} does not apply."
            )
        return
    if overlap < 0:
        raise ValueError(f"overlap={overlap}: use 0 or more pixels")
    size = DEFAULT_TILE if tile is None else tile  # None: the tile that large frames get
    what = f"the default tile {size}" if tile is None else f"tile={size}"
    if size and (size < 0 or size % multiple):
        raise ValueError(f"{what} must be a positive multiple of {multiple} for {model.name}")
    if size and size - 2 * overlap < multiple:
        raise ValueError(
            f"{what} is too small for an overlap of {overlap} px: use tiles of at "
            f"least 2 x overlap + {multiple} = {2 * overlap + multiple}"
        )


def deblur_image(
    model, image: np.ndarray, tile: int | None = None, overlap: int = DEFAULT_OVERLAP
) -> np.ndarray:
    """Restore one (H, W, 3) float image in [0, 1] (uint8 is scaled, 2-D grayscale repeated):
    padded by reflection to the network's multiple, run, cropped back to (H, W), clipped.

    ``tile=None``: the whole frame when it has at most ``MAX_PIXELS`` pixels (after padding),
    else tiles of ``DEFAULT_TILE``; ``tile=0``: always the whole frame; ``tile=N`` (a multiple of
    the network's multiple): tiles of N x N, blended as in ``deblur_tiled``. A fixed-size model is
    first rebuilt for any size (``any_size``) where its architecture allows it, else it runs on
    tiles of its own size, overlapping by a quarter of it. Returns float32 (H, W, 3)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255.0
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image of shape {image.shape}: expected (H, W, 3) RGB")
    image = image.astype(np.float32)
    model = any_size(model)
    check_tile(model, tile, overlap)
    multiple = network_multiple(model)
    h, w = image.shape[:2]
    padded, _ = pad_to_multiple(image, multiple)
    fixed = input_size(model)
    if fixed != (None, None):  # tiles of the model's own size; a smaller image is padded up to it
        extra = (max(0, fixed[0] - padded.shape[0]), max(0, fixed[1] - padded.shape[1]))
        padded = np.pad(padded, ((0, extra[0]), (0, extra[1]), (0, 0)), mode="symmetric")
        out = deblur_tiled(
            model, padded, fixed, fixed_overlap(fixed[0]), multiple, batch=FIXED_TILE_BATCH
        )
    else:
        if tile is None:
            tile = 0 if padded.shape[0] * padded.shape[1] <= MAX_PIXELS else DEFAULT_TILE
        size = (tile, tile) if tile else padded.shape[:2]  # tiles, or one tile of the whole frame
        out = deblur_tiled(model, padded, size, overlap, multiple)
    return np.clip(out[:h, :w], 0.0, 1.0)
