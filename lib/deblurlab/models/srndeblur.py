"""SRNDeblur: a scale-recurrent encoder-decoder (Tao et al. 2018, report section 4), two scales.

One encoder-decoder (the *scale network*) is built once, as a set of layers, and called at every
scale, so its weights are shared, not copied:

- The coarse scale sees the blurred image halved (2x2 average) and, as its "previous estimate",
  that same halved image: 6 input channels.
- Its output, upsampled bilinearly, is concatenated with the full-resolution blurred image as the
  fine scale's input (again 6 channels).
- The scale network: an encoder of ``len(filters)`` levels (the first keeps the resolution, the
  others halve it with a strided Conv2D), each followed by ResBlocks (conv-act-conv + identity
  add); a recurrent bottleneck; a decoder that mirrors it with Conv2DTranspose upsampling and
  *additive* skips from the matching encoder level; an output convolution.
- The model returns ``[coarse, fine]`` (layers named "coarse" and "fine"): the trainer sums the MSE
  of both against the sharp image resized to each output, and evaluation uses the last one.

Variants:

- ``srndeblur_cifar`` / ``srndeblur_cifar_lstm`` (32x32): BatchNorm (momentum 0.9, the last one
  of each ResBlock initialised to zero), LeakyReLU, sigmoid output with an input skip through the
  logit (each scale starts as the identity; ``input_skip=False`` is the report's), filters (32, 64, 128), one
  ResBlock a level. The ``_lstm`` variant adds a vector-LSTM bottleneck: the bottleneck's
  pixels are read as a sequence of ``c``-dimensional vectors (h·w steps), so the LSTM(32) has the
  same input size, hence the same weights, at both scales; its final state starts the fine scale's
  LSTM. A Dense layer maps the 32-unit output back to h·w·c values, reshaped and *added* to the
  bottleneck features (a residual, so the 32-number summary does not replace them). Because h·w
  differs between scales, this Dense is the one per-scale layer: ``coarse_lstm_dense`` and
  ``fine_lstm_dense``.
- ``srndeblur_reds`` (any size that is a multiple of ``SRN_REDS_STRIDE``): no BatchNorm, ReLU, a
  linear output, 5x5 kernels, two ResBlocks a level, a first layer made of two convolutions (3x3
  and 5x5, 8 filters each) concatenated to 16 channels, filters (16, 32, 64), and a ConvLSTM bottleneck (``ConvLSTMCell``)
  whose hidden and cell states are upsampled bilinearly from the coarse to the fine scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from keras import layers

from .. import metrics as M
from .convlstm import ConvLSTMCell
from .layers import BN_MOMENTUM, sigmoid_with_input_skip
from .registry import build_model, register

# Each scale network halves its input (len(filters) - 1) times and the coarse scale sees the input
# halved once more, so a 2-scale model with 3 levels needs H and W to be multiples of 2 * 4 = 8.
SRN_REDS_STRIDE = 8


def required_multiple(levels: int, scales: int) -> int:
    return 2 ** (levels - 1) * 2 ** (scales - 1)


def scale_names(scales: int) -> list[str]:
    if scales == 1:
        return ["fine"]
    if scales == 2:
        return ["coarse", "fine"]
    return ["coarse", *[f"scale{i + 1}" for i in range(1, scales - 1)], "fine"]


def _activation(kind: str, name: str) -> layers.Layer:
    return layers.LeakyReLU(name=name) if kind == "leaky_relu" else layers.Activation(kind, name=name)


@dataclass
class _Conv:
    """Conv2D (or Conv2DTranspose) -> optional BatchNorm -> optional activation, built once."""

    conv: layers.Layer
    bn: layers.Layer | None
    act: layers.Layer | None

    @classmethod
    def make(cls, filters, kernel_size, name, strides=1, transpose=False, batch_norm=True, act=None,
             bn_momentum=BN_MOMENTUM, zero_gamma=False):
        kind = layers.Conv2DTranspose if transpose else layers.Conv2D
        conv = kind(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm,
                    name=f"{name}_conv")
        bn = (layers.BatchNormalization(momentum=bn_momentum, gamma_initializer="zeros" if zero_gamma else "ones",
                                        name=f"{name}_bn") if batch_norm else None)
        return cls(conv, bn, _activation(act, f"{name}_act") if act else None)

    def __call__(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x) if self.act is not None else x


class _ResBlock:
    """conv-BN-act-conv-BN, added to the block's input (no activation after the sum)."""

    def __init__(self, filters, kernel_size, name, batch_norm, act, bn_momentum=BN_MOMENTUM, zero_gamma=False):
        self.a = _Conv.make(filters, kernel_size, f"{name}_a", batch_norm=batch_norm, act=act, bn_momentum=bn_momentum)
        self.b = _Conv.make(filters, kernel_size, f"{name}_b", batch_norm=batch_norm, bn_momentum=bn_momentum,
                            zero_gamma=zero_gamma)
        self.add = layers.Add(name=f"{name}_add")

    def __call__(self, x):
        return self.add([x, self.b(self.a(x))])


