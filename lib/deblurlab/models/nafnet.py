"""NAFNet: a nonlinear-activation-free UNet (Chen et al., ECCV 2022, "Simple Baselines for Image
Restoration"), small, for motion blur.

The network has no nonlinear activation function; its only nonlinearity is multiplicative:

- **NAFBlock** (``c`` channels in and out): two residual branches.
  - The first: LayerNorm over the channels of each pixel, a 1x1 convolution to ``dw_expand * c``
    channels, a 3x3 depthwise convolution, the *SimpleGate* (split the channels in two halves and
    multiply them), *Simplified Channel Attention* (a global average pool and a 1x1 convolution
    give one weight per channel, multiplied in), and a 1x1 convolution back to ``c`` channels,
    scaled per channel by ``beta`` and added to the block's input.
  - The second, the feed-forward branch: LayerNorm, a 1x1 convolution to ``ffn_expand * c``, the
    SimpleGate, a 1x1 convolution back to ``c``, scaled per channel by ``gamma`` and added.
  - ``beta`` and ``gamma`` start at zero, as in the paper: a fresh block is the identity.
- **UNet**: a 3x3 convolution to ``width`` channels; one encoder stage per entry of
  ``enc_blocks`` (that many NAFBlocks, then a strided 2x2 convolution that halves the size and
  doubles the channels); ``middle_blocks`` NAFBlocks at the coarsest size; one decoder stage per
  entry of ``dec_blocks`` (a bias-free 1x1 convolution that doubles the channels and a
  PixelShuffle by 2, which halves them again and doubles the size; the matching encoder stage's
  output *added*; that many NAFBlocks); a 3x3 convolution back to the image's channels (the
  *head*), added to the blurred input (the global residual).

One departure from the paper: the head starts at zero (kernel and bias). With the zero ``beta``
and ``gamma`` and the global residual, a fresh network returns its input exactly, as the other
models here do through their input skip; every weight still trains (the head's gradient is not
zero, and once it moves, the blocks' scales receive gradients).

Any input size whose height and width are multiples of ``2 ** len(enc_blocks)``
(``model.required_multiple``, read by ``inference.network_multiple``); one linear output, the
restored image (layer "restored").
"""

from __future__ import annotations

import keras
from keras import layers

from .registry import register


@keras.saving.register_keras_serializable(package="deblurlab")
class SimpleGate(layers.Layer):
    """NAFNet's gate: the channels split in two halves, multiplied elementwise (C -> C / 2)."""

    def call(self, x):
        """The first half of ``x``'s channels times the second."""
        a, b = keras.ops.split(x, 2, axis=-1)
        return a * b

    def compute_output_shape(self, input_shape):
        """The input's shape with half its channels."""
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.saving.register_keras_serializable(package="deblurlab")
class ChannelScale(layers.Layer):
    """A learnable scale per channel (NAFNet's ``beta`` and ``gamma``), initialised to zero."""

    def build(self, input_shape):
        """One scale per channel, zero."""
        self.scale = self.add_weight(
            name="scale", shape=(input_shape[-1],), initializer="zeros", trainable=True
        )

    def call(self, x):
        """``x`` scaled channel by channel."""
        return x * keras.ops.cast(self.scale, x.dtype)

    def compute_output_shape(self, input_shape):
        """The input's shape."""
        return input_shape


@keras.saving.register_keras_serializable(package="deblurlab")
class PixelShuffle(layers.Layer):
    """Depth to space: (N, H, W, C * r * r) -> (N, H * r, W * r, C), ``keras.ops`` only."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        """``x`` rearranged from channels into ``factor`` x ``factor`` pixel blocks."""
        return keras.ops.depth_to_space(x, self.factor)

    def compute_output_shape(self, input_shape):
        """Height and width ``factor`` times larger, channels ``factor ** 2`` times fewer."""
        n, h, w, c = input_shape
        r = self.factor
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        """The layer's config, with ``factor``."""
        return {**super().get_config(), "factor": self.factor}


