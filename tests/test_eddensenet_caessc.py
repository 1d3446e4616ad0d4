import numpy as np
import pytest

from deblurlab.models import build_model, get_spec, list_models
from deblurlab.studies.cifar.analysis import RED30_PAPER

CAESSC = ["caessc_d30_f64", "caessc_d22_f128_half", "caessc_d22_f128_half_no_sigmoid"]


@pytest.fixture(scope="module")
def models():
    return {name: build_model(name) for name in ["eddensenet", *CAESSC]}


def kinds(model, kind):
    return [layer for layer in model.layers if layer.__class__.__name__ == kind]


def test_registered_with_the_reports_settings():
    assert {"eddensenet", *CAESSC} <= set(list_models(dataset="cifar10"))
    spec = get_spec("eddensenet")
    assert spec.training == dict(learning_rate=1e-3, patience=5, batch_size=128)
    assert spec.reference == dict(mse=0.0021, psnr=27.62, ssim=0.90)
    for name in CAESSC:
        assert get_spec(name).training == dict(learning_rate=1e-4, patience=7, batch_size=128)
    assert get_spec("caessc_d22_f128_half_no_sigmoid").reference["range"] == "relu"
    assert "range" not in get_spec("caessc_d22_f128_half").reference
    assert "not comparable" in RED30_PAPER["note"] and "paper" in RED30_PAPER["model"]


@pytest.mark.parametrize("name", ["eddensenet", *CAESSC])
def test_shape_and_range(models, name):
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    out = np.asarray(models[name](x, training=False))
    assert out.shape == (2, 32, 32, 3)
    assert out.min() >= 0.0
    if name.endswith("no_sigmoid"):
        assert models[name].get_layer("restored").activation.__name__ == "relu"
    else:
        assert out.max() <= 1.0


# ---------------------------------------------------------------------------------- EDDenseNet


def test_dense_blocks_have_the_reports_depths(models):
    names = {layer.name for layer in models["eddensenet"].layers}

    def layers_in(block):
        return sum(f"{block}_l{k}_conv3" in names for k in range(1, 20))

    assert [layers_in(f"enc{i}") for i in (1, 2, 3)] == [6, 6, 3]
    assert [layers_in(f"dec{i}") for i in (1, 2)] == [3, 6]


def test_dense_connectivity(models):
    """Layer k of a block sees the block input and the k-1 earlier outputs: c0 + (k-1)*16
    channels."""
    m = models["eddensenet"]
    for block, n in [("enc1", 6), ("enc2", 6), ("enc3", 3), ("dec1", 3), ("dec2", 6)]:
        c0 = m.get_layer(f"{block}_l1_conv1").input.shape[-1]
        for k in range(1, n + 1):
            assert m.get_layer(f"{block}_l{k}_conv1").input.shape[-1] == c0 + (k - 1) * 16
            assert m.get_layer(f"{block}_l{k}_conv1").kernel_size == (
                1,
                1,
            )  # bottleneck before the 3x3
            conv3 = m.get_layer(f"{block}_l{k}_conv3")
            assert conv3.kernel_size == (3, 3) and conv3.filters == 16
        assert m.get_layer(f"{block}_l{n}_concat").output.shape[-1] == c0 + n * 16


def test_transitions_bottleneck_and_output(models):
    m = models["eddensenet"]
    for i in (1, 2):
        down, up = m.get_layer(f"down{i}_conv"), m.get_layer(f"up{i}_deconv")
        assert down.__class__.__name__ == "Conv2D" and down.strides == (2, 2)
        assert up.__class__.__name__ == "Conv2DTranspose" and up.strides == (2, 2)
    assert not {layer.__class__.__name__ for layer in m.layers} & {
        "MaxPooling2D",
        "AveragePooling2D",
        "UpSampling2D",
    }
    bottleneck = m.get_layer("bottleneck_conv")
    assert bottleneck.input.shape[-1] == 124 and bottleneck.filters == 16
    assert bottleneck.count_params() == 124 * 3 * 3 * 16 + 16 == 17_872
    last = m.get_layer("restored_deconv")
    assert (
        last.__class__.__name__ == "Conv2DTranspose"
        and m.get_layer("restored").activation.__name__ == "sigmoid"
    )
    exact = build_model("eddensenet", input_skip=False).get_layer(
        "restored"
    )  # the report's own last layer
    assert exact.__class__.__name__ == "Conv2DTranspose" and exact.activation.__name__ == "sigmoid"
    without = build_model("eddensenet", bottleneck=False)
    assert without.get_layer("dec1_l1_conv1").input.shape[-1] == 124
    with pytest.raises(ValueError, match="divisible"):
        build_model("eddensenet", input_shape=(30, 30, 3))


# ---------------------------------------------------------------------------------- CAESSC