class ScaleNetwork:
    """The encoder-decoder shared by every scale. Its layers are created in ``__init__`` and
    reused by each ``__call__``; only the LSTM bottleneck's Reshape/Dense layers are made per call
    (per scale), because their sizes depend on the scale's h·w."""

    def __init__(self, filters=(32, 64, 128), blocks_per_level=2, kernel_size=3, batch_norm=True,
                 activation="leaky_relu", out_channels=3, stem="single", bottleneck=None,
                 lstm_units=32, bn_momentum=BN_MOMENTUM, zero_gamma=False, zero_output=False):
        self.filters = tuple(filters)
        self.bottleneck = bottleneck
        self.lstm_units = lstm_units
        conv = dict(batch_norm=batch_norm, act=activation, bn_momentum=bn_momentum)
        res = dict(batch_norm=batch_norm, act=activation, bn_momentum=bn_momentum, zero_gamma=zero_gamma)
        if stem == "dual":  # two convolutions of half the filters, concatenated over channels
            half = self.filters[0] // 2
            self.stem = [_Conv.make(half, 3, "stem_3x3", **conv), _Conv.make(half, 5, "stem_5x5", **conv)]
            self.stem_concat = layers.Concatenate(name="stem_concat")
        elif stem == "single":
            self.stem = [_Conv.make(self.filters[0], kernel_size, "stem", **conv)]
        else:
            raise ValueError(f"stem={stem!r}: choose 'single' or 'dual'")
        self.down = [_Conv.make(f, kernel_size, f"enc{i}_down", strides=2, **conv)
                     for i, f in enumerate(self.filters) if i > 0]
        self.enc = [[_ResBlock(f, kernel_size, f"enc{i}_res{b + 1}", **res)
                     for b in range(blocks_per_level)] for i, f in enumerate(self.filters)]
        self.dec = [[_ResBlock(f, kernel_size, f"dec{i}_res{b + 1}", **res)
                     for b in range(blocks_per_level)] for i, f in enumerate(self.filters)]
        self.up = [_Conv.make(self.filters[i - 1], kernel_size, f"dec{i}_up", strides=2, transpose=True, **conv)
                   for i in range(1, len(self.filters))]
        self.skip = [layers.Add(name=f"dec{i}_skip") for i in range(len(self.filters) - 1)]
        self.out = layers.Conv2D(out_channels, kernel_size, padding="same", name="output_conv",
                                 kernel_initializer="zeros" if zero_output else "glorot_uniform")
        if bottleneck == "convlstm":
            self.cell = ConvLSTMCell(self.filters[-1], kernel_size, name="bottleneck_convlstm")
        elif bottleneck == "lstm":
            self.lstm = layers.LSTM(lstm_units, return_state=True, name="bottleneck_lstm")
        elif bottleneck is not None:
            raise ValueError(f"bottleneck={bottleneck!r}: choose None, 'lstm' or 'convlstm'")

    def __call__(self, x, state, scale: str):
        """Restore one scale. ``state`` is the recurrent state from the previous scale (None at the
        first); returns (output before the per-scale activation, state for the next scale)."""
        if len(self.stem) == 2:
            x = self.stem_concat([conv(x) for conv in self.stem])
        else:
            x = self.stem[0](x)
        skips = []
        for level, blocks in enumerate(self.enc):
            if level > 0:
                x = self.down[level - 1](x)
            for block in blocks:
                x = block(x)
            skips.append(x)
        x, state = self._bottleneck(x, state, scale)
        for level in reversed(range(len(self.filters))):
            for block in self.dec[level]:
                x = block(x)
            if level > 0:
                x = self.up[level - 1](x)
                x = self.skip[level - 1]([x, skips[level - 1]])
        return self.out(x), state

    def _bottleneck(self, x, state, scale):
        if self.bottleneck == "convlstm":
            h, c = self.cell([x] if state is None else [x, *state])
            return h, [h, c]
        if self.bottleneck == "lstm":
            height, width, channels = x.shape[1:]
            if height is None or width is None:
                raise ValueError("srndeblur_cifar_lstm needs a fixed input size (its Dense layers map "
                                 "to h*w*c values): pass input_shape=(32, 32, 3), not None.")
            seq = layers.Reshape((height * width, channels), name=f"{scale}_lstm_sequence")(x)
            out, h, c = self.lstm(seq) if state is None else self.lstm(seq, initial_state=state)
            y = layers.Dense(height * width * channels, name=f"{scale}_lstm_dense")(out)
            y = layers.Reshape((height, width, channels), name=f"{scale}_lstm_features")(y)
            return layers.Add(name=f"{scale}_lstm_residual")([x, y]), [h, c]
        return x, None


