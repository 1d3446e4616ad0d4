"""The scale network of SRNDeblur (``models/srndeblur.py``): one encoder-decoder whose layers are
built once and called at every scale, so that the scales share their weights.

A building block, not an architecture file (listed in ``models.HELPERS``): it registers no
model and imports only keras and the shared layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from keras import layers

from .convlstm import ConvLSTMCell
from .layers import BN_MOMENTUM


def _activation(kind: str, name: str) -> layers.Layer:
    return (
        layers.LeakyReLU(name=name) if kind == "leaky_relu" else layers.Activation(kind, name=name)
    )


@dataclass
class _Conv:
    """Conv2D (or Conv2DTranspose) -> optional BatchNorm -> optional activation, built once."""

    conv: layers.Layer
    bn: layers.Layer | None
    act: layers.Layer | None

    @classmethod
    def make(
        cls,
        filters,
        kernel_size,
        name,
        strides=1,
        transpose=False,
        batch_norm=True,
        act=None,
        bn_momentum=BN_MOMENTUM,
        zero_gamma=False,
    ):
        kind = layers.Conv2DTranspose if transpose else layers.Conv2D
        conv = kind(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=not batch_norm,
            name=f"{name}_conv",
        )
        bn = (
            layers.BatchNormalization(
                momentum=bn_momentum,
                gamma_initializer="zeros" if zero_gamma else "ones",
                name=f"{name}_bn",
            )
            if batch_norm
            else None
        )
        return cls(conv, bn, _activation(act, f"{name}_act") if act else None)

    def __call__(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x) if self.act is not None else x


class _ResBlock:
    """conv-BN-act-conv-BN, added to the block's input (no activation after the sum)."""

    def __init__(
        self, filters, kernel_size, name, batch_norm, act, bn_momentum=BN_MOMENTUM, zero_gamma=False
    ):
        self.a = _Conv.make(
            filters,
            kernel_size,
            f"{name}_a",
            batch_norm=batch_norm,
            act=act,
            bn_momentum=bn_momentum,
        )
        self.b = _Conv.make(
            filters,
            kernel_size,
            f"{name}_b",
            batch_norm=batch_norm,
            bn_momentum=bn_momentum,
            zero_gamma=zero_gamma,
        )
        self.add = layers.Add(name=f"{name}_add")

    def __call__(self, x):
        return self.add([x, self.b(self.a(x))])


class ScaleNetwork:
    """The encoder-decoder shared by every scale. Its layers are created in ``__init__`` and
    reused by each ``__call__``; only the LSTM bottleneck's Reshape/Dense layers are made per call
    (per scale), because their sizes depend on the scale's h·w."""

    def __init__(
        self,
        filters=(32, 64, 128),
        blocks_per_level=2,
        kernel_size=3,
        batch_norm=True,
        activation="leaky_relu",
        out_channels=3,
        stem="single",
        bottleneck=None,
        lstm_units=32,
        bn_momentum=BN_MOMENTUM,
        zero_gamma=False,
        zero_output=False,
    ):
        self.filters = tuple(filters)
        self.bottleneck = bottleneck
        self.lstm_units = lstm_units
        conv = dict(batch_norm=batch_norm, act=activation, bn_momentum=bn_momentum)
        res = dict(
            batch_norm=batch_norm, act=activation, bn_momentum=bn_momentum, zero_gamma=zero_gamma
        )
        if stem == "dual":  # two convolutions of half the filters, concatenated over channels
            half = self.filters[0] // 2
            self.stem = [
                _Conv.make(half, 3, "stem_3x3", **conv),
                _Conv.make(half, 5, "stem_5x5", **conv),
            ]
            self.stem_concat = layers.Concatenate(name="stem_concat")
        elif stem == "single":
            self.stem = [_Conv.make(self.filters[0], kernel_size, "stem", **conv)]
        else:
            raise ValueError(f"stem={stem!r}: choose 'single' or 'dual'")
        self.down = [
            _Conv.make(f, kernel_size, f"enc{i}_down", strides=2, **conv)
            for i, f in enumerate(self.filters)
            if i > 0
        ]
        self.enc = [
            [
                _ResBlock(f, kernel_size, f"enc{i}_res{b + 1}", **res)
                for b in range(blocks_per_level)
            ]
            for i, f in enumerate(self.filters)
        ]
        self.dec = [
            [
                _ResBlock(f, kernel_size, f"dec{i}_res{b + 1}", **res)
                for b in range(blocks_per_level)
            ]
            for i, f in enumerate(self.filters)
        ]
        self.up = [
            _Conv.make(
                self.filters[i - 1], kernel_size, f"dec{i}_up", strides=2, transpose=True, **conv
            )
            for i in range(1, len(self.filters))
        ]
        self.skip = [layers.Add(name=f"dec{i}_skip") for i in range(len(self.filters) - 1)]
        self.out = layers.Conv2D(
            out_channels,
            kernel_size,
            padding="same",
            name="output_conv",
            kernel_initializer="zeros" if zero_output else "glorot_uniform",
        )
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
                raise ValueError(
                    "srndeblur_cifar_lstm needs a fixed input size (its Dense layers map "
                    "to h*w*c values): pass input_shape=(32, 32, 3), not None."
                )
            seq = layers.Reshape((height * width, channels), name=f"{scale}_lstm_sequence")(x)
            out, h, c = self.lstm(seq) if state is None else self.lstm(seq, initial_state=state)
            y = layers.Dense(height * width * channels, name=f"{scale}_lstm_dense")(out)
            y = layers.Reshape((height, width, channels), name=f"{scale}_lstm_features")(y)
            return layers.Add(name=f"{scale}_lstm_residual")([x, y]), [h, c]
        return x, None
