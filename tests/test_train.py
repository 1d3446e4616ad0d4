import json

import keras
import numpy as np
import pytest
from keras import layers

from deblurlab.data.blur import make_blurred_set, training_stream
from deblurlab.training.profiles import TrainConfig
from deblurlab.training.train import TENSORBOARD_SKIPPED, psnr_metric, set_seeds, train


def tiny_model():
    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    return keras.Model(inputs, layers.Conv2D(3, 3, padding="same", activation="sigmoid")(x))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 16, 16, 3)).astype("float32")
    val = rng.random((8, 16, 16, 3)).astype("float32")
    return sharp, (make_blurred_set(val, seed=1)[0], val)


class StopAfter(keras.callbacks.Callback):
    """Simulates a crash right after epoch ``k`` was checkpointed."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.k:
            raise KeyboardInterrupt


def run(sharp, val, name, epochs, callbacks=None, setup=None):
    config = TrainConfig(epochs=epochs, batch_size=8, patience=50, seed=0)
    stream = lambda a, b: training_stream(sharp, config.batch_size, 0, a, b)  # noqa: E731
    set_seeds(config.seed)  # the initial weights too
    return train(
        tiny_model(), stream, val, name, config, verbose=False, callbacks=callbacks, setup=setup
    )


@pytest.mark.jax
def test_interrupted_run_resumes_at_next_epoch_with_history(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    with pytest.raises(KeyboardInterrupt):
        run(sharp, val, "crash", 4, [StopAfter(2)])
    state = json.loads((tmp_path / "runs" / "crash" / "state.json").read_text())
    assert state["epoch"] == 1 and len(state["history"]) == 2

    resumed = run(sharp, val, "crash", 4)
    assert resumed.resumed_at == 2
    assert list(resumed.history["epoch"]) == [1, 2, 3, 4]
    assert not list(
        (tmp_path / "runs" / "crash").glob("tmp-*")
    )  # atomic writes left nothing behind

    straight = run(sharp, val, "straight", 4)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-4)


def test_a_run_resumed_in_another_arithmetic_keeps_the_change_for_its_record(
    data, tmp_path, monkeypatch
):
    from deblurlab.runtime.compute import ComputeSetup
    from deblurlab.training import zoo

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    cpu = dict(device="cpu", gpus=0, jit_compile=False, distribute=False)
    with pytest.raises(KeyboardInterrupt):
        run(sharp, val, "r", 4, [StopAfter(2)], setup=ComputeSetup(precision="float32", **cpu))
    bf16 = ComputeSetup(precision="mixed_bfloat16", **cpu)
    with pytest.raises(KeyboardInterrupt):
        run(sharp, val, "r", 4, [StopAfter(3)], setup=bf16)
    run(sharp, val, "r", 4, setup=bf16)  # the same arithmetic again: no new entry
    state = json.loads((tmp_path / "runs" / "r" / "state.json").read_text())
    change = {"epoch": 2, "backend": keras.backend.backend(), "before": "float32 on CPU"}
    assert state["resumed_on"] == [{**change, "arithmetic": "mixed_bfloat16 on CPU"}]
    record = {"arithmetic": bf16.arithmetic(), "resumed_on": state["resumed_on"]}
    assert zoo.arithmetic_story(record) == (
        "float32 on CPU for epochs 1-2, then mixed_bfloat16 on CPU from epoch 3"
    )


def test_finished_run_is_loaded_not_retrained(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    first = run(sharp, val, "done", 2)
    again = run(sharp, val, "done", 2)
    assert again.epochs_run == 2 and again.history.equals(first.history)


def test_changed_model_refuses_to_resume(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    run(sharp, val, "clash", 1)
    config = TrainConfig(epochs=2, batch_size=8, learning_rate=0.5)
    with pytest.raises(RuntimeError, match="different model or configuration"):
        train(
            tiny_model(),
            lambda a, b: training_stream(sharp, 8, 0, a, b),
            val,
            "clash",
            config,
            verbose=False,
        )


def test_early_stopping_state_survives(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    config = TrainConfig(
        epochs=30, batch_size=8, learning_rate=0.0, patience=2
    )  # lr 0: no progress
    result = train(
        tiny_model(),
        lambda a, b: training_stream(sharp, 8, 0, a, b),
        val,
        "stop",
        config,
        verbose=False,
    )
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 0


# The resume fingerprints of the reference runs that a background job is resuming: a change to
# _fingerprint (or to TrainConfig's fields) would make every kept TensorFlow run refuse to resume.
KNOWN_FINGERPRINTS = {"resunet1": "0ea9b92d10c05360", "srndeblur_cifar_lstm": "824e56fc24bcfd7d"}


@pytest.mark.parametrize("name", sorted(KNOWN_FINGERPRINTS))
def test_resume_fingerprint_is_unchanged(name):
    from deblurlab.models import build_model
    from deblurlab.training.train import _fingerprint

    config = TrainConfig(epochs=70, batch_size=32, learning_rate=1e-3, patience=7, seed=0)
    assert _fingerprint(build_model(name), config) == KNOWN_FINGERPRINTS[name]
    # epochs, patience and steps_per_execution may change between a run and its resumption
    later = TrainConfig(
        epochs=3, batch_size=32, learning_rate=1e-3, patience=2, seed=0, steps_per_execution=2
    )
    assert _fingerprint(build_model(name), later) == KNOWN_FINGERPRINTS[name]


@pytest.mark.jax
def test_state_records_the_backend_and_tensorboard(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    result = run(sharp, val, "backend", 1)
    state = json.loads((result.run_dir / "state.json").read_text())
    assert state["backend"] == keras.backend.backend()
    if keras.backend.backend() == "tensorflow":
        assert state["tensorboard"] == "written" and (result.run_dir / "tensorboard").is_dir()
    else:
        assert state["tensorboard"] == TENSORBOARD_SKIPPED
        assert not (result.run_dir / "tensorboard").exists()


def test_psnr_metric_is_tensorflows_psnr():
    rng = np.random.default_rng(3)
    a = rng.random((3, 8, 8, 3), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), -0.2, 1.2).astype(np.float32)
    mse = np.mean((a - np.clip(b, 0, 1)) ** 2, axis=(1, 2, 3))
    assert float(psnr_metric(a, b)) == pytest.approx(np.mean(-10 * np.log10(mse)), rel=1e-5)


def test_losses_and_the_cosine_schedule():
    from deblurlab.models import build_model
    from deblurlab.training.losses import charbonnier, learning_rate
    from deblurlab.training.train import _fingerprint

    config = TrainConfig(epochs=2, batch_size=4, learning_rate=2e-4, lr_schedule="cosine")
    schedule = learning_rate(config, 100)
    assert float(schedule(0)) == pytest.approx(2e-4)
    assert float(schedule(50)) == pytest.approx(1e-4, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="total number of steps"):
        learning_rate(config)
    assert learning_rate(TrainConfig(epochs=1, batch_size=4, learning_rate=3e-4)) == 3e-4
    zeros = np.zeros((2, 4, 4, 3), np.float32)
    np.testing.assert_allclose(np.asarray(charbonnier(zeros, zeros)), 1e-3, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(charbonnier(zeros, zeros + 0.5)), 0.5, rtol=1e-4)
    # a new field at its old default leaves a run's fingerprint as it was; another value does not
    model = build_model("resunet1")
    plain = TrainConfig(epochs=1, batch_size=4)
    assert _fingerprint(model, plain) == _fingerprint(
        model, TrainConfig(epochs=1, batch_size=4, loss="mse", lr_schedule="constant")
    )
    assert _fingerprint(model, plain) != _fingerprint(
        model, TrainConfig(epochs=1, batch_size=4, loss="l1")
    )


@pytest.mark.jax
def test_a_run_continues_from_saved_weights_where_its_checkpoints_are_gone(
    data, tmp_path, monkeypatch
):
    from deblurlab.runtime import provenance
    from deblurlab.training.checkpoints import machine_story
    from deblurlab.training.train import Continuation

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    first = run(sharp, val, "machine-a", 2)
    donor = tiny_model()
    donor.load_weights(first.run_dir / "best.weights.h5")
    start = Continuation(
        assign=lambda m: m.set_weights(donor.get_weights()),
        history=first.history.to_dict(orient="records"),
        note="from machine a",
        machines=[{"epoch": 1, "machine": "machine a"}],
    )
    config = TrainConfig(epochs=4, batch_size=8, patience=50, seed=0)
    stream = lambda a, b: training_stream(sharp, config.batch_size, 0, a, b)  # noqa: E731
    model = tiny_model()
    later = train(model, stream, val, "machine-b", config, verbose=False, continue_from=start)
    assert later.resumed_at == 2 and list(later.history["epoch"]) == [1, 2, 3, 4]
    state = json.loads((later.run_dir / "state.json").read_text())
    assert state["continued_from"] == {"epoch": 2, "note": "from machine a"}
    here = provenance.machine()
    assert state["machines"] == [
        {"epoch": 1, "machine": "machine a"},
        {"epoch": 3, "machine": here},
    ]
    assert machine_story(state) == f"machine a for epochs 1-2, then {here} from epoch 3"
    first_state = json.loads((first.run_dir / "state.json").read_text())
    assert machine_story({**first_state, "machine": here}) == here  # one machine: its name
    assert later.history["val_loss"].min() <= first.history["val_loss"].min()


def test_a_resumed_run_keeps_its_precision_unless_the_user_sets_one(tmp_path):
    from deblurlab.runtime.compute import ComputeSetup
    from deblurlab.training.checkpoints import resumed_setup

    cpu = dict(device="cpu", gpus=0, jit_compile=False, distribute=False)
    float32, bf16 = (ComputeSetup(precision=p, **cpu) for p in ("float32", "mixed_bfloat16"))
    assert resumed_setup(bf16, tmp_path, env={}) == bf16  # a new run: the machine's choice
    state = {"backend": keras.backend.backend(), "compute": float32.record()}
    (tmp_path / "state.json").write_text(json.dumps(state))
    kept = resumed_setup(bf16, tmp_path, env={})
    assert kept.precision == "float32" and "float32 as the run began" in kept.source
    assert resumed_setup(bf16, tmp_path, env={"DEBLURLAB_PRECISION": "mixed_bfloat16"}) == bf16
    gpu = ComputeSetup(
        device="gpu", gpus=1, precision="mixed_bfloat16", jit_compile="auto", distribute=False
    )
    assert resumed_setup(gpu, tmp_path, env={}) == gpu  # another device: its own choice
    state["resumed_on"] = [{"epoch": 3, "arithmetic": "mixed_bfloat16 on CPU"}]  # asked for
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert resumed_setup(float32, tmp_path, env={}).precision == "mixed_bfloat16"


def test_a_continued_run_in_another_arithmetic_records_the_change(data, tmp_path, monkeypatch):
    from deblurlab.runtime.compute import ComputeSetup
    from deblurlab.training.checkpoints import Continuation

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    shipped = Continuation(
        assign=lambda model: None,
        history=[{"epoch": 1, "loss": 0.1, "val_loss": 0.1}],
        note="continued from shipped weights",
        arithmetic="float32 on CPU",
    )
    bf16 = ComputeSetup(
        device="cpu", gpus=0, precision="mixed_bfloat16", jit_compile=False, distribute=False
    )
    config = TrainConfig(epochs=2, batch_size=8, patience=50, seed=0)
    stream = lambda a, b: training_stream(sharp, config.batch_size, 0, a, b)  # noqa: E731
    train(tiny_model(), stream, val, "c", config, verbose=False, setup=bf16, continue_from=shipped)
    state = json.loads((tmp_path / "runs" / "c" / "state.json").read_text())
    assert state["continued_from"]["epoch"] == 1 and len(state["history"]) == 2
    assert state["resumed_on"] == [
        {
            "epoch": 1,
            "arithmetic": "mixed_bfloat16 on CPU",
            "before": "float32 on CPU",
            "backend": keras.backend.backend(),
        }
    ]
