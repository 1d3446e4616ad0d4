"""NAFNet (models/nafnet.py): shapes, range, identity, parameters, save/load and a training step are
tests/test_model_harness.py's (its PINNED row); here what is NAFNet's own."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from test_model_harness import PINNED

from deblurlab.models import build_model, get_spec, list_models
from deblurlab.models.nafnet import ChannelScale, PixelShuffle, SimpleGate
from deblurlab.perf import flops
from deblurlab.studies.motion import study as motion_study
from deblurlab.training import inference

NAME = "nafnet_small"


@pytest.fixture(scope="module")
def net():
    return build_model(NAME, input_shape=(None, None, 3))


def test_it_is_a_registered_motion_model():
    spec = get_spec(NAME)
    assert NAME in list_models(dataset="motion") and spec.family == "nafnet"
    assert spec.default_epochs is None and spec.reference == {"range": "any"}


@pytest.mark.parametrize("size", [(16, 16), (48, 80), (64, 32)])
def test_a_fresh_network_returns_its_input_at_any_multiple_of_16(net, size):
    x = np.random.default_rng(1).uniform(0.0, 1.0, (2, *size, 3)).astype("float32")
    out = np.asarray(net(x, training=False))
    np.testing.assert_array_equal(out, x)  # zero betas, gammas and head: exactly the input


def test_parameters_are_pinned_and_do_not_depend_on_the_input_size(net):
    params, identity = PINNED[NAME]
    assert identity and net.count_params() == params == 1_969_587
    assert build_model(NAME, input_shape=(64, 64, 3)).count_params() == params


def test_size_multiple_is_two_to_the_stages(net):
    assert inference.network_multiple(net) == 16
    with pytest.raises(ValueError, match="multiples of 16"):
        build_model(NAME, input_shape=(40, 48, 3))
    three = build_model(
        NAME, input_shape=(None, None, 3), enc_blocks=(1, 1, 2), dec_blocks=(1,) * 3
    )
    assert inference.network_multiple(three) == 8


def test_no_activation_function_and_zero_initial_scales(net):
    kinds = {type(layer).__name__ for layer in net.layers}
    assert not kinds & {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"}
    assert all(
        getattr(layer, "activation", None) in (None, keras.activations.linear)
        for layer in net.layers
    )
    scales = [layer for layer in net.layers if isinstance(layer, ChannelScale)]
    assert len(scales) == 2 * 16  # beta and gamma of (1 + 1 + 1 + 8) + 1 + (1 + 1 + 1 + 1) blocks
    assert all(not np.any(layer.get_weights()[0]) for layer in scales)
    assert not any(np.any(w) for w in net.get_layer("head").get_weights())


def test_every_weight_is_counted_by_the_flop_counter(net):
    counted = flops.count(net, input_shape=(128, 128, 3))
    assert counted["uncounted_layers"] == [] and flops.uncounted_layers(net) == []
    assert 0.9e9 < counted["flops"] < 1.1e9  # about 1.0 GFLOP a 128x128 patch


def test_custom_layers_round_trip_through_their_config():
    x = np.arange(2 * 2 * 3 * 8, dtype="float32").reshape(2, 2, 3, 8)
    for layer in (SimpleGate(name="g"), PixelShuffle(2, name="p"), ChannelScale(name="s")):
        copy = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
        assert type(copy) is type(layer) and copy.get_config() == layer.get_config()
    np.testing.assert_array_equal(np.asarray(SimpleGate()(x)), x[..., :4] * x[..., 4:])
    shuffled = np.asarray(PixelShuffle(2)(x))
    assert shuffled.shape == (2, 4, 6, 2)
    np.testing.assert_array_equal(shuffled[0, 1, 1], x[0, 0, 0, 6:8])  # block (1, 1): last pair


def test_the_full_resolution_copy_holds_the_trained_weights():
    trained = build_model(NAME, input_shape=(32, 32, 3))
    rng = np.random.default_rng(0)
    for w in trained.weights:
        w.assign(rng.normal(0.0, 0.02, w.shape).astype("float32"))
    full = inference.full_resolution_model(trained, NAME)
    x = rng.uniform(0.0, 1.0, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(trained(x)), atol=1e-5)


def test_the_motion_studys_identity_start_leaves_it_as_built(net):
    """``motion_study.train_model`` starts every model with ``identity_init`` (SRN's layer edits);
    NAFNet is the identity as built, so it is returned untouched."""
    before = [np.asarray(w) for w in net.get_weights()]
    assert motion_study.identity_init(net) is net
    assert all(np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
