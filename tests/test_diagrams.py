import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from deblurlab.outputs.diagram_blocks import (  # noqa: E402
    DiagramError,
    default_group_key,
    describe_layers,
    group_layers,
)
from deblurlab.outputs.diagrams import plot_architecture  # noqa: E402


def small_unet():
    """in -> a (conv, bn, relu) -> b (strided conv) -> c (deconv up, add a) -> out."""
    x_in = keras.Input((8, 8, 3), name="in")
    a = layers.Conv2D(4, 3, padding="same", name="a_conv")(x_in)
    a = layers.BatchNormalization(name="a_bn")(a)
    a = layers.Activation("relu", name="a_relu")(a)
    b = layers.Conv2D(4, 3, strides=2, padding="same", name="b_conv")(a)
    c = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="c_deconv")(b)
    c = layers.Add(name="c_skip")([c, a])
    out = layers.Conv2D(3, 1, activation="sigmoid", name="out")(c)
    return keras.Model(x_in, out, name="small_unet")


def chain(n_blocks: int, skip_every: int = 0):
    """``n_blocks`` identical conv-relu blocks; optionally an add-skip from block i to its
    mirror."""
    x_in = keras.Input((8, 8, 4), name="in")
    x, feats = x_in, []
    for i in range(n_blocks):
        x = layers.Conv2D(4, 3, padding="same", name=f"blk{i}_conv")(x)
        x = layers.Activation("relu", name=f"blk{i}_relu")(x)
        feats.append(x)
    if skip_every:
        x = layers.Add(name="end_add")([x, feats[0]])
    return keras.Model(x_in, x, name="chain")


def teardown_function():
    plt.close("all")


def test_groups_by_name_prefix_and_draws_the_skip():
    fig = plot_architecture(small_unet(), title="small")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert [b.name for b in fig.diagram_blocks] == ["in", "a", "b", "c", "out"]
    assert [len(b.layers) for b in fig.diagram_blocks] == [1, 3, 1, 2, 1]
    assert fig.diagram_arcs == [("a", "c", "add")]  # a -> c jumps over b
    fig.canvas.draw()  # renders without error


def test_a_skip_through_another_layer_is_labelled_by_its_merge():
    x_in = keras.Input((8, 8, 3), name="in")
    x = layers.Conv2D(3, 3, padding="same", name="a_conv")(x_in)
    x = layers.Conv2D(3, 3, padding="same", name="b_conv")(x)
    scaled = layers.Rescaling(2.0, name="c_scale")(x_in)
    out = layers.Add(name="c_add")([x, scaled])
    fig = plot_architecture(keras.Model(x_in, out))
    assert fig.diagram_arcs == [("in", "c", "add (via Rescaling)")]


def test_automatic_layer_names_form_a_block_each():
    x_in = keras.Input((4, 4, 1))
    y = layers.Conv2D(2, 3, padding="same")(x_in)
    y = layers.ReLU()(y)
    model = keras.Model(x_in, y)
    assert [default_group_key(layer) for layer in model.layers] == [
        layer.name for layer in model.layers
    ]
    blocks, _ = group_layers(model)
    assert len(blocks) == 3


def test_group_by_dict_and_function():
    model = small_unet()
    blocks, _ = group_layers(model, {"b_conv": "a", "c_deconv": "a", "c_skip": "a"})
    assert [b.name for b in blocks] == ["in", "a", "out"]
    blocks, _ = group_layers(model, lambda layer: "all")
    assert len(blocks) == 1
    with pytest.raises(DiagramError, match="group_by"):
        group_layers(model, 42)


def test_deep_chains_collapse_and_keep_their_skips():
    model = chain(40, skip_every=1)
    fig = plot_architecture(model, max_blocks=12)
    blocks = fig.diagram_blocks
    assert len(blocks) <= 12
    assert sum(len(b.layers) for b in blocks) == len(model.layers)  # nothing dropped
    # blk0 feeds both blk1 and the final add, so the lossless pass keeps it apart and the arc
    # survives.
    assert any(arc[2] == "add" for arc in fig.diagram_arcs)
    # Under the limit nothing is merged.
    assert len(plot_architecture(chain(5)).diagram_blocks) == 6


def test_compact_layer_description():
    model = chain(3)
    assert describe_layers(model.layers[1:]) == "3 × (Conv3×3·ReLU)"
    assert describe_layers(small_unet().layers[1:4]) == "Conv3×3·BN·ReLU"


def test_resunet_renders_with_its_level_names():
    from deblurlab.models import build_model

    fig = plot_architecture(build_model("resunet1"))
    names = [b.name for b in fig.diagram_blocks]
    assert names == ["blurred", "stem", "down0", "down1", "bottom", "up1", "up0", "restored"]
    # The U-Net's two skips, and the input-to-output skip.
    assert {(a[0], a[1]) for a in fig.diagram_arcs} == {
        ("down0", "up0"),
        ("down1", "up1"),
        ("blurred", "restored"),
    }


def test_failures_raise_clear_errors():
    with pytest.raises(DiagramError, match="not a built Keras functional model"):
        plot_architecture(keras.Sequential([layers.Dense(2)]))
    with pytest.raises(DiagramError, match="max_blocks"):
        plot_architecture(small_unet(), max_blocks=1)
