import keras
import numpy as np
import pytest

from deblurlab.data.blur import make_blurred_set, training_stream
from deblurlab.models import build_model, get_spec
from deblurlab.models.convlstm import ConvLSTMCell
from deblurlab.models.srndeblur import SRN_REDS_STRIDE, with_state_cut
from deblurlab.studies.cifar.analysis import metrics_per_scale, resize_images
from deblurlab.training.profiles import TrainConfig
from deblurlab.training.train import set_seeds, train

CIFAR_SRN = ["srndeblur_cifar", "srndeblur_cifar_lstm"]
# The structural tests build narrow, shallow variants: the properties are the same, the time is not.
SMALL = dict(filters=(8, 16, 32), blocks_per_level=1)


def images(n, h, w, seed=0):
    return np.random.default_rng(seed).random((n, h, w, 3)).astype("float32")


def run(model, x):
    return [np.asarray(o) for o in model(x, training=False)]


def wake_output(model, seed=0):
    """Give the output convolution non-zero weights: with the input skip it starts at zero, and
    then nothing upstream of it shows in the output."""
    kernel = model.get_layer("output_conv").kernel
    kernel.assign(np.random.default_rng(seed).normal(0, 0.1, kernel.shape).astype("float32"))
    return model


@pytest.fixture(scope="module")
def reds():
    keras.utils.set_random_seed(0)
    return build_model("srndeblur_reds", input_shape=(None, None, 3), **SMALL)


@pytest.mark.parametrize("name", CIFAR_SRN)
def test_cifar_outputs_are_coarse_then_fine_in_unit_range(name):
    model = build_model(name)
    assert model.output_names == ["coarse", "fine"]
    coarse, fine = run(model, images(2, 32, 32))
    assert coarse.shape == (2, 16, 16, 3) and fine.shape == (2, 32, 32, 3)
    for out in (coarse, fine):
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_reds_outputs_and_stride(reds):
    assert reds.output_names == ["coarse", "fine"]
    assert SRN_REDS_STRIDE == 8 and reds.required_multiple == SRN_REDS_STRIDE
    coarse, fine = run(reds, images(1, 64, 96))
    assert coarse.shape == (1, 32, 48, 3) and fine.shape == (1, 64, 96, 3)
    assert np.isfinite(fine).all()  # linear output: no range to check (reference range="any")
    assert get_spec("srndeblur_reds").reference["range"] == "any"
    with pytest.raises(ValueError, match="multiples of 8"):
        build_model("srndeblur_reds", input_shape=(60, 64, 3))
    full = build_model("srndeblur_reds", input_shape=(None, None, 3))  # the registered size
    assert full.count_params() > reds.count_params()


@pytest.mark.parametrize(
    "name, per_scale",
    [
        ("srndeblur_cifar", 0),
        ("srndeblur_reds", 0),
        # the coarse scale's Dense(32 -> 4*4*32)
        ("srndeblur_cifar_lstm", 32 * 4 * 4 * 32 + 4 * 4 * 32),
    ],
)
def test_two_scales_hold_one_set_of_weights(name, per_scale):
    shape = (32, 32, 3) if "cifar" in name else (None, None, 3)
    two = build_model(name, input_shape=shape, **SMALL)
    one = build_model(name, input_shape=shape, scales=1, **SMALL)
    assert two.count_params() == one.count_params() + per_scale
    kinds = lambda m: sorted(layer.__class__.__name__ for layer in m.layers if layer.weights)  # noqa: E731
    extra = ["Dense"] if per_scale else []
    assert kinds(two) == sorted(kinds(one) + extra)  # no copy of the scale network


@pytest.mark.parametrize("name", ["srndeblur_cifar", "srndeblur_reds"])
def test_changing_a_shared_weight_changes_both_scales(name):
    keras.utils.set_random_seed(1)
    model = wake_output(build_model(name, input_shape=(32, 32, 3), **SMALL))
    x = images(2, 32, 32, seed=1)
    before = run(model, x)
    for layer_name in ("enc1_down_conv", "output_conv"):
        kernel = model.get_layer(layer_name).kernel
        kernel.assign(kernel.numpy() * 1.5)
        after = run(model, x)
        for old, new in zip(before, after):
            assert np.abs(old - new).max() > 1e-4, f"{layer_name} does not feed both scales"
        before = after


def test_reds_runs_at_two_sizes_with_the_same_weights(reds):
    small, large = images(1, 32, 48), images(1, 72, 40, seed=2)
    assert run(reds, small)[1].shape == small.shape
    assert run(reds, large)[1].shape == large.shape
    fixed = build_model(
        "srndeblur_reds", input_shape=(72, 40, 3), **SMALL
    )  # e.g. a training-patch model
    fixed.set_weights(reds.get_weights())
    np.testing.assert_allclose(run(fixed, large)[1], run(reds, large)[1], atol=1e-5)


@pytest.mark.parametrize("name", ["srndeblur_reds", "srndeblur_cifar_lstm"])
def test_recurrent_state_passes_from_coarse_to_fine(name):
    keras.utils.set_random_seed(2)
    carried = wake_output(build_model(name, input_shape=(32, 32, 3), **SMALL))
    if name == "srndeblur_cifar_lstm":
        # Freshly initialised, the LSTM forgets its initial state over the 64 pixels of the fine
        # bottleneck (a relative effect of ~1e-5). Make it remember (forget gate open) and give its
        # output weight, so that whatever state the fine scale starts from shows in its output.
        lstm = carried.get_layer("bottleneck_lstm")
        bias = lstm.cell.bias.numpy()
        bias[lstm.units : 2 * lstm.units] = (
            20.0  # keras gate order: input, forget, candidate, output
        )
        lstm.cell.bias.assign(bias)
        dense = carried.get_layer("fine_lstm_dense").kernel
        dense.assign(dense.numpy() * 100)
    cut = with_state_cut(name, carried)  # same weights; the fine scale starts from a zero state
    x = images(2, 32, 32, seed=3)
    (c1, f1), (c2, f2) = run(carried, x), run(cut, x)
    np.testing.assert_array_equal(c1, c2)  # same weights, same coarse scale
    assert np.abs(f1 - f2).max() > 1e-3  # the fine scale depends on the coarse state


