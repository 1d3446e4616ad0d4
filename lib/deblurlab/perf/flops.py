"""The analytic FLOP count and memory-traffic model of a Keras model: one counter for everything.

``count(model)`` runs the model once on a zero image (batch 1) with every layer's ``call``
wrapped to record its input and output shapes, so nested models and layers called several times
(shared weights, one ConvLSTM cell per time step) are counted once per call, at the sizes they
really ran at. It counts 2 FLOPs per multiply-add of the convolution-like layers (Conv1D/2D/3D,
transposed, depthwise, separable), Dense, ConvLSTM and LSTM/GRU/SimpleRNN; biases, normalisation,
per-channel scales (NAFNet's ``ChannelScale``), activations, adds, concatenations and resampling
count 0. A layer called inside a counted layer (a recurrent layer's cell) is not counted again.
Works on every Keras backend.
"""

from __future__ import annotations

METHOD = "deblurlab.perf.flops.count"
# Layers without counted FLOPs whose traffic the roofline model treats as memory bound.
MEMORY_KINDS = (
    "BatchNormalization",
    "Concatenate",
    "Activation",
    "ReLU",
    "LeakyReLU",
    "PReLU",
    "Add",
    "Multiply",
    "Subtract",
    "Average",
    "LayerNormalization",
    "GroupNormalization",
    "ChannelScale",
)
# Layers whose weights act elementwise (scales and shifts per channel): 0 FLOPs, as a bias.
_NORMALISATION = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "ChannelScale")


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _dtype_bytes(dtype) -> int:
    text = str(dtype)
    return 2 if ("16" in text) else 8 if "64" in text else 1 if "8" in text else 4


def _mro_names(obj) -> set[str]:
    return {cls.__name__ for cls in type(obj).__mro__}


def _is_counted_kind(layer) -> bool:
    """Whether ``layer_flops`` counts ``layer`` (decided before it runs)."""
    names = _mro_names(layer)
    if names & {
        "ConvLSTM",
        "BaseSeparableConv",
        "BaseDepthwiseConv",
        "BaseConvTranspose",
        "BaseConv",
    }:
        return True
    cell = getattr(layer, "cell", None)
    if cell is not None and hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel"):
        return True
    kernel = getattr(layer, "kernel", None)
    return "Dense" in names and kernel is not None and len(kernel.shape) == 2


def layer_flops(layer, in_shapes, out_shapes) -> tuple[int | None, int | None]:
    """Forward FLOPs per sample of one call and min(C_in, C_out).

    Args: the layer and the shapes of its tensor inputs and outputs (batch first).
    Returns: ``(flops, channels)``, or ``(None, None)`` for a layer kind that is not counted.
    """
    names = _mro_names(layer)
    channels_last = getattr(layer, "data_format", "channels_last") != "channels_first"

    def spatial(shape):
        return shape[1:-1] if channels_last else shape[2:]

    def chan(shape):
        return shape[-1] if channels_last else shape[1]

    if "ConvLSTM" in names:
        cell = layer.cell
        kernel, rec = cell.kernel.shape, cell.recurrent_kernel.shape
        c_in, units4, filters = kernel[-2], kernel[-1], rec[-2]
        steps, out = in_shapes[0][1], out_shapes[0]
        sequences = getattr(layer, "return_sequences", False)
        if channels_last:
            out_sp = out[2:-1] if sequences else out[1:-1]
        else:
            out_sp = out[3:] if sequences else out[2:]
        flops = 2 * steps * _prod(out_sp) * units4 * _prod(kernel[:-2]) * (c_in + filters)
        return int(flops), int(min(c_in, filters))
    if "BaseSeparableConv" in names:
        dk, pk = layer.depthwise_kernel.shape, layer.pointwise_kernel.shape
        c_in, mult, c_out = dk[-2], dk[-1], pk[-1]
        sp = _prod(spatial(out_shapes[0]))
        return int(2 * sp * c_in * mult * (_prod(dk[:-2]) + c_out)), int(min(c_in, c_out))
    if "BaseDepthwiseConv" in names:
        dk = layer.kernel.shape
        sp = _prod(spatial(out_shapes[0]))
        return int(2 * sp * dk[-2] * dk[-1] * _prod(dk[:-2])), 1
    if "BaseConvTranspose" in names:
        kernel = layer.kernel.shape  # (k..., C_out, C_in): every input pixel scatters a kernel
        c_out, c_in = kernel[-2], kernel[-1]
        sp = _prod(spatial(in_shapes[0]))
        return int(2 * sp * c_in * _prod(kernel[:-2]) * c_out), int(min(c_in, c_out))
    if "BaseConv" in names:
        kernel = layer.kernel.shape  # (k..., C_in / groups, C_out)
        c_in_group, c_out = kernel[-2], kernel[-1]
        sp = _prod(spatial(out_shapes[0]))
        flops = 2 * sp * c_out * _prod(kernel[:-2]) * c_in_group
        return int(flops), int(min(chan(in_shapes[0]), c_out))
    cell = getattr(layer, "cell", None)
    if cell is not None and hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel"):
        # LSTM / GRU / SimpleRNN: one input and one recurrent matmul per time step
        steps = in_shapes[0][1]
        c_in, units = cell.kernel.shape[0], cell.recurrent_kernel.shape[0]
        flops = 2 * steps * (_prod(cell.kernel.shape) + _prod(cell.recurrent_kernel.shape))
        return int(flops), int(min(c_in, units))
    if "Dense" in names and hasattr(layer, "kernel") and len(layer.kernel.shape) == 2:
        c_in, c_out = layer.kernel.shape
        return int(2 * _prod(out_shapes[0][1:-1]) * c_in * c_out), int(min(c_in, c_out))
    return None, None