def srndeblur(input_shape=(32, 32, 3), scales: int = 2, filters=(32, 64, 128), blocks_per_level: int = 2,
              kernel_size: int = 3, batch_norm: bool = True, activation: str = "leaky_relu",
              output_activation: str | None = "sigmoid", stem: str = "single", bottleneck: str | None = None,
              lstm_units: int = 32, carry_state: bool = True, bn_momentum: float = BN_MOMENTUM,
              zero_gamma: bool = False, input_skip: bool = False, name: str = "srndeblur") -> keras.Model:
    """A ``scales``-scale SRNDeblur. ``carry_state=False`` starts every scale's recurrent layer from
    a zero state (an ablation; the weights are the same, so ``set_weights`` transfers).
    ``input_skip=True`` (sigmoid output only) adds each scale's blurred image to its output before
    the sigmoid, through the logit, and starts the shared output convolution at zero: every scale
    starts as the identity, as ResUNet and EDDenseNet do here."""
    if input_skip and output_activation != "sigmoid":
        raise ValueError("input_skip=True needs output_activation='sigmoid'")
    if scales < 1:
        raise ValueError(f"scales={scales}: use 1 or more")
    multiple = required_multiple(len(filters), scales)
    for size in input_shape[:2]:
        if size is not None and size % multiple:
            raise ValueError(f"input_shape={tuple(input_shape)}: {name} with {scales} scales and "
                             f"{len(filters)} levels needs height and width that are multiples of "
                             f"{multiple}; crop or pad the images.")
    net = ScaleNetwork(filters, blocks_per_level, kernel_size, batch_norm, activation, input_shape[-1],
                       stem, bottleneck, lstm_units, bn_momentum, zero_gamma, zero_output=input_skip)
    names = scale_names(scales)
    blurred = keras.Input(input_shape, name="blurred")
    upsample = layers.UpSampling2D(2, interpolation="bilinear", name="upsample_estimate")
    upsample_state = layers.UpSampling2D(2, interpolation="bilinear", name="upsample_state")
    outputs, estimate, state = [], None, None
    for k, scale in enumerate(names):
        factor = 2 ** (scales - 1 - k)
        image = (layers.AveragePooling2D(factor, name=f"{scale}_blurred")(blurred) if factor > 1 else blurred)
        previous = image if estimate is None else upsample(estimate)
        x = layers.Concatenate(name=f"{scale}_input")([image, previous])
        if not carry_state:
            state = None
        elif state is not None and bottleneck == "convlstm":  # the next bottleneck is twice as large
            state = [upsample_state(s) for s in state]
        y, state = net(x, state, scale)
        if input_skip:
            estimate = sigmoid_with_input_skip(y, image, name=scale)
        else:
            estimate = layers.Activation(output_activation or "linear", name=scale)(y)
        outputs.append(estimate)
    model = keras.Model(blurred, outputs if scales > 1 else outputs[0], name=name)
    model.required_multiple = multiple
    return model


def _remember(model: keras.Model, overrides: dict) -> keras.Model:
    model.build_overrides = dict(overrides)  # the builder arguments that differ from the registered ones
    return model


# One ResBlock a level (the paper has three; the report does not say): SRN at 32 filters already
# costs several times ResUNet1's compute, and the default profile trains on two CPU cores.
# Two choices for short runs, neither of which changes the parameters: BatchNorm's moving averages
# follow the batches with momentum 0.9 (Keras' 0.99 leaves a quarter of the initial statistics in
# them after the ~130 steps of the default profile), and the last BatchNorm of every ResBlock
# starts with gamma = 0, so each block starts as the identity (Goyal et al. 2017). One change that
# adds no parameter: the input-to-output skip through the logit (``input_skip``), as for ResUNet
# and EDDenseNet, so that both scales start as the identity.
CIFAR = dict(filters=(32, 64, 128), blocks_per_level=1, kernel_size=3, batch_norm=True,
             activation="leaky_relu", output_activation="sigmoid", stem="single", bn_momentum=BN_MOMENTUM,
             zero_gamma=True, input_skip=True)
