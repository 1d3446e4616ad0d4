"""Every registered model through the shared harness, and a toy model that the study picks up with
no edit outside its own file."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest
from model_harness import run_model_test

from deblurlab import models
from deblurlab.models import get_spec, list_models, register, unregister

# name: (parameters, a fresh model returns its input). Pinned: a change to an architecture must be
# deliberate (and the zoo's weights retrained). A new model adds its row here.
PINNED = {
    "caessc_d30_f64": (1_043_075, True),  # inverse input skip, last deconvolution at zero
    "caessc_d22_f128_half": (2_966_787, True),
    "caessc_d22_f128_half_no_sigmoid": (2_966_787, True),
    "eddensenet": (619_203, True),  # input_skip=True
    "nafnet_small": (1_969_587, True),  # zero betas, gammas and head, global residual
    "resunet1": (246_771, True),  # input_skip=True
    "resunet3": (885_427, True),
    "srndeblur_cifar": (965_923, True),  # input_skip=True: every scale starts as the identity
    "srndeblur_cifar_lstm": (1_324_451, True),
    "srndeblur_reds": (
        2_026_547,
        False,
    ),  # identity only through motion_study.identity_init (a training option)
}


@pytest.mark.parametrize("name", list_models())
def test_registered_model(name):
    if name not in PINNED:
        pytest.fail(
            f"{name} is registered but not pinned: add it to PINNED in tests/test_model_harness.py "
            f"with its parameter count (build_model({name!r}).count_params()) and whether a fresh "
            "model returns its input"
        )
    params, identity = PINNED[name]
    run_model_test(name, params, identity_at_init=identity)


def test_every_pinned_model_is_registered():
    assert set(PINNED) <= set(list_models()), (
        f"pinned but not registered: {sorted(set(PINNED) - set(list_models()))}"
    )


def test_the_scan_imports_every_architecture_file_and_no_helper():
    from pathlib import Path

    files = {p.stem for p in Path(models.__file__).parent.glob("*.py")}
    assert set(models.architecture_modules()) == files - models.HELPERS - {"__init__"}
    assert models.HELPERS <= files  # a renamed helper would be scanned as an architecture
    for name in list_models():
        module = get_spec(name).builder.__module__
        assert module.rsplit(".", 1)[-1] in models.architecture_modules(), (name, module)


def test_register_requires_the_default_profiles_epochs():
    with pytest.raises(TypeError, match="default_epochs is required"):
        register("toy_without_epochs", family="toy", dataset="cifar10", description="-")
    with pytest.raises(ValueError, match="needs default_epochs"):
        register(
            "toy_without_epochs",
            family="toy",
            dataset="cifar10",
            description="-",
            default_epochs=None,
        )
    with pytest.raises(ValueError, match="default_train_images"):
        register(
            "toy_without_epochs",
            family="toy",
            dataset="cifar10",
            description="-",
            default_epochs=1,
            default_train_images=0,
        )
    assert "toy_without_epochs" not in list_models()
    with pytest.raises(KeyError, match="unknown model"):
        unregister("toy_without_epochs")


def test_the_benchmark_targets_come_from_the_register_calls():
    from deblurlab.perf import bounds

    rows = [
        {
            "name": n,
            "dataset": get_spec(n).dataset,
            "bound": "compute",
            "train_images_per_s": 1.0,
            "train_ceiling_images_per_s": 1e4,
            "train_frac_fp32_peak": 0.5,
        }
        for n in list_models()
    ]
    targets = {
        c["model"]: c["target"]
        for c in bounds.target_checks(rows)
        if c["kind"] == "train_images_per_s"
    }
    assert targets == {"resunet3": 400.0, "caessc_d30_f64": 110.0}  # issue 6's


TOY_FILE = '''
"""A toy architecture file, as a new model would be written: everything about it is here."""
import keras
from keras import layers

from deblurlab.models.registry import register


@register("toy_cifar", family="toy", dataset="cifar10", description="one 3x3 convolution",
          training=dict(learning_rate=5e-4, patience=3, batch_size=16),
          reference=dict(mse=0.01, psnr=20.0, ssim=0.5),
          default_epochs=2, default_train_images=64, bench_target=5.0)
def toy_cifar(input_shape=(32, 32, 3), **kwargs):
    inputs = keras.Input(input_shape)
    conv = layers.Conv2D(input_shape[-1], 3, padding="same", activation="sigmoid")
    return keras.Model(inputs, conv(inputs))


@register("toy_motion", family="toy", dataset="motion", description="the same, for motion blur",
          default_epochs=None)
def toy_motion(input_shape=(None, None, 3), **kwargs):
    return toy_cifar(input_shape)
'''
TOY_MODULE = "toy_arch_for_tests"


@pytest.fixture
def toy_models(tmp_path, monkeypatch):
    """A toy architecture file in a temporary folder on the models package's path, found and
    imported by the package's own scan; unregistered afterwards."""
    (tmp_path / f"{TOY_MODULE}.py").write_text(textwrap.dedent(TOY_FILE))
    monkeypatch.setattr(models, "__path__", [*models.__path__, str(tmp_path)])
    importlib.invalidate_caches()
    try:
        assert TOY_MODULE in models.architecture_modules()
        models._import_architectures()  # the scan that runs at import; the other modules are cached
        yield ["toy_cifar", "toy_motion"]
    finally:
        for name in ("toy_cifar", "toy_motion"):
            if name in list_models():
                unregister(name)
        sys.modules.pop(f"{models.__name__}.{TOY_MODULE}", None)


