"""Building blocks shared by the architectures."""

from __future__ import annotations

import keras
from keras import layers

# Batch normalisation's moving averages follow about the last 10 batches (Keras' default, 0.99,
# about 100). The report does not set it, and short CPU runs would otherwise evaluate with
# statistics still dominated by the initial mean 0 and variance 1.
BN_MOMENTUM = 0.9
INPUT_CLIP = 1e-3  # the logit of the input is taken on [INPUT_CLIP, 1 - INPUT_CLIP]


@keras.saving.register_keras_serializable(package="deblurlab")
class Logit(layers.Layer):
    """log(x / (1 - x)) of the input clipped to [eps, 1 - eps]: the sigmoid's inverse."""

    def __init__(self, eps: float = INPUT_CLIP, **kwargs):
        super().__init__(**kwargs)
        self.eps = eps

    def call(self, x):
        """The logit of ``x`` clipped to [eps, 1 - eps]."""
        x = keras.ops.clip(x, self.eps, 1.0 - self.eps)
        return keras.ops.log(x) - keras.ops.log1p(-x)

    def get_config(self):
        """The layer's config, with ``eps``."""
        return {**super().get_config(), "eps": self.eps}


def sigmoid_with_input_skip(correction, inputs, name: str = "restored"):
    """sigmoid(correction + logit(input)): the input-to-output skip of a sigmoid-ended network.

    With the layer producing ``correction`` initialised at zero, a fresh network returns its input
    exactly and training learns only what the blur removed.
    """
    x = layers.Add(name=f"{name}_skip")([correction, Logit(name=f"{name}_logit")(inputs)])
    return layers.Activation("sigmoid", name=name)(x)


def conv_bn_act(
    x,
    filters: int,
    kernel_size=3,
    strides=1,
    activation="relu",
    name=None,
    transpose: bool = False,
    batch_norm: bool = True,
):
    """Conv2D (or Conv2DTranspose) -> BatchNormalization -> activation, 'same' padding.

    The convolution has no bias when BatchNorm follows, since BN's shift replaces it.
    """
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        name=None if name is None else f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(
            momentum=BN_MOMENTUM, name=None if name is None else f"{name}_bn"
        )(x)
    if activation:
        x = layers.Activation(activation, name=None if name is None else f"{name}_act")(x)
    return x