def test_convlstm_cell_any_size_and_serializable(tmp_path):
    cell = ConvLSTMCell(4, 3)
    for h, w in [(5, 7), (12, 6)]:
        x = images(2, h, w)
        h1, c1 = cell([x])
        h2, c2 = cell([x, h1, c1])
        assert h2.shape == (2, h, w, 4) and c2.shape == (2, h, w, 4)
        assert not np.allclose(h1, h2)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, ConvLSTMCell(4, 3, name="cell")([inputs])[0])
    path = tmp_path / "cell.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = images(1, 8, 8)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert isinstance(loaded.get_layer("cell"), ConvLSTMCell)


def test_train_fits_both_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = images(16, 32, 32), images(4, 32, 32, seed=1)
    config = TrainConfig(epochs=1, batch_size=8)
    set_seeds(0)
    model = build_model("srndeblur_cifar", filters=(4, 8), blocks_per_level=0)  # tracing dominates
    result = train(
        model,
        lambda a, b: training_stream(sharp, 8, 0, a, b),
        (make_blurred_set(val, seed=1)[0], val),
        "srn",
        config,
        verbose=False,
    )
    row = result.history.iloc[-1]
    # The loss is the sum of the two scales' MSEs.
    assert row["loss"] == pytest.approx(row["coarse_loss"] + row["fine_loss"], rel=1e-3)
    assert np.isfinite(row["val_fine_psnr"])


def test_metrics_per_scale_compares_each_output_with_a_resized_target():
    model = build_model("srndeblur_cifar", **SMALL)
    sharp = images(3, 32, 32)
    table = metrics_per_scale(model, make_blurred_set(sharp, seed=0)[0], sharp)
    assert list(table["scale"]) == ["coarse", "fine"] and list(table["size"]) == ["16×16", "32×32"]
    assert {"input MSE", "input SSIM", "MSE", "PSNR", "SSIM"} <= set(table.columns)
    assert table["input MSE"].iloc[0] < table["input MSE"].iloc[1]  # halving hides part of the blur


def test_resize_images_is_the_trainers_antialiased_bilinear_resize():
    sharp = images(2, 32, 32)
    small = resize_images(sharp, (16, 16))
    assert small.shape == (2, 16, 16, 3) and small.dtype == np.float32
    assert np.array_equal(resize_images(sharp, (32, 32)), sharp)
    if (
        keras.backend.backend() == "tensorflow"
    ):  # the trainer's targets: tf.image.resize, antialiased
        import tensorflow as tf

        expected = np.clip(tf.image.resize(sharp, (16, 16), antialias=True).numpy(), 0.0, 1.0)
        np.testing.assert_allclose(small, expected, rtol=0, atol=1e-6)
    flat = np.full((1, 32, 32, 3), 0.25, np.float32)  # a constant image stays that constant
    np.testing.assert_allclose(resize_images(flat, (16, 16)), 0.25, atol=1e-6)


def test_architecture_files_import_only_keras_numpy_and_the_shared_layers():
    import ast
    from pathlib import Path

    import deblurlab.models as models

    allowed = {"__future__", "keras", "numpy", "dataclasses", "typing", "math", "functools"}
    for module in models.architecture_modules():
        path = Path(models.__file__).parent / f"{module}.py"
        imports = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
        ]
        absolute = {
            alias.name.split(".")[0]
            for node in imports
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        absolute |= {
            node.module.split(".")[0]
            for node in imports
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        relative = {
            (node.level, node.module)
            for node in imports
            if isinstance(node, ast.ImportFrom) and node.level
        }
        assert absolute <= allowed, f"{path.name} imports {sorted(absolute - allowed)}"
        shared = [
            level == 1 and (name in models.HELPERS or name.startswith("_"))
            for level, name in relative
        ]
        assert all(shared), (
            f"{path.name} imports {sorted(relative)}: only the shared layers "
            f"({sorted(models.HELPERS)} and _private modules)"
        )


def test_cifar_batchnorm_is_set_for_short_runs():
    model = build_model("srndeblur_cifar", **SMALL)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    assert not np.any(
        model.get_layer("enc0_res1_b_bn").gamma.numpy()
    )  # each ResBlock starts as identity
    assert np.all(model.get_layer("enc0_res1_a_bn").gamma.numpy() == 1.0)


def test_multi_scale_targets_fit_a_model_of_any_input_size(reds):
    from deblurlab.training.train import multi_scale_targets

    sharp = images(2, 48, 64)
    _, (coarse, fine) = multi_scale_targets(reds)(sharp, sharp)
    assert tuple(coarse.shape) == (2, 24, 32, 3) and tuple(fine.shape) == (2, 48, 64, 3)
    assert [tuple(o.shape) for o in reds(sharp)] == [tuple(coarse.shape), tuple(fine.shape)]


def test_convlstm_cell_from_conv_gates_is_fully_counted(reds):
    from deblurlab.perf.flops import uncounted_layers

    assert uncounted_layers(reds) == []
    # the check names a layer whose weights the FLOP count leaves out
    embedding = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(10, 4)])
    assert uncounted_layers(embedding) == ["Embedding"]
