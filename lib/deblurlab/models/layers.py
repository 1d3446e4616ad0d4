"""Building blocks shared by the architectures."""
from __future__ import annotations

from keras import layers

# Batch normalisation's moving averages follow about the last 10 batches (Keras' default, 0.99,
# about 100). The report does not set it, and short CPU runs would otherwise evaluate with
# statistics still dominated by the initial mean 0 and variance 1.
BN_MOMENTUM = 0.9


def conv_bn_act(x, filters: int, kernel_size=3, strides=1, activation="relu", name=None,
                transpose: bool = False, batch_norm: bool = True):
    """Conv2D (or Conv2DTranspose) -> BatchNormalization -> activation, 'same' padding.

    The convolution has no bias when BatchNorm follows, since BN's shift replaces it.
    """
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm,
             name=None if name is None else f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=None if name is None else f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=None if name is None else f"{name}_act")(x)
    return x
