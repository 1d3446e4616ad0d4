"""A convolutional LSTM cell that works on any spatial size (Shi et al. 2015).

Keras 3's ``ConvLSTM2D`` fixes the spatial shape when it is built, so one instance cannot be called
on the bottleneck of two scales of different sizes. ``ConvLSTMCell`` computes the four gates with
one ``Conv2D`` on ``concat[x, h]``, so its weights depend only on the channel counts:

    i, f, g, o = split(conv([x, h]))          # input, forget, candidate, output gates
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h' = sigmoid(o) * tanh(c')

Call it on ``[x]`` to start from a zero state, or on ``[x, h, c]`` to continue from a state of the
same spatial size as ``x``; it returns ``[h', c']``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops


@keras.saving.register_keras_serializable(package="deblurlab")
class ConvLSTMCell(layers.Layer):
    """One ConvLSTM step on feature maps of any height and width; ``filters`` state channels."""

    def __init__(self, filters: int, kernel_size=3, unit_forget_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = kernel_size
        self.unit_forget_bias = unit_forget_bias
        self.gates = layers.Conv2D(4 * self.filters, kernel_size, padding="same", name="gates")

    def build(self, input_shape):
        """Build the gate convolution for the input's channel count plus ``filters``."""
        x_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        if x_shape[-1] is None:
            raise ValueError(f"{self.name}: the channel count of the input must be known")
        self.gates.build((None, None, None, int(x_shape[-1]) + self.filters))
        if self.unit_forget_bias:  # start by remembering, as keras.layers.LSTM does
            bias = np.zeros(4 * self.filters, dtype="float32")
            bias[self.filters : 2 * self.filters] = 1.0
            self.gates.bias.assign(bias)
        self.built = True

    def call(self, inputs):
        """One step on ``[x]`` (zero state) or ``[x, h, c]``; returns ``[h, c]``."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) not in (1, 3):
            raise ValueError(f"{self.name}: call it on [x] (zero state) or [x, h, c]")
        x = inputs[0]
        if len(inputs) == 1:
            h = c = ops.zeros_like(x[..., :1]) + ops.zeros((self.filters,), dtype=x.dtype)
        else:
            h, c = inputs[1], inputs[2]
        z = self.gates(ops.concatenate([x, h], axis=-1))
        i, f, g, o = ops.split(z, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        return [h, c]

    def compute_output_shape(self, input_shape):
        """The shapes of ``[h, c]``: the input's with ``filters`` channels."""
        x_shape = input_shape[0] if isinstance(input_shape[0], (list, tuple)) else input_shape
        shape = (*x_shape[:-1], self.filters)
        return [shape, shape]

    def get_config(self):
        """The layer's config, with ``filters``, ``kernel_size`` and ``unit_forget_bias``."""
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "unit_forget_bias": self.unit_forget_bias,
        }