def _tensors(structure) -> list:
    import keras

    return [t for t in keras.tree.flatten(structure) if hasattr(t, "shape") and hasattr(t, "dtype")]


def record_calls(model, input_shape=None) -> list[dict]:
    """Every layer call of one forward pass of ``model`` on a zero image, in order.

    Args: ``model``; ``input_shape`` (H, W, C), only for a model without a fixed input size.
    Returns: one dict per call: ``layer``, ``ins``/``outs`` (shape and dtype pairs), ``parent``
    (the index of the enclosing call, -1 for the model's own) and ``counted`` (FLOPs counted here).
    """
    import numpy as np

    if input_shape is None:
        input_shape = tuple(model.inputs[0].shape[1:])
        if any(d is None for d in input_shape):
            raise ValueError(
                f"{model.name} has input shape {input_shape}: pass input_shape=(H, W, C) "
                "to count its FLOPs"
            )
    calls: list[dict] = []
    stack: list[int] = []
    patched = []

    def wrap(layer):
        original = layer.call

        def call(*args, **kwargs):
            counted = _is_counted_kind(layer) and not any(calls[i]["counted"] for i in stack)
            entry = {
                "layer": layer,
                "parent": stack[-1] if stack else -1,
                "counted": counted,
                "ins": [(tuple(t.shape), str(t.dtype)) for t in _tensors((args, kwargs))],
            }
            calls.append(entry)
            stack.append(len(calls) - 1)
            try:
                outputs = original(*args, **kwargs)
            finally:
                stack.pop()
            entry["outs"] = [(tuple(t.shape), str(t.dtype)) for t in _tensors(outputs)]
            return outputs

        layer.call = call
        patched.append(layer)

    for layer in model._flatten_layers(include_self=False, recursive=True):
        wrap(layer)
    try:
        model(np.zeros((1, *input_shape), dtype="float32"), training=False)
    finally:
        for layer in patched:
            del layer.call  # the class's own method shows through again
    for entry in calls:
        entry["parent_layer"] = calls[entry["parent"]]["layer"] if entry["parent"] >= 0 else model
    return calls


