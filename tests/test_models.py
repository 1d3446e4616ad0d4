import numpy as np
import pytest

from deblurlab.models import build_model, get_spec, list_models

CIFAR_MODELS = list_models(dataset="cifar10")


def test_registry_knows_the_resunets():
    assert {"resunet1", "resunet3"} <= set(CIFAR_MODELS)
    with pytest.raises(KeyError, match="unknown model"):
        get_spec("no-such-model")


# Every model's output shapes, range, identity at initialisation, pinned parameter count, save/load
# and training step: tests/test_model_harness.py.


def test_resunet3_is_deeper():
    one, three = build_model("resunet1"), build_model("resunet3")
    convs = lambda m: sum(layer.__class__.__name__ == "Conv2D" for layer in m.layers)  # noqa: E731
    assert convs(three) > convs(one)


def test_resunet_resamples_with_strided_and_transposed_convs_only():
    model = build_model("resunet1")
    kinds = {layer.__class__.__name__ for layer in model.layers}
    assert "Conv2DTranspose" in kinds
    assert not kinds & {"MaxPooling2D", "AveragePooling2D", "UpSampling2D"}
    strided = [
        layer
        for layer in model.layers
        if layer.__class__.__name__ == "Conv2D" and layer.strides == (2, 2)
    ]
    assert len(strided) == 2


def test_resblock_concatenates_its_input():
    model = build_model("resunet1")
    block = model.get_layer("down0_res1_concat")
    assert block.output.shape[-1] == 16 + 16  # conv output + block input


@pytest.mark.parametrize("name", ["resunet1", "eddensenet", "srndeblur_cifar"])
def test_input_skip_makes_a_fresh_network_return_its_input(name):
    x = np.random.default_rng(0).uniform(0.01, 0.99, (2, 32, 32, 3)).astype("float32")
    with_skip = build_model(name)
    out = with_skip(x, training=False)
    np.testing.assert_allclose(
        np.asarray(out[-1] if isinstance(out, (list, tuple)) else out), x, atol=1e-5
    )
    # Without the skip (the report's network) the parameter count is the same and the output is
    # not the input.
    without = build_model(name, input_skip=False)
    assert without.count_params() == with_skip.count_params()
    out = without(x, training=False)
    assert np.abs(np.asarray(out[-1] if isinstance(out, (list, tuple)) else out) - x).mean() > 0.01
