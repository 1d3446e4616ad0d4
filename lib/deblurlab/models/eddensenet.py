"""EDDenseNet: an encoder-decoder built from DenseBlocks (report section 3.4, after Huang et al.
2016).

- A DenseBlock holds ``n`` layers; each layer sees the concatenation of the block's input and of
  every earlier layer's output, and adds ``growth`` (16) new channels. A layer is DenseNet-BC's
  composite: BN -> ReLU -> 1x1 Conv (``4 * growth`` channels, the per-layer bottleneck) -> BN ->
  ReLU -> 3x3 Conv (``growth`` channels).
- The encoder runs DenseBlocks of [6, 6, 3] layers. Between them a transition halves the channels
  (DenseNet's compression 0.5) and the resolution, with a strided 3x3 Conv2D instead of pooling.
- At the end of the encoder a bottleneck layer (BN -> ReLU -> 3x3 Conv with ``growth`` filters)
  cuts the channels of the last DenseBlock (16 + 6*16 -> 56, 56 + 6*16 -> 76, 76 + 3*16 = 124)
  down to 16 before the decoder.
- The decoder runs DenseBlocks of [3, 6] layers, each followed by a transition that doubles the
  resolution with a Conv2DTranspose and halves the channels.
- A final Conv2DTranspose (3x3, stride 1) with a sigmoid maps the features to RGB in [0, 1].
- Our one addition (``input_skip=True``, as in ResUNet): the input joins the output before the
  sigmoid, through its inverse, and the final Conv2DTranspose starts at zero, so a fresh network
  returns its input. ``input_skip=False`` builds the report's network exactly.
- Batch normalisation uses a moving-average momentum of 0.9 (``layers.BN_MOMENTUM``).

Layers are named ``<block>_<detail>`` (``enc1_l3_conv3``, ``down1_conv``, ``bottleneck_conv``,
``up2_deconv``), so the diagram renderer groups them by block. The report's parameter arithmetic of
the bottleneck layer is computed from a built model by ``deblurlab.studies.cifar.analysis``.
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import BN_MOMENTUM, sigmoid_with_input_skip
from .registry import register

GROWTH = 16
ENCODER_BLOCKS = (6, 6, 3)
DECODER_BLOCKS = (3, 6)


def bn_relu(x, name: str):
    """BatchNormalization then ReLU on ``x``, named ``<name>_bn`` and ``<name>_relu``."""
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def dense_layer(x, growth: int, name: str):
    """BN-ReLU-Conv1x1(4k)-BN-ReLU-Conv3x3(k): the ``k`` new channels of one dense layer."""
    y = bn_relu(x, f"{name}_pre1")
    y = layers.Conv2D(4 * growth, 1, padding="same", use_bias=False, name=f"{name}_conv1")(y)
    y = bn_relu(y, f"{name}_pre3")
    return layers.Conv2D(growth, 3, padding="same", use_bias=False, name=f"{name}_conv3")(y)


def dense_block(x, n_layers: int, growth: int, name: str):
    """Each layer's input is the concatenation of the block input and all earlier layer outputs."""
    for i in range(1, n_layers + 1):
        y = dense_layer(x, growth, f"{name}_l{i}")
        x = layers.Concatenate(name=f"{name}_l{i}_concat")([x, y])
    return x


def transition(x, compression: float, up: bool, name: str):
    """BN-ReLU, then a learned 2x resampling (strided Conv2D down, Conv2DTranspose up) that also
    multiplies the channels by ``compression``."""
    filters = max(1, int(x.shape[-1] * compression))
    y = bn_relu(x, f"{name}_pre")
    if up:
        return layers.Conv2DTranspose(
            filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_deconv"
        )(y)
    return layers.Conv2D(
        filters, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv"
    )(y)


def eddensenet_model(
    input_shape=(32, 32, 3),
    growth: int = GROWTH,
    encoder_blocks=ENCODER_BLOCKS,
    decoder_blocks=DECODER_BLOCKS,
    stem_filters: int = 16,
    compression: float = 0.5,
    bottleneck: bool = True,
    input_skip: bool = True,
    name: str = "eddensenet",
) -> keras.Model:
    """The EDDenseNet graph. ``bottleneck=False`` drops the channel-reducing layer at the end of the
    encoder (for the parameter comparison of the report); the decoder then starts from all of
    the last DenseBlock's channels."""
    downs = len(encoder_blocks) - 1
    if input_shape[0] is not None and input_shape[0] % (2**downs):
        raise ValueError(
            f"input_shape {input_shape}: height and width must be divisible by {2**downs} "
            f"for {downs} downsampling transitions; pad or crop the images."
        )
    if len(decoder_blocks) != downs:
        raise ValueError(
            f"decoder_blocks={decoder_blocks}: need one decoder block per encoder transition "
            f"({downs}), so that the output has the input's size."
        )
    inputs = keras.Input(input_shape, name="blurred")
    x = layers.Conv2D(stem_filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    for i, n in enumerate(encoder_blocks, start=1):
        x = dense_block(x, n, growth, f"enc{i}")
        if i < len(encoder_blocks):
            x = transition(x, compression, up=False, name=f"down{i}")
    if bottleneck:
        x = bn_relu(x, "bottleneck_pre")
        x = layers.Conv2D(growth, 3, padding="same", name="bottleneck_conv")(x)
    for i, n in enumerate(decoder_blocks, start=1):
        x = dense_block(x, n, growth, f"dec{i}")
        x = transition(x, compression, up=True, name=f"up{i}")
    x = bn_relu(x, "head_pre")
    if input_skip:
        correction = layers.Conv2DTranspose(
            input_shape[-1], 3, padding="same", kernel_initializer="zeros", name="restored_deconv"
        )(x)
        outputs = sigmoid_with_input_skip(correction, inputs)
    else:
        outputs = layers.Conv2DTranspose(
            input_shape[-1], 3, padding="same", activation="sigmoid", name="restored"
        )(x)
    return keras.Model(inputs, outputs, name=name)


@register(
    "eddensenet",
    family="eddensenet",
    dataset="cifar10",
    description="encoder-decoder of DenseBlocks [6,6,3]/[3,6], growth 16",
    training=dict(learning_rate=1e-3, patience=5, batch_size=128),
    reference=dict(mse=0.0021, psnr=27.62, ssim=0.90),
    default_epochs=1,
)
def eddensenet(input_shape=(32, 32, 3), **kwargs):
    """The registered encoder-decoder DenseNet (``kwargs`` override its defaults)."""
    return eddensenet_model(input_shape, **kwargs)
