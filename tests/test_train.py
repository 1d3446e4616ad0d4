import json

import keras
import numpy as np
import pytest
from keras import layers

from deblurlab.data.blur import make_blurred_set, training_stream
from deblurlab.train import TrainConfig, set_seeds, train


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


def run(sharp, val, name, epochs, callbacks=None):
    config = TrainConfig(epochs=epochs, batch_size=8, patience=50, seed=0)
    stream = lambda a, b: training_stream(sharp, config.batch_size, 0, a, b)  # noqa: E731
    set_seeds(config.seed)  # the initial weights too
    return train(tiny_model(), stream, val, name, config, verbose=False, callbacks=callbacks)


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
    assert not list((tmp_path / "runs" / "crash").glob("tmp-*"))  # atomic writes left nothing behind

    straight = run(sharp, val, "straight", 4)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=1e-4)


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
        train(tiny_model(), lambda a, b: training_stream(sharp, 8, 0, a, b), val, "clash", config, verbose=False)


def test_early_stopping_state_survives(data, tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    sharp, val = data
    config = TrainConfig(epochs=30, batch_size=8, learning_rate=0.0, patience=2)  # lr 0: no progress
    result = train(tiny_model(), lambda a, b: training_stream(sharp, 8, 0, a, b), val, "stop", config,
                   verbose=False)
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 0
