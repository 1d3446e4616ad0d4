"""Precision, XLA and distribution per device: the choice, the scope, and training under each."""
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from deblurlab import compute
from deblurlab.models import build_model
from deblurlab.train import TrainConfig, train


def test_cpu_keeps_float32_and_gpus_get_mixed_precision_and_mirroring():
    cpu = compute.choose(0, env={})
    assert (cpu.device, cpu.precision, cpu.distribute) == ("cpu", "float32", False)
    assert cpu.describe() == "float32, XLA as Keras chooses, CPU"
    h100 = compute.choose(1, (9, 0), env={})
    assert (h100.precision, h100.distribute) == ("mixed_bfloat16", False)
    four_v100 = compute.choose(4, (7, 0), env={})
    assert (four_v100.precision, four_v100.distribute) == ("mixed_float16", True)
    assert "MirroredStrategy over 4 GPUs" in four_v100.describe()
    assert four_v100.arithmetic() == "mixed_float16 on 4 GPUs" and cpu.arithmetic() == "float32 on CPU"


def test_xla_on_a_cpu_follows_the_measured_table(monkeypatch):
    monkeypatch.setattr(compute, "CPU_XLA", {"fast_model": True})
    assert compute.choose(0, env={}, model_name="fast_model").jit_compile is True
    assert compute.choose(0, env={}, model_name="other").jit_compile == "auto"
    assert compute.choose(1, (9, 0), env={}, model_name="fast_model").jit_compile == "auto"


def test_environment_overrides_and_bad_values_name_the_variable():
    setup = compute.choose(1, (9, 0), env={compute.PRECISION_ENV: "float32", compute.JIT_ENV: "0"})
    assert (setup.precision, setup.jit_compile) == ("float32", False)
    with pytest.raises(ValueError, match="DEBLURLAB_PRECISION='fp8'"):
        compute.choose(0, env={compute.PRECISION_ENV: "fp8"})
    with pytest.raises(ValueError, match="DEBLURLAB_JIT"):
        compute.choose(0, env={compute.JIT_ENV: "yes"})


def _pairs(n, size=16, seed=0):
    rng = np.random.default_rng(seed)
    sharp = rng.random((n, size, size, 3), dtype=np.float32)
    return (0.5 * sharp + 0.25).astype(np.float32), sharp


def test_mixed_bfloat16_scope_trains_and_restores_the_global_policy(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    setup = compute.choose(0, env={compute.PRECISION_ENV: "mixed_bfloat16"})
    blurred, sharp = _pairs(16)

    def stream(first, last):
        return tf.data.Dataset.from_tensor_slices((blurred, sharp)).batch(8).repeat(), 2

    with setup.scope():
        model = build_model("resunet1", input_shape=(16, 16, 3))
        result = train(model, stream, (blurred[:8], sharp[:8]), "bf16", TrainConfig(epochs=1, batch_size=8),
                       verbose=False, setup=setup)
    assert keras.mixed_precision.dtype_policy().name == "float32"
    assert model.compute_dtype == "bfloat16" and model.weights[0].dtype == "float32"
    assert np.isfinite(result.history["loss"]).all() and np.isfinite(result.history["val_loss"]).all()
    state = json.loads((result.run_dir / "state.json").read_text())
    assert state["compute"]["precision"] == "mixed_bfloat16"
    assert state["compute"]["description"] == "mixed_bfloat16, XLA as Keras chooses, CPU"


MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from deblurlab.compute import ComputeSetup
    from deblurlab.models import build_model
    from deblurlab.train import TrainConfig, train

    setup = ComputeSetup("cpu", 0, "float32", "auto", True, devices=("/cpu:0", "/cpu:1"))
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 16, 16, 3), dtype=np.float32)
    blurred = (0.5 * sharp + 0.25).astype(np.float32)
    stream = lambda first, last: (tf.data.Dataset.from_tensor_slices((blurred, sharp)).batch(8).repeat(), 4)
    with setup.scope():
        model = build_model("srndeblur_cifar", input_shape=(16, 16, 3))
        result = train(model, stream, (blurred[:8], sharp[:8]), "mirrored", TrainConfig(epochs=2, batch_size=8),
                       verbose=False, setup=setup)
    print(json.dumps({"replicas": model.distribute_strategy.num_replicas_in_sync,
                      "loss": result.history["loss"].tolist(), "describe": setup.describe()}))
""")


def test_mirrored_strategy_trains_a_multi_scale_model_over_two_devices(tmp_path):
    """Two logical CPUs stand in for two GPUs: the same code path as a multi-GPU machine."""
    proc = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "DEBLURLAB_OUTPUT_DIR": str(tmp_path),
                               "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["describe"].endswith("MirroredStrategy over 2 devices")
    assert len(out["loss"]) == 2 and all(np.isfinite(out["loss"]))


def test_cpu_xla_table_agrees_with_the_kept_tuning_record():
    """XLA is on exactly for the tuned models whose measured training gain reaches XLA_MIN_GAIN."""
    from deblurlab.paths import REPO_ROOT

    record = json.loads((REPO_ROOT / "report" / "results" / "bench_cpu_tuning.json").read_text())
    gains = {name: r["variants"]["jit_compile"]["train_ratio"]
             for name, r in record["tuning"]["models"].items() if "error" not in r}
    assert gains, "the tuning record holds no model"
    for name, gain in gains.items():
        assert compute.CPU_XLA.get(name, False) == (gain >= compute.XLA_MIN_GAIN), (name, gain)
    assert set(compute.CPU_XLA) <= set(gains), "CPU_XLA names a model the record has not tuned"