def naf_block(x, channels: int, name: str, dw_expand: int = 2, ffn_expand: int = 2):
    """One NAFBlock on ``x`` (``channels`` channels, NHWC); see the module docstring."""
    inputs = x
    dw = channels * dw_expand
    x = layers.LayerNormalization(axis=-1, epsilon=1e-6, name=f"{name}_norm1")(x)
    x = layers.Conv2D(dw, 1, name=f"{name}_conv1")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dwconv")(x)
    x = SimpleGate(name=f"{name}_gate1")(x)
    attention = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_sca_pool")(x)
    attention = layers.Conv2D(dw // 2, 1, name=f"{name}_sca_conv")(attention)
    x = layers.Multiply(name=f"{name}_sca")([x, attention])
    x = layers.Conv2D(channels, 1, name=f"{name}_conv3")(x)
    y = layers.Add(name=f"{name}_add1")([inputs, ChannelScale(name=f"{name}_beta")(x)])

    x = layers.LayerNormalization(axis=-1, epsilon=1e-6, name=f"{name}_norm2")(y)
    x = layers.Conv2D(channels * ffn_expand, 1, name=f"{name}_conv4")(x)
    x = SimpleGate(name=f"{name}_gate2")(x)
    x = layers.Conv2D(channels, 1, name=f"{name}_conv5")(x)
    return layers.Add(name=f"{name}_add2")([y, ChannelScale(name=f"{name}_gamma")(x)])


def nafnet(
    input_shape=(None, None, 3),
    width: int = 16,
    enc_blocks=(1, 1, 1, 8),
    middle_blocks: int = 1,
    dec_blocks=(1, 1, 1, 1),
    dw_expand: int = 2,
    ffn_expand: int = 2,
    name: str = "nafnet",
) -> keras.Model:
    """A NAFNet of ``len(enc_blocks)`` stages, ``width`` channels at full resolution."""
    if len(dec_blocks) != len(enc_blocks):
        raise ValueError(
            f"enc_blocks={tuple(enc_blocks)}, dec_blocks={tuple(dec_blocks)}: one decoder stage "
            "per encoder stage"
        )
    multiple = 2 ** len(enc_blocks)
    for size in input_shape[:2]:
        if size is not None and size % multiple:
            raise ValueError(
                f"input_shape={tuple(input_shape)}: {name} with {len(enc_blocks)} stages needs "
                f"height and width that are multiples of {multiple}; crop or pad the images."
            )
    blurred = keras.Input(input_shape, name="blurred")
    x = layers.Conv2D(width, 3, padding="same", name="intro")(blurred)
    skips, channels = [], width
    for level, blocks in enumerate(enc_blocks):
        for b in range(blocks):
            x = naf_block(x, channels, f"enc{level}_block{b + 1}", dw_expand, ffn_expand)
        skips.append(x)
        channels *= 2
        x = layers.Conv2D(channels, 2, strides=2, name=f"enc{level}_down")(x)
    for b in range(middle_blocks):
        x = naf_block(x, channels, f"middle_block{b + 1}", dw_expand, ffn_expand)
    for level in reversed(range(len(dec_blocks))):
        x = layers.Conv2D(channels * 2, 1, use_bias=False, name=f"dec{level}_up_conv")(x)
        x = PixelShuffle(2, name=f"dec{level}_up_shuffle")(x)
        channels //= 2
        x = layers.Add(name=f"dec{level}_skip")([x, skips[level]])
        for b in range(dec_blocks[level]):
            x = naf_block(x, channels, f"dec{level}_block{b + 1}", dw_expand, ffn_expand)
    correction = layers.Conv2D(
        input_shape[-1],
        3,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer="zeros",
        name="head",
    )(x)
    restored = layers.Add(name="restored")([blurred, correction])
    model = keras.Model(blurred, restored, name=name)
    model.required_multiple = multiple
    model.identity_at_init = True  # no motion_study.identity_init needed (that one is SRN's)
    return model


# Width 16 and four stages (16, 32, 64, 128 channels; 256 in the middle), most blocks at the
# coarsest encoder stage, as the paper's GoPro model ([1, 1, 1, 28], width 32 and 64) has them:
# 1.97 M parameters (SRNDeblur_reds: 2.03 M) and 1.01 GFLOP a 128x128 patch (SRNDeblur_reds:
# 9.03), by perf.flops. Many small memory-bound layers: on TensorFlow's CPU backend it trains
# several times slower with XLA than without (Keras' "auto" leaves XLA off on a CPU).
SMALL = dict(width=16, enc_blocks=(1, 1, 1, 8), middle_blocks=1, dec_blocks=(1, 1, 1, 1))


@register(
    "nafnet_small",
    family="nafnet",
    dataset="motion",
    description="NAFNet, width 16, 4 stages: no activation functions, any size (multiple of 16)",
    # NAFNet's own option files: Adam(W) at 1e-3 with a cosine decay; the batch of srndeblur_reds.
    training=dict(learning_rate=1e-3, patience=7, batch_size=10),
    reference=dict(range="any"),  # the original report has no NAFNet: no scores
    default_epochs=None,
)  # a motion model: its epochs come from profiles.MOTION_SIZES
def nafnet_small(input_shape=(None, None, 3), **kwargs):
    """The registered small NAFNet for motion blur, any size that is a multiple of 16."""
    model = nafnet(input_shape, **{**SMALL, "name": "nafnet_small", **kwargs})
    model.build_overrides = dict(kwargs)  # the builder arguments that differ from the registered
    return model
