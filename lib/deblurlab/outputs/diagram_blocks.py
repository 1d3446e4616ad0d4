"""Reading a Keras functional model's graph into blocks for the architecture diagrams: grouping
consecutive layers by name prefix, describing a block's layers compactly, and collapsing runs of
identical blocks.

A *block* is a maximal run of consecutive layers (in the model's topological order) that share a
group key. The default key is the part of the layer name before the first ``_``
(``down0_res1_a_conv`` -> ``down0``, ``enc3_l2_conv1`` -> ``enc3``); Keras' automatic names
(``conv2d_3``) form a block each.

Deep models stay legible by collapsing: while there are more than ``max_blocks`` boxes, runs of
identical consecutive blocks (same layers, same output shape) are merged, first only where the
join is a plain chain (no connection leaves or enters between them, so nothing is lost), then,
if that is not enough, regardless (the arcs then carry a count, ``7 × add``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MERGE_LAYERS = {
    "Add": "add",
    "Concatenate": "concat",
    "Multiply": "multiply",
    "Subtract": "subtract",
    "Average": "average",
    "Maximum": "maximum",
    "Minimum": "minimum",
}


class DiagramError(RuntimeError):
    """The model's graph could not be read or drawn."""


@dataclass
class Block:
    """A group of consecutive layers drawn as one box; ``members`` names the blocks merged
    into it."""

    name: str
    layers: list = field(default_factory=list)
    members: list = field(default_factory=list)  # names of the original blocks merged into this one

    @property
    def last(self):
        """The block's last layer (whose output leaves the block)."""
        return self.layers[-1]


def default_group_key(layer) -> str:
    """The block a layer belongs to: its name up to the first ``_``; an automatic Keras name
    (``conv2d``, ``conv2d_3``, ``batch_normalization_1``) is a block of its own."""
    name = layer.name
    base = re.sub(r"_\d+$", "", name)
    if (
        base.replace("_", "") == layer.__class__.__name__.lower()
    ):  # conv2d_3, re_lu, batch_normalization
        return name
    return name.split("_", 1)[0]


# ----------------------------------------------------------------------------- reading the graph


def _graph(model):
    """(layers in topological order, {layer name: [names of the layers feeding it]})."""
    functional = (
        getattr(model, "_functional", None) or model
    )  # a built Sequential wraps a Functional
    nodes_by_depth = getattr(functional, "_nodes_by_depth", None)
    if not nodes_by_depth:
        raise DiagramError(
            f"plot_architecture: {getattr(model, 'name', model)!r} is not a built Keras "
            "functional model (build it on an Input, or call it once, before drawing)."
        )
    layers = [layer for layer in functional.layers]
    known = {layer.name for layer in layers}
    parents: dict[str, list[str]] = {layer.name: [] for layer in layers}
    for nodes in nodes_by_depth.values():
        for node in nodes:
            op = node.operation
            if op.name not in known:
                continue
            for tensor in node.input_tensors:
                history = getattr(tensor, "_keras_history", None)
                if history is not None and history.operation.name in known:
                    parents[op.name].append(history.operation.name)
    return layers, parents


def output_shape(layer) -> tuple:
    out = layer.output
    if isinstance(out, (list, tuple)):
        out = out[0]
    return tuple(out.shape[1:])


def format_shape(shape) -> str:
    """A shape as ``32×32×3``, with ``?`` for an unknown dimension."""
    return "×".join("?" if d is None else str(d) for d in shape)


def layer_token(layer) -> str:
    kind = layer.__class__.__name__
    if kind in ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D"):
        k = "×".join(map(str, layer.kernel_size))
        base = {"Conv2D": "Conv", "Conv2DTranspose": "Deconv"}.get(kind, kind.replace("2D", ""))
        stride = max(layer.strides)
        suffix = (
            "" if stride == 1 else (f"↑{stride}" if kind == "Conv2DTranspose" else f"/{stride}")
        )
        act = getattr(layer, "activation", None)
        act_name = getattr(act, "__name__", "linear")
        return f"{base}{k}{suffix}" + ("" if act_name == "linear" else f"+{act_name.capitalize()}")
    if kind == "BatchNormalization":
        return "BN"
    if kind == "Activation":
        name = getattr(layer.activation, "__name__", "act")
        return {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}.get(
            name, name
        )
    if kind == "ReLU":
        return "ReLU"
    if kind == "InputLayer":
        return "Input"
    if kind in MERGE_LAYERS:
        return {"Concatenate": "Concat"}.get(kind, kind)
    return kind


