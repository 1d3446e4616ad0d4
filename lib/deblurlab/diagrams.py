"""Architecture diagrams drawn with matplotlib alone (no Graphviz, no system binary).

``plot_architecture(model)`` reads a Keras functional model's graph and draws one box per *block*:
a maximal run of consecutive layers (in the model's topological order) that share a group key.
The default key is the part of the layer name before the first ``_`` (``down0_res1_a_conv`` ->
``down0``, ``enc3_l2_conv1`` -> ``enc3``); Keras' automatic names (``conv2d_3``) form a block each.
A box shows the block's name, its layers in compact form (``6 × (BN·ReLU·Conv1×1·…)``), its output
shape and its parameter count. Consecutive blocks are joined by arrows; a connection that jumps
over blocks (a skip, a concatenation, an addition) is drawn as an arc on the right, labelled with
the layer that receives it (``add``, ``concat``) and, when it differs from the box's output
shape, the shape it carries.

Deep models stay legible by collapsing: while there are more than ``max_blocks`` boxes, runs of
identical consecutive blocks (same layers, same output shape) are merged, first only where the
join is a plain chain (no connection leaves or enters between them, so nothing is lost), then,
if that is not enough, regardless (the arcs then carry a count, ``7 × add``).
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

MERGE_LAYERS = {
    "Add": "add",
    "Concatenate": "concat",
    "Multiply": "multiply",
    "Subtract": "subtract",
    "Average": "average",
    "Maximum": "maximum",
    "Minimum": "minimum",
}
ROLE_COLOURS = {
    "input": "#d9d9d9",
    "down": "#9ecae1",
    "up": "#fdae6b",
    "body": "#c7e9c0",
    "output": "#dadaeb",
}
ROLE_NAMES = {
    "input": "input",
    "down": "downsamples (stride 2)",
    "up": "upsamples (transposed, stride 2)",
    "body": "same resolution",
    "output": "model output",
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


def _shape(layer) -> tuple:
    out = layer.output
    if isinstance(out, (list, tuple)):
        out = out[0]
    return tuple(out.shape[1:])


def format_shape(shape) -> str:
    """A shape as ``32×32×3``, with ``?`` for an unknown dimension."""
    return "×".join("?" if d is None else str(d) for d in shape)


def _token(layer) -> str:
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
    return "·".join(_compress([_token(layer) for layer in layers]))


def _signature(block: Block) -> tuple:
    """What two blocks must share to be merged: their layers (merges aside) and output shape."""
    return (
        tuple(
            _token(layer) for layer in block.layers if layer.__class__.__name__ not in MERGE_LAYERS
        ),
        _shape(block.last),
    )


def _role(block: Block, output_names: set[str]) -> str:
    kinds = {layer.__class__.__name__ for layer in block.layers}
    if kinds == {"InputLayer"}:
        return "input"
    if any(layer.name in output_names for layer in block.layers):
        return "output"
    strided = [layer for layer in block.layers if max(getattr(layer, "strides", (1,))) > 1]
    if any(layer.__class__.__name__ == "Conv2DTranspose" for layer in strided):
        return "up"
    if strided or kinds & {"MaxPooling2D", "AveragePooling2D"}:
        return "down"
    if "UpSampling2D" in kinds:
        return "up"
    return "body"


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


def _edges(blocks: list[Block], parents: dict) -> dict[tuple[int, int], list]:
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
            edges = _edges(blocks, parents)
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


def _label(block: Block) -> str:
    if len(block.members) == 1:
        return block.name
    return f"{block.members[0]}–{block.members[-1]} ({len(block.members)} blocks)"


def _params(block: Block) -> int:
    return int(sum(layer.count_params() for layer in block.layers if layer.built))


def _human(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f} M"
    if n >= 1_000:
        return f"{n / 1e3:.1f} k"
    return str(n)


def _arc_label(links: list, parents: dict, block: Block) -> str:
    """What the connection feeds: the merge layer that receives it (``add``, ``concat``), or, when
    it passes through other layers of the target block first, ``add (via Logit)``."""
    children: dict[str, list] = {}
    for layer in block.layers:
        for parent in parents.get(layer.name, []):
            children.setdefault(parent, []).append(layer)
    kinds = {}
    for receiver, _ in links:
        kind = MERGE_LAYERS.get(receiver.__class__.__name__)
        layer, path = receiver, []
        while kind is None and len(children.get(layer.name, [])) == 1 and len(path) < 8:
            path.append(_token(layer))
            layer = children[layer.name][0]
            kind = MERGE_LAYERS.get(layer.__class__.__name__)
        if kind is None:
            kind = "to " + receiver.name
        elif path:
            kind += f" (via {'·'.join(path)})"
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(k if n == 1 else f"{n} × {k}" for k, n in kinds.items())


# ----------------------------------------------------------------------------- drawing


def plot_architecture(
    model,
    title: str | None = None,
    group_by: Callable | dict | None = None,
    max_blocks: int = 20,
    width: float = 6.0,
):
    """A block diagram of ``model`` (a built Keras functional model), as a matplotlib Figure.

    ``group_by``: a function of a layer, or a {layer name: block} dict, to override the default
    grouping by name prefix. ``max_blocks``: above this many boxes, identical neighbours are
    merged. Raises ``DiagramError`` naming the model and the cause if it cannot be drawn.
    """
    if max_blocks < 2:
        raise DiagramError(f"plot_architecture: max_blocks={max_blocks} must be at least 2.")
    try:
        blocks, parents = group_layers(model, group_by)
        blocks = collapse(blocks, parents, max_blocks)
        return _draw(model, blocks, parents, title, width)
    except DiagramError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure must surface with the model's name
        raise DiagramError(
            f"plot_architecture could not draw {getattr(model, 'name', model)!r}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _draw(model, blocks, parents, title, width):
    edges = _edges(blocks, parents)
    output_names = {t._keras_history.operation.name for t in model.outputs}
    n = len(blocks)
    box_h, gap = 0.62, 0.32  # inches
    step = box_h + gap
    text_chars = int(width * 13)

    # Arcs: connections between non-adjacent blocks; nested by span so they never overlap.
    arcs = sorted(
        ((i, j, links) for (i, j), links in edges.items() if j > i + 1),
        key=lambda a: (a[1] - a[0], a[0]),
    )
    levels: list[int] = []
    for k, (i, j, _) in enumerate(arcs):
        overlapping = [levels[m] for m in range(k) if arcs[m][0] < j and arcs[m][1] > i]
        levels.append(1 + max(overlapping, default=0))
    # Back-edges (target before source) cannot occur in a functional graph's topological order.
    max_level = max(levels, default=0)
    arc_w = 0.32
    label_room = 1.5 if arcs else 0.0
    fig_w = width + 0.3 + max_level * arc_w + label_room
    fig_h = n * step + (0.5 if title else 0.15) + 0.45
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, fig_w)
    ax.set_ylim(0, fig_h)
    ax.axis("off")
    top = fig_h - (0.5 if title else 0.15)
    if title:
        ax.text(
            fig_w / 2, fig_h - 0.25, title, ha="center", va="center", fontsize=11, weight="bold"
        )

    centres = []
    roles_used = []
    for k, block in enumerate(blocks):
        y = top - k * step - box_h / 2
        centres.append(y)
        role = _role(block, output_names)
        roles_used.append(role)
        ax.add_patch(
            FancyBboxPatch(
                (0.15, y - box_h / 2),
                width,
                box_h,
                boxstyle="round,pad=0,rounding_size=0.08",
                facecolor=ROLE_COLOURS[role],
                edgecolor="#555555",
                lw=0.8,
            )
        )
        params = _params(block)
        head = f"{_label(block)}   →  {format_shape(_shape(block.last))}"
        if params:
            head += f"   ({_human(params)} params)"
        body = textwrap.shorten(describe_layers(block.layers), text_chars, placeholder=" …")
        ax.text(0.28, y + 0.12, head, ha="left", va="center", fontsize=7.5, weight="bold")
        ax.text(0.28, y - 0.13, body, ha="left", va="center", fontsize=6.5, family="DejaVu Sans")
        if k > 0:
            ax.add_patch(
                FancyArrowPatch(
                    (0.15 + width / 2, y + box_h / 2 + gap),
                    (0.15 + width / 2, y + box_h / 2),
                    arrowstyle="-|>",
                    mutation_scale=8,
                    color="#333333",
                    lw=0.8,
                )
            )

    x0 = 0.15 + width
    used_label_ys: list[float] = []
    drawn_arcs: list[tuple[str, str, str]] = []
    for (i, j, links), level in zip(arcs, levels):
        xr = x0 + level * arc_w
        y0, y1 = centres[i] - 0.08, centres[j] + 0.08
        path = Path(
            [(x0, y0), (xr, y0), (xr, y1), (x0, y1)],
            [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO],
        )
        colour = plt.cm.tab10(level % 10)
        ax.add_patch(
            FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=8, color=colour, lw=1.0)
        )
        label = _arc_label(links, parents, blocks[j])
        carried = {_shape(src) for _, src in links}
        if carried != {_shape(blocks[i].last)}:
            label += " " + ", ".join(format_shape(s) for s in sorted(carried, key=str))
        # Labels sit in a column right of the arcs, beside the arc's source end, never on each
        # other.
        y_label = y0 - 0.1
        while any(abs(y_label - used) < 0.13 for used in used_label_ys):
            y_label -= 0.13
        used_label_ys.append(y_label)
        x_label = x0 + max_level * arc_w + 0.12
        ax.plot([xr, x_label - 0.03], [y_label, y_label], color=colour, lw=0.5, ls=":")
        ax.text(x_label, y_label, label, fontsize=6, color=colour, va="center", ha="left")
        drawn_arcs.append((_label(blocks[i]), _label(blocks[j]), label))

    handles = [
        Patch(facecolor=ROLE_COLOURS[r], edgecolor="#555555", label=ROLE_NAMES[r])
        for r in ROLE_COLOURS
        if r in roles_used
    ]
    ax.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.02, 0.0),
        ncol=min(len(handles), 5),
        fontsize=6.5,
        frameon=False,
        bbox_transform=ax.transAxes,
    )
    fig.diagram_blocks = blocks  # for tests and callers that want the grouping and the arcs
    fig.diagram_arcs = drawn_arcs
    return fig