def test_a_new_model_file_is_picked_up_everywhere(toy_models, tmp_path, monkeypatch):
    from deblurlab.perf import bounds, cli
    from deblurlab.studies.cifar import results as cr
    from deblurlab.training.profiles import CifarPlan

    assert set(toy_models) <= set(list_models())
    assert list_models(dataset="cifar10")[-1] == "toy_cifar"
    run_model_test("toy_cifar", 3 * 3 * 3 * 3 + 3, identity_at_init=False)

    # The profiles: the default profile's epochs and image cap, the report's optimiser settings.
    default = CifarPlan.for_profile("default")
    config = default.train_config("toy_cifar")
    assert (config.epochs, config.learning_rate, config.patience) == (2, 5e-4, 3)
    assert default.train_images("toy_cifar") == 64
    assert CifarPlan.for_profile("smoke").train_config("toy_cifar").epochs == 1
    assert CifarPlan.for_profile("smoke").train_images("toy_cifar") is None
    with pytest.raises(ValueError, match="no default_epochs"):
        default.train_config("toy_motion")

    # The benchmark: model selection and its speed target.
    assert cli.select_models("toy_cifar") == ["toy_cifar"]
    assert {"toy_cifar", "toy_motion"} <= set(cli.select_models(""))
    row = {
        "name": "toy_cifar",
        "dataset": "cifar10",
        "bound": "compute",
        "train_images_per_s": 4.0,
        "train_ceiling_images_per_s": 100.0,
        "train_frac_fp32_peak": 0.5,
    }
    [speed] = [c for c in bounds.target_checks([row]) if c["kind"] == "train_images_per_s"]
    assert (
        speed["target"] == 5.0
        and speed["met"] is False
        and "reachable in principle" in speed["text"]
    )
    motion = {**row, "name": "toy_motion", "dataset": "motion"}
    assert bounds.target_checks([motion]) == []  # no target, and no peak share for a motion model

    # The chapters' summary table keeps the CIFAR-10 toy and leaves the motion one out.
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    prov = {"data": "d", "profile": "smoke", "date": "x", "commit": "c", "machine": "m"}
    metrics = {"mse": 0.02, "psnr": 17.0, "ssim": 0.4}
    entry = {"metrics": metrics, "epochs": 1, "train_seconds": 1.0, "params": 84}
    payload = {
        "chapter": "toy",
        "provenance": prov,
        "models": {"toy_cifar": entry, "toy_motion": entry},
    }
    (tmp_path / "report" / "results").mkdir(parents=True)
    (tmp_path / "report" / "results" / "toy.json").write_text(json.dumps(payload))
    df = cr.summary_table(name=None)
    assert set(df["model"]) == {"toy_cifar"}
    assert list(df["run"]) == [
        "this run",
        "reference run: not scored by this run",
        "original report",
    ]


def test_the_toy_is_gone_after_its_test():
    assert not {"toy_cifar", "toy_motion"} & set(list_models())
    assert f"{models.__name__}.{TOY_MODULE}" not in sys.modules