def _compress(tokens) -> list[str]:
    """The shortest run-length coding of repeated token patterns (dynamic programming over the
    sequence; the cost is the number of tokens written, nested ones included):
    A A A -> 3 × A, A B A B -> 2 × (A·B), A B B A B B -> 2 × (A·2 × B)."""
    return list(_compress_cached(tuple(tokens))[1])


@functools.lru_cache(maxsize=4096)
def _compress_cached(tokens: tuple) -> tuple[int, tuple]:
    n = len(tokens)
    best: list[tuple[int, tuple]] = [(0, ())] * (n + 1)  # best[i]: (cost, parts) for tokens[i:]
    for i in range(n - 1, -1, -1):
        cost, parts = best[i + 1]
        choice = (cost + 1, (tokens[i],) + parts)
        for p in range(1, (n - i) // 2 + 1):
            pattern = tokens[i : i + p]
            k = 1
            while tokens[i + k * p : i + (k + 1) * p] == pattern:
                k += 1
            if k < 2:
                continue
            inner_cost, inner = _compress_cached(pattern) if p > 1 else (1, pattern)
            body = "·".join(inner)
            text = f"{k} × ({body})" if len(inner) > 1 else f"{k} × {body}"
            rest_cost, rest = best[i + p * k]  # the whole run: a shorter one is never cheaper
            if inner_cost + 1 + rest_cost < choice[0]:
                choice = (inner_cost + 1 + rest_cost, (text,) + rest)
        best[i] = choice
    return best[0]


def describe_layers(layers) -> str:
    """The layers of a block in compact form, e.g. ``2 × (Conv3×3·BN·ReLU)·Concat``."""
    return "·".join(_compress([layer_token(layer) for layer in layers]))


def _signature(block: Block) -> tuple:
    """What two blocks must share to be merged: their layers (merges aside) and output shape."""
    return (
        tuple(
            layer_token(layer)
            for layer in block.layers
            if layer.__class__.__name__ not in MERGE_LAYERS
        ),
        output_shape(block.last),
    )


# ----------------------------------------------------------------------------- grouping


def group_layers(model, group_by: Callable | dict | None = None) -> tuple[list[Block], dict]:
    """Blocks of consecutive layers with the same key, and the layer -> parents map."""
    layers, parents = _graph(model)
    if group_by is None:
        key = default_group_key
    elif isinstance(group_by, dict):
        key = lambda layer: group_by.get(layer.name, default_group_key(layer))  # noqa: E731
    elif callable(group_by):
        key = group_by
    else:
        raise DiagramError(
            f"plot_architecture: group_by must be None, a dict or a function of a layer, "
            f"not {type(group_by).__name__}."
        )
    blocks: list[Block] = []
    previous = object()
    for layer in layers:
        k = key(layer)
        if k != previous:
            blocks.append(Block(str(k), [], [str(k)]))
            previous = k
        blocks[-1].layers.append(layer)
    return blocks, parents


def block_edges(blocks: list[Block], parents: dict) -> dict[tuple[int, int], list]:
    """{(source block, target block): [(receiving layer, source layer), ...]} for source <
    target."""
    where = {layer.name: i for i, block in enumerate(blocks) for layer in block.layers}
    by_name = {layer.name: layer for block in blocks for layer in block.layers}
    edges: dict[tuple[int, int], list] = {}
    for j, block in enumerate(blocks):
        for layer in block.layers:
            for parent in parents.get(layer.name, []):
                i = where[parent]
                if i != j:
                    edges.setdefault((i, j), []).append((layer, by_name[parent]))
    return edges


def _mergeable(blocks, edges, i: int, lossless: bool) -> bool:
    a, b = blocks[i], blocks[i + 1]
    if _signature(a) != _signature(b):
        return False
    if not lossless:
        return True
    leaving_a = [e for e in edges if e[0] == i and e[1] != i + 1]
    entering_b = [e for e in edges if e[1] == i + 1 and e[0] != i]
    return not leaving_a and not entering_b


def collapse(blocks: list[Block], parents: dict, max_blocks: int) -> list[Block]:
    """Merge identical neighbours until at most ``max_blocks`` remain (see the module docstring)."""
    for lossless in (True, False):
        changed = True
        while len(blocks) > max_blocks and changed:
            changed = False
            edges = block_edges(blocks, parents)
            merged: list[Block] = []
            i = 0
            while i < len(blocks):
                if i + 1 < len(blocks) and _mergeable(blocks, edges, i, lossless):
                    a, b = blocks[i], blocks[i + 1]
                    merged.append(Block(a.name, a.layers + b.layers, a.members + b.members))
                    i += 2
                    changed = True
                else:
                    merged.append(blocks[i])
                    i += 1
            blocks = merged
    return blocks
