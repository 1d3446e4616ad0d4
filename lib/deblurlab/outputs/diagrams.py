"""Architecture diagrams drawn with matplotlib alone (no Graphviz, no system binary): the
``plot_architecture`` figure, its box colours by role and its arc labels.

``plot_architecture(model)`` reads a Keras functional model's graph and draws one box per *block*
(grouped and collapsed by ``deblurlab.outputs.diagram_blocks``).
A box shows the block's name, its layers in compact form (``6 × (BN·ReLU·Conv1×1·…)``), its output
shape and its parameter count. Consecutive blocks are joined by arrows; a connection that jumps
over blocks (a skip, a concatenation, an addition) is drawn as an arc on the right, labelled with
the layer that receives it (``add``, ``concat``) and, when it differs from the box's output
shape, the shape it carries.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch
from matplotlib.path import Path

from .diagram_blocks import (
    MERGE_LAYERS,
    Block,
    DiagramError,
    block_edges,
    collapse,
    describe_layers,
    format_shape,
    group_layers,
    layer_token,
    output_shape,
)

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
            path.append(layer_token(layer))
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
    edges = block_edges(blocks, parents)
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
        head = f"{_label(block)}   →  {format_shape(output_shape(block.last))}"
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
        carried = {output_shape(src) for _, src in links}
        if carried != {output_shape(blocks[i].last)}:
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
