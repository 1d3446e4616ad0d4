"""Keras's JAX backend: the library without TensorFlow, the streams, every model one step, and
weights that cross backends.

The tests marked ``jax`` form the JAX subset (``make test`` runs them with ``KERAS_BACKEND=jax``
and TensorFlow blocked, ``tests/block_tf.py``); they run on the TensorFlow backend too. The
cross-backend test runs one subprocess per backend, so it needs TensorFlow and is not marked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from test_model_harness import PINNED

import deblurlab
from deblurlab.core import tables
from deblurlab.data import patches as P
from deblurlab.data.frames import ArrayFrames
from deblurlab.models import build_model, list_models
from deblurlab.runtime import compute, provenance
from deblurlab.training.profiles import TrainConfig
from deblurlab.training.train import compile_for_deblurring

TESTS = Path(__file__).resolve().parent
LIB = Path(deblurlab.__file__).resolve().parent.parent  # the subprocesses import this library
ON_JAX = keras.backend.backend() == "jax"


def _python(code: str, backend: str, timeout: int = 600, **env) -> str:
    """Run ``code`` in a fresh interpreter on the Keras ``backend``; returns its last line."""
    full_env = {
        **os.environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(LIB)]),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **env,
    }
    if backend != "jax":
        full_env.pop("DEBLURLAB_BLOCK_TF", None)
    prelude = "import block_tf; block_tf.install()\n"
    proc = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


LIBRARY = (
    "deblurlab.data.blur",
    "deblurlab.data.patches",
    "deblurlab.data.stream",
    "deblurlab.training.train",
    "deblurlab.runtime.compute",
    "deblurlab.runtime.provenance",
    "deblurlab.training.profiles",
    "deblurlab.models",
    "deblurlab.studies.cifar.study",
    "deblurlab.studies.motion.study",
)


@pytest.mark.jax
def test_the_library_imports_on_jax_without_tensorflow():
    out = _python(
        f"""
        import importlib, json, sys
        failed = {{}}
        for name in {LIBRARY!r}:
            try:
                importlib.import_module(name)
            except ImportError as err:
                failed[name] = str(err)
        import keras
        print(json.dumps({{"failed": failed, "tf": "tensorflow" in sys.modules,
                           "backend": keras.backend.backend()}}))
    """,
        "jax",
        DEBLURLAB_BLOCK_TF="1",
    )
    out = json.loads(out)
    assert out["backend"] == "jax" and not out["failed"] and not out["tf"], out


@pytest.mark.jax
def test_blocker_refuses_tensorflow_when_asked():
    if os.environ.get("DEBLURLAB_BLOCK_TF") != "1":
        pytest.skip("TensorFlow is not blocked in this session")
    with pytest.raises(ImportError, match="blocked"):
        import tensorflow  # noqa: F401
    assert "tensorflow" not in sys.modules


def _frames(n=5, seed=0):
    rng = np.random.default_rng(seed)
    sharp = [rng.random((40, 48, 3), dtype=np.float32) for _ in range(n)]
    blurred = [np.clip(s + rng.normal(0, 0.2, s.shape), 0, 1).astype(np.float32) for s in sharp]
    return ArrayFrames([f"f{i}" for i in range(n)], blurred, sharp)


@pytest.mark.jax
def test_patch_stream_is_deterministic_and_resumes_exactly():
    frames = _frames()
    full, steps = P.patch_stream(frames, 4, 3, 0, 3, patch_size=16, patches_per_image=2)
    assert isinstance(full, keras.utils.PyDataset) and steps == 2 and len(full) == 6
    batches = [tuple(np.asarray(part) for part in batch) for batch in full]
    assert batches[0][0].shape == (4, 16, 16, 3) and batches[0][0].dtype == np.float32
    assert not np.array_equal(batches[0][0], batches[2][0])  # each epoch its own draw
    resumed, _ = P.patch_stream(frames, 4, 3, 2, 3, patch_size=16, patches_per_image=2)
    for (a, b), (c, d) in zip(batches[4:], resumed):
        np.testing.assert_array_equal(a, np.asarray(c))
        np.testing.assert_array_equal(b, np.asarray(d))
    again = P.patch_stream(frames, 4, 3, 0, 3, patch_size=16, patches_per_image=2)[0]
    np.testing.assert_array_equal(np.asarray(again[3][1]), batches[3][1])  # any index, any order


@pytest.mark.jax
def test_ssim_matches_the_tensorflow_implementation():
    with np.load(TESTS / "data" / "blur_golden.npz") as golden:
        np.testing.assert_allclose(
            P.ssim_batch(golden["ssim_x"], golden["ssim_y"]), golden["ssim"], atol=1e-5
        )


@pytest.mark.jax
@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_and_trains_one_step(name):
    """Built at 16x16 (a multiple of every model's stride), one compiled training step."""
    if not ON_JAX:
        pytest.skip("on TensorFlow, tests/test_model_harness.py trains every model one step")
    assert name in PINNED  # the TensorFlow harness pins its parameters (at 32x32)
    model = build_model(name, input_shape=(16, 16, 3))
    rng = np.random.default_rng(0)
    x = rng.uniform(0.02, 0.98, (2, 16, 16, 3)).astype("float32")
    targets = [rng.random((2, *out.shape[1:]), dtype=np.float32) for out in model.outputs]
    compile_for_deblurring(model, TrainConfig(epochs=1, batch_size=2))
    history = model.fit(x, targets if len(targets) > 1 else targets[0], batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.jax
def test_compute_and_provenance_name_the_backend():
    setup = compute.current("resunet1")
    assert setup.backend == keras.backend.backend() and setup.record()["backend"] == setup.backend
    if ON_JAX:
        assert setup.jit_compile is True and "JAX" in setup.source
    prov = provenance.provenance("toy data", "smoke")
    name = provenance.BACKEND_NAMES[keras.backend.backend()]
    assert name in prov["backend"] and f"Backend: {prov['backend']}." in tables.footnote(prov)
    assert "Backend" not in tables.footnote({k: v for k, v in prov.items() if k != "backend"})


DATA_PARALLEL = """
    import json
    import numpy as np
    import keras
    from deblurlab.runtime.compute import ComputeSetup
    from deblurlab.data.blur import make_blurred_set, training_stream
    from deblurlab.models import build_model
    from deblurlab.training.profiles import TrainConfig
    from deblurlab.training.train import train

    setup = ComputeSetup("cpu", 0, "float32", True, True, devices=("cpu:0", "cpu:1"), backend="jax")
    sharp = np.random.default_rng(0).random((32, 16, 16, 3), dtype=np.float32)
    val = (make_blurred_set(sharp[:8], seed=1)[0], sharp[:8])
    with setup.scope():
        active = type(keras.distribution.distribution()).__name__
        model = build_model("resunet1", input_shape=(16, 16, 3))
        result = train(model, lambda a, b: training_stream(sharp, 8, 0, a, b), val, "dp",
                       TrainConfig(epochs=1, batch_size=8), verbose=False, setup=setup)
        shards = len(model.weights[0].value.sharding.device_set)
    print(json.dumps({"active": active, "shards": shards, "describe": setup.describe(),
                      "loss": result.history["loss"].tolist()}))
"""


@pytest.mark.jax
def test_data_parallel_trains_over_two_devices_on_jax(tmp_path):
    """Two host devices stand in for two GPUs: keras.distribution.DataParallel's code path."""
    out = json.loads(
        _python(
            DATA_PARALLEL,
            "jax",
            DEBLURLAB_OUTPUT_DIR=str(tmp_path),
            XLA_FLAGS="--xla_force_host_platform_device_count=2",
        )
    )
    assert out["active"] == "DataParallel" and out["shards"] == 2, out
    assert out["describe"].endswith("DataParallel over 2 devices")
    assert np.isfinite(out["loss"]).all()


CROSS_SAVE = """
    import json, sys
    import numpy as np
    from deblurlab.models import build_model
    names, folder = sys.argv[1].split(","), sys.argv[2]
    x = np.random.default_rng(0).uniform(0.05, 0.95, (2, 16, 16, 3)).astype("float32")
    for name in names:
        model = build_model(name, input_shape=(16, 16, 3))
        rng = np.random.default_rng(1)
        for w in model.weights:  # perturbed: a fresh identity model would match vacuously
            value = np.asarray(w.numpy()) + rng.normal(0, 0.02, w.shape).astype("float32")
            w.assign(np.abs(value) + 1e-3 if "variance" in w.path else value)
        model.save_weights(f"{folder}/{name}.weights.h5")
        out = model(x, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        np.savez(f"{folder}/{name}.npz", *[np.asarray(o) for o in out])
    print("saved")
"""
CROSS_LOAD = """
    import json, sys
    import numpy as np
    from deblurlab.models import build_model
    names, folder = sys.argv[1].split(","), sys.argv[2]
    x = np.random.default_rng(0).uniform(0.05, 0.95, (2, 16, 16, 3)).astype("float32")
    gaps = {}
    for name in names:
        model = build_model(name, input_shape=(16, 16, 3))
        model.load_weights(f"{folder}/{name}.weights.h5")
        out = model(x, training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        with np.load(f"{folder}/{name}.npz") as saved:
            gaps[name] = max(float(np.abs(np.asarray(o) - saved[f"arr_{i}"]).max())
                             for i, o in enumerate(out))
    print(json.dumps(gaps))
"""
# Conv2DTranspose and BatchNorm (CAESSC), the vector LSTM (SRNDeblur-LSTM), the ConvLSTM cell.
CROSS_MODELS = "caessc_d30_f64,srndeblur_cifar_lstm,srndeblur_reds"


@pytest.mark.parametrize("save_on, load_on", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_weights_saved_on_one_backend_load_on_the_other(tmp_path, save_on, load_on):
    if os.environ.get("DEBLURLAB_BLOCK_TF") == "1":
        pytest.skip("needs TensorFlow for one side")
    argv = f"import sys; sys.argv[1:] = [{CROSS_MODELS!r}, {str(tmp_path)!r}]\n"
    assert _python(argv + textwrap.dedent(CROSS_SAVE), save_on) == "saved"
    gaps = json.loads(_python(argv + textwrap.dedent(CROSS_LOAD), load_on))
    assert set(gaps) == set(CROSS_MODELS.split(","))
    assert max(gaps.values()) < 1e-4, gaps