@pytest.mark.parametrize(
    "name,depth,filters,half,last",
    [
        ("caessc_d30_f64", 30, 64, False, "sigmoid"),
        ("caessc_d22_f128_half", 22, 128, True, "sigmoid"),
        ("caessc_d22_f128_half_no_sigmoid", 22, 128, True, "relu"),
    ],
)
def test_caessc_structure(models, name, depth, filters, half, last):
    m = models[name]
    convs, deconvs = kinds(m, "Conv2D"), kinds(m, "Conv2DTranspose")
    assert len(convs) == len(deconvs) == depth // 2
    assert all(layer.filters == filters for layer in convs) and all(
        layer.filters == filters for layer in deconvs[:-1]
    )
    strided = [layer.name for layer in convs + deconvs if layer.strides == (2, 2)]
    assert strided == (["enc1_conv", "dec1_deconv"] if half else [])
    # Conv -> BN -> ReLU everywhere but the last layer.
    assert len(kinds(m, "BatchNormalization")) == depth - 1
    assert m.get_layer("restored").activation.__name__ == last
    # Symmetric additive skips every 2 layers, plus input -> output.
    adds = kinds(m, "Add")
    assert len(adds) == depth // 4 + 1
    sources = {
        tuple(t._keras_history.operation.name for t in a._inbound_nodes[0].input_tensors)
        for a in adds
    }
    assert ("dec1_deconv", "dec1_logit" if last == "sigmoid" else "blurred") in sources
    for i in range(3, depth // 2 + 1, 2):
        assert (f"dec{i}_bn", f"enc{i - 1}_relu") in sources
    for a in adds:
        shapes = [tuple(t.shape) for t in a._inbound_nodes[0].input_tensors]
        assert shapes[0] == shapes[1]


def test_caessc_starts_as_the_identity(models):
    """The input skip enters through the output activation's inverse and the last deconvolution
    starts at zero, so a fresh model returns its input (clipped to [1e-3, 1 - 1e-3] for the
    sigmoid)."""
    x = np.random.default_rng(1).random((2, 32, 32, 3)).astype("float32")
    for name in CAESSC:
        out = np.asarray(models[name](x, training=False))
        np.testing.assert_allclose(
            out, np.clip(x, 1e-3, 1 - 1e-3) if "no_sigmoid" not in name else x, atol=1e-5
        )
    plain = build_model("caessc_d22_f128_half", depth=4, input_skip="direct", zero_init_last=False)
    assert "dec1_logit" not in {layer.name for layer in plain.layers}
    assert np.abs(np.asarray(plain(x, training=False)) - x).max() > 0.01


def test_caessc_checks_its_arguments():
    with pytest.raises(ValueError, match="even depth"):
        build_model("caessc_d30_f64", depth=7)
    with pytest.raises(ValueError, match="input_skip"):
        build_model("caessc_d30_f64", depth=4, input_skip="sideways")


def test_bottleneck_arithmetic_is_read_from_the_model(models):
    from deblurlab.studies.cifar.analysis import bottleneck_arithmetic

    a = bottleneck_arithmetic(models["eddensenet"])
    assert a["layer"] == "bottleneck_conv" and a["channels"] == 124
    assert (a["with_bottleneck"], a["without_bottleneck"]) == (17_872, 138_508)
    assert a["without_bottleneck"] - 124 == a["report_without"]  # the report left out the bias
    assert a["formula_without"] == "124·3·3·124+124"


# ---------------------------------------------------------------------------------- dark areas


def test_dark_pixel_metrics_and_verdict():
    from deblurlab.studies.cifar.analysis import (
        dark_failure_verdict,
        dark_pixel_metrics,
        darkest_indices,
        red30_paper_row,
    )

    sharp = np.full((3, 4, 4, 3), 0.5)
    sharp[0] = 0.02  # one all-dark image
    assert darkest_indices(sharp, 2)[0] == 0
    good = sharp + 0.01
    bad_dark = good.copy()
    bad_dark[0] += 0.2  # wrong only where the sharp image is dark
    table = dark_pixel_metrics({"relu": bad_dark, "sigmoid": good}, sharp)
    assert table.loc[0, "dark pixels %"] == pytest.approx(100 / 3)
    assert table.loc[0, "dark MSE"] == pytest.approx(0.21**2)
    verdict = dark_failure_verdict(table, "relu", "sigmoid")
    assert verdict["reproduced"] is True and "We reproduce" in verdict["sentence"]
    # Worse everywhere by the same factor: not a dark-specific failure.
    table = dark_pixel_metrics({"relu": sharp + 0.03, "sigmoid": good}, sharp)
    assert dark_failure_verdict(table, "relu", "sigmoid")["reproduced"] is False
    # No dark pixels: no verdict.
    table = dark_pixel_metrics({"relu": good[1:], "sigmoid": good[1:]}, sharp[1:])
    assert dark_failure_verdict(table, "relu", "sigmoid")["reproduced"] is None
    row = red30_paper_row(["model", "PSNR", "report PSNR"])
    assert row["report PSNR"] == 34.49 and row["PSNR"] is None and "paper" in row["model"]


def test_default_profile_caps_training_images_only_where_listed(monkeypatch):
    import dataclasses

    from deblurlab.models import registry
    from deblurlab.training import profiles

    capped = dataclasses.replace(registry.get_spec("caessc_d30_f64"), default_train_images=640)
    monkeypatch.setitem(registry._REGISTRY, "caessc_d30_f64", capped)
    assert profiles.CifarPlan.for_profile("default").train_images("caessc_d30_f64") == 640
    assert profiles.CifarPlan.for_profile("smoke").train_images("caessc_d30_f64") is None
    assert profiles.CifarPlan.for_profile("default").train_images("resunet1") is None