def count(model, input_shape=None) -> dict:
    """Forward FLOPs per image of ``model`` and the memory traffic around them.

    Args: ``model``; ``input_shape`` (H, W, C) only for a model without a fixed input size.
    Returns: ``flops``, ``flops_by_kind``, per-image activation ``traffic_bytes`` (every graph-level
    call's inputs read and outputs written, at their dtype), ``weight_bytes``, the share of the
    traffic from memory-bound layers (``memory_bound_traffic_share``), the FLOP-weighted mean of
    min(C_in, C_out) (``mean_channels``), ``uncounted_layers`` (layers with a kernel whose FLOPs
    are not counted) and ``approximated_layers`` (none: every call is counted at its own size).
    """
    import keras

    calls = record_calls(model, input_shape)
    total, weighted, traffic, memory_traffic = 0, 0.0, 0, 0
    by_kind: dict[str, int] = {}
    has_flops = [False] * len(calls)
    for i, entry in enumerate(calls):
        if not entry["counted"]:
            continue
        flops, channels = layer_flops(
            entry["layer"], [s for s, _ in entry["ins"]], [s for s, _ in entry["outs"]]
        )
        total += flops
        weighted += channels * flops
        j, graph_level = i, None
        while j >= 0:  # the call and every enclosing call did arithmetic
            has_flops[j] = True
            if graph_level is None and isinstance(calls[j]["parent_layer"], keras.Model):
                graph_level = j  # the innermost call that is a node of a model's graph
            j = calls[j]["parent"]
        kind = type(
            calls[graph_level]["layer"]
        ).__name__  # a composite layer's name, not its convs'
        by_kind[kind] = by_kind.get(kind, 0) + flops
    uncounted = []
    for i, entry in enumerate(calls):
        layer = entry["layer"]
        if isinstance(layer, keras.Model) or not isinstance(entry["parent_layer"], keras.Model):
            continue  # a nested model's own calls are its layers'; a sublayer moves no graph bytes
        moved = sum(_prod(s[1:]) * _dtype_bytes(d) for s, d in entry["ins"] + entry["outs"])
        traffic += moved
        if has_flops[i]:
            continue
        kind = type(layer).__name__
        if kind in MEMORY_KINDS or not layer.weights:
            memory_traffic += moved
        if any("kernel" in w.path.split("/")[-1] for w in layer.weights):
            uncounted.append(f"{layer.name} ({kind})")
    return {
        "flops": int(total),
        "flops_by_kind": by_kind,
        "traffic_bytes": int(traffic),
        "weight_bytes": int(sum(_prod(w.shape) * 4 for w in model.weights)),
        "memory_bound_traffic_share": (memory_traffic / traffic) if traffic else 0.0,
        "mean_channels": (weighted / total) if total else 0.0,
        "uncounted_layers": list(dict.fromkeys(uncounted)),
        "approximated_layers": [],
    }


def flops_per_image(model, input_shape=None) -> int:
    """Forward FLOPs for one image (``count(model, input_shape)["flops"]``)."""
    return count(model, input_shape)["flops"]


def uncounted_layers(model) -> list[str]:
    """Classes of the layers that own weights the count leaves out (normalisation layers and
    per-channel scales aside).

    A layer whose weights all sit in counted sublayers (a ConvLSTM cell built from Conv2D gates)
    is counted through them. Returns: class names, each once.
    """
    import keras

    layers = list(model._flatten_layers(include_self=False, recursive=True))
    counted = {id(w) for layer in layers if _is_counted_kind(layer) for w in layer.weights}
    names = []
    for layer in layers:
        kind = layer.__class__.__name__
        if isinstance(layer, keras.Model) or kind in _NORMALISATION or kind in names:
            continue
        if _is_counted_kind(layer) or all(id(w) in counted for w in layer.weights):
            continue
        nested = {
            id(w)
            for sub in layer._flatten_layers(include_self=False, recursive=True)
            for w in sub.weights
        }
        if any(id(w) not in nested for w in layer.weights):
            names.append(kind)
    return names


def profiler_flops(model, input_shape) -> int | None:
    """TensorFlow's graph profiler count of one forward pass (a cross-check: it adds BatchNorm and
    biases); None on another Keras backend.

    Args: ``model`` and its ``input_shape`` (H, W, C). Returns: total float operations.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    graph = (
        tf.function(lambda x: model(x, training=False))
        .get_concrete_function(tf.TensorSpec((1, *input_shape), tf.float32))
        .graph
    )
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)