CIFAR_TRAINING = dict(learning_rate=1e-3, patience=7, batch_size=150)


@register("srndeblur_cifar", family="srndeblur", dataset="cifar10",
          description="2-scale SRN, shared encoder-decoder, no LSTM", training=CIFAR_TRAINING,
          reference=dict(mse=0.00175, psnr=29.23, ssim=0.9225),
          default_epochs=1)
def srndeblur_cifar(input_shape=(32, 32, 3), **kwargs):
    return _remember(srndeblur(input_shape, **{**CIFAR, "bottleneck": None, "name": "srndeblur_cifar", **kwargs}),
                     kwargs)


@register("srndeblur_cifar_lstm", family="srndeblur", dataset="cifar10",
          description="2-scale SRN with an LSTM(32) bottleneck carried across scales",
          training=CIFAR_TRAINING, reference=dict(mse=0.00174, psnr=29.38, ssim=0.9188),
          default_epochs=1)
def srndeblur_cifar_lstm(input_shape=(32, 32, 3), **kwargs):
    return _remember(srndeblur(input_shape, **{**CIFAR, "bottleneck": "lstm", "name": "srndeblur_cifar_lstm",
                                               **kwargs}), kwargs)


# Two ResBlocks a level (the paper has three), 5x5 kernels as in the paper.
REDS = dict(filters=(16, 32, 64), blocks_per_level=2, kernel_size=5, batch_norm=False, activation="relu",
            output_activation=None, stem="dual", bottleneck="convlstm")


@register("srndeblur_reds", family="srndeblur", dataset="motion",
          description="2-scale SRN for motion blur: ConvLSTM bottleneck, any size (multiple of 8)",
          training=dict(learning_rate=1e-4, patience=7, batch_size=10),
          reference=dict(mse=0.002, psnr=27.23, ssim=0.8105, range="any"),
          default_epochs=None)  # a motion model: its epochs come from profiles.MOTION_SIZES
def srndeblur_reds(input_shape=(None, None, 3), **kwargs):
    return _remember(srndeblur(input_shape, **{**REDS, "name": "srndeblur_reds", **kwargs}), kwargs)


# --- analysis helpers for the chapter notebook --------------------------------------------------

def with_state_cut(name: str, model: keras.Model, input_shape=None) -> keras.Model:
    """A copy of the trained ``model`` (registered as ``name``) whose fine scale starts its recurrent
    layer from a zero state instead of the coarse scale's: same weights, one connection removed."""
    shape = input_shape or tuple(model.inputs[0].shape[1:])
    overrides = {k: v for k, v in getattr(model, "build_overrides", {}).items() if k != "carry_state"}
    cut = build_model(name, input_shape=shape, carry_state=False, **overrides)
    cut.set_weights(model.get_weights())
    return cut


def scale_estimates(model: keras.Model, images, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Every scale's output for ``images``, by output name, clipped to [0, 1] as float32."""
    outputs = model.predict(images, batch_size=batch_size, verbose=0)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
            for name, out in zip(model.output_names, outputs)}


def metrics_per_scale(model: keras.Model, blurred, sharp, batch_size: int = 256):
    """Mean MSE / PSNR / SSIM of each scale's output against the sharp image resized to that scale
    (antialiased bilinear, as the trainer makes the targets), beside the blurred input resized the
    same way. Returns a DataFrame with columns scale, size, input MSE/PSNR/SSIM, MSE/PSNR/SSIM."""
    def resize(images, size):
        if tuple(images.shape[1:3]) == tuple(size):
            return np.asarray(images, dtype=np.float32)
        return np.clip(tf.image.resize(images, size, antialias=True).numpy(), 0.0, 1.0)

    rows = []
    for name, estimate in scale_estimates(model, blurred, batch_size).items():
        size = estimate.shape[1:3]
        target = resize(sharp, size)
        base = M.summarize(M.per_image_metrics(resize(blurred, size), target))
        ours = M.summarize(M.per_image_metrics(estimate, target))
        rows.append({"scale": name, "size": f"{size[0]}×{size[1]}",
                     **{f"input {k.upper()}": base[k] for k in ("mse", "psnr", "ssim")},
                     **{k.upper(): ours[k] for k in ("mse", "psnr", "ssim")}})
    return pd.DataFrame(rows)
