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
  *additive* skips from the matching encoder level; an output convolution
  (``models/scale_network.py``).
- The model returns ``[coarse, fine]`` (layers named "coarse" and "fine"): the trainer sums the MSE
  of both against the sharp image resized to each output, and evaluation uses the last one.

Variants:

- ``srndeblur_cifar`` / ``srndeblur_cifar_lstm`` (32x32): BatchNorm (momentum 0.9, the last one
  of each ResBlock initialised to zero), LeakyReLU, sigmoid output with an input skip through the
  logit (each scale starts as the identity; ``input_skip=False`` is the report's), filters
  (32, 64, 128), one ResBlock a level. The ``_lstm`` variant adds a vector-LSTM bottleneck: the
  bottleneck's pixels are read as a sequence of ``c``-dimensional vectors (h·w steps), so the
  LSTM(32) has the same input size, hence the same weights, at both scales; its final state starts
  the fine scale's LSTM. A Dense layer maps the 32-unit output back to h·w·c values, reshaped and
  *added* to the bottleneck features (a residual, so the 32-number summary does not replace
  them). Because h·w differs between scales, this Dense is the one per-scale layer:
  ``coarse_lstm_dense`` and ``fine_lstm_dense``.
- ``srndeblur_reds`` (any size that is a multiple of ``SRN_REDS_STRIDE``): no BatchNorm, ReLU, a
  linear output, 5x5 kernels, two ResBlocks a level, a first layer made of two convolutions (3x3
  and 5x5, 8 filters each) concatenated to 16 channels, filters (16, 32, 64), and a ConvLSTM
  bottleneck (``ConvLSTMCell``) whose hidden and cell states are upsampled bilinearly from the
  coarse to the fine scale.
"""

from __future__ import annotations

import keras
from keras import layers

from .layers import BN_MOMENTUM, sigmoid_with_input_skip
from .registry import build_model, register
from .scale_network import ScaleNetwork

# Each scale network halves its input (len(filters) - 1) times and the coarse scale sees the input
# halved once more, so a 2-scale model with 3 levels needs H and W to be multiples of 2 * 4 = 8.
SRN_REDS_STRIDE = 8


def required_multiple(levels: int, scales: int) -> int:
    """The factor the input height and width must be a multiple of, for ``levels``
    encoder levels and ``scales`` scales."""
    return 2 ** (levels - 1) * 2 ** (scales - 1)


def scale_names(scales: int) -> list[str]:
    """The names of ``scales`` scales, coarsest first (``coarse`` ... ``fine``)."""
    if scales == 1:
        return ["fine"]
    if scales == 2:
        return ["coarse", "fine"]
    return ["coarse", *[f"scale{i + 1}" for i in range(1, scales - 1)], "fine"]


def srndeblur(
    input_shape=(32, 32, 3),
    scales: int = 2,
    filters=(32, 64, 128),
    blocks_per_level: int = 2,
    kernel_size: int = 3,
    batch_norm: bool = True,
    activation: str = "leaky_relu",
    output_activation: str | None = "sigmoid",
    stem: str = "single",
    bottleneck: str | None = None,
    lstm_units: int = 32,
    carry_state: bool = True,
    bn_momentum: float = BN_MOMENTUM,
    zero_gamma: bool = False,
    input_skip: bool = False,
    name: str = "srndeblur",
) -> keras.Model:
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
            raise ValueError(
                f"input_shape={tuple(input_shape)}: {name} with {scales} scales and "
                f"{len(filters)} levels needs height and width that are multiples of "
                f"{multiple}; crop or pad the images."
            )
    net = ScaleNetwork(
        filters,
        blocks_per_level,
        kernel_size,
        batch_norm,
        activation,
        input_shape[-1],
        stem,
        bottleneck,
        lstm_units,
        bn_momentum,
        zero_gamma,
        zero_output=input_skip,
    )
    names = scale_names(scales)
    blurred = keras.Input(input_shape, name="blurred")
    upsample = layers.UpSampling2D(2, interpolation="bilinear", name="upsample_estimate")
    upsample_state = layers.UpSampling2D(2, interpolation="bilinear", name="upsample_state")
    outputs, estimate, state = [], None, None
    for k, scale in enumerate(names):
        factor = 2 ** (scales - 1 - k)
        image = (
            layers.AveragePooling2D(factor, name=f"{scale}_blurred")(blurred)
            if factor > 1
            else blurred
        )
        previous = image if estimate is None else upsample(estimate)
        x = layers.Concatenate(name=f"{scale}_input")([image, previous])
        if not carry_state:
            state = None
        elif (
            state is not None and bottleneck == "convlstm"
        ):  # the next bottleneck is twice as large
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
    model.build_overrides = dict(
        overrides
    )  # the builder arguments that differ from the registered ones
    return model


# One ResBlock a level (the paper has three; the report does not say): SRN at 32 filters already
# costs several times ResUNet1's compute, and the default profile trains on two CPU cores.
# Two choices for short runs, neither of which changes the parameters: BatchNorm's moving averages
# follow the batches with momentum 0.9 (Keras' 0.99 leaves a quarter of the initial statistics in
# them after the ~130 steps of the default profile), and the last BatchNorm of every ResBlock
# starts with gamma = 0, so each block starts as the identity (Goyal et al. 2017). One change that
# adds no parameter: the input-to-output skip through the logit (``input_skip``), as for ResUNet
# and EDDenseNet, so that both scales start as the identity.
CIFAR = dict(
    filters=(32, 64, 128),
    blocks_per_level=1,
    kernel_size=3,
    batch_norm=True,
    activation="leaky_relu",
    output_activation="sigmoid",
    stem="single",
    bn_momentum=BN_MOMENTUM,
    zero_gamma=True,
    input_skip=True,
)
CIFAR_TRAINING = dict(learning_rate=1e-3, patience=7, batch_size=150)


@register(
    "srndeblur_cifar",
    family="srndeblur",
    dataset="cifar10",
    description="2-scale SRN, shared encoder-decoder, no LSTM",
    training=CIFAR_TRAINING,
    reference=dict(mse=0.00175, psnr=29.23, ssim=0.9225),
    default_epochs=1,
)
def srndeblur_cifar(input_shape=(32, 32, 3), **kwargs):
    """The registered 2-scale SRN for CIFAR-10, without a bottleneck LSTM."""
    return _remember(
        srndeblur(
            input_shape, **{**CIFAR, "bottleneck": None, "name": "srndeblur_cifar", **kwargs}
        ),
        kwargs,
    )


@register(
    "srndeblur_cifar_lstm",
    family="srndeblur",
    dataset="cifar10",
    description="2-scale SRN with an LSTM(32) bottleneck carried across scales",
    training=CIFAR_TRAINING,
    reference=dict(mse=0.00174, psnr=29.38, ssim=0.9188),
    default_epochs=1,
)
def srndeblur_cifar_lstm(input_shape=(32, 32, 3), **kwargs):
    """The registered 2-scale SRN for CIFAR-10 with an LSTM(32) bottleneck."""
    return _remember(
        srndeblur(
            input_shape, **{**CIFAR, "bottleneck": "lstm", "name": "srndeblur_cifar_lstm", **kwargs}
        ),
        kwargs,
    )


# Two ResBlocks a level (the paper has three), 5x5 kernels as in the paper.
REDS = dict(
    filters=(16, 32, 64),
    blocks_per_level=2,
    kernel_size=5,
    batch_norm=False,
    activation="relu",
    output_activation=None,
    stem="dual",
    bottleneck="convlstm",
)


@register(
    "srndeblur_reds",
    family="srndeblur",
    dataset="motion",
    description="2-scale SRN for motion blur: ConvLSTM bottleneck, any size (multiple of 8)",
    training=dict(learning_rate=1e-4, patience=7, batch_size=10),
    reference=dict(mse=0.002, psnr=27.23, ssim=0.8105, range="any"),
    default_epochs=None,
)  # a motion model: its epochs come from profiles.MOTION_SIZES
def srndeblur_reds(input_shape=(None, None, 3), **kwargs):
    """The registered 2-scale SRN for motion blur, with a ConvLSTM bottleneck, any size."""
    return _remember(srndeblur(input_shape, **{**REDS, "name": "srndeblur_reds", **kwargs}), kwargs)


# --- the chapter's ablation: the same weights, no state carried between scales ---------


def with_state_cut(name: str, model: keras.Model, input_shape=None) -> keras.Model:
    """A copy of the trained ``model`` (registered as ``name``) whose fine scale starts its
    recurrent layer from a zero state instead of the coarse scale's: same weights, one connection
    removed."""
    shape = input_shape or tuple(model.inputs[0].shape[1:])
    overrides = {
        k: v for k, v in getattr(model, "build_overrides", {}).items() if k != "carry_state"
    }
    cut = build_model(name, input_shape=shape, carry_state=False, **overrides)
    cut.set_weights(model.get_weights())
    return cut
