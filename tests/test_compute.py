"""Precision, XLA and distribution per device: the choice, the scope, and training under each."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from deblurlab.data.stream import Stream
from deblurlab.models import build_model
from deblurlab.runtime import compute
from deblurlab.training.profiles import TrainConfig
from deblurlab.training.train import train


def test_cpu_keeps_float32_and_gpus_get_mixed_precision_and_mirroring():
    cpu = compute.choose(0, env={}, records={}, backend="tensorflow")
    assert (cpu.device, cpu.precision, cpu.distribute) == ("cpu", "float32", False)
    assert cpu.describe() == "float32, XLA as Keras chooses, CPU"
    h100 = compute.choose(1, (9, 0), env={})
    assert (h100.precision, h100.distribute) == ("mixed_bfloat16", False)
    four_v100 = compute.choose(4, (7, 0), env={}, backend="tensorflow")
    assert (four_v100.precision, four_v100.distribute) == ("mixed_float16", True)
    assert "MirroredStrategy over 4 GPUs" in four_v100.describe()
    assert (
        four_v100.arithmetic() == "mixed_float16 on 4 GPUs" and cpu.arithmetic() == "float32 on CPU"
    )


def _record(flags: dict, **gains) -> dict:
    """A tuning record of one model "m" with the given train ratios (labels with "+" as "__")."""
    summary = {label.replace("__", "+"): {"train_ratio": ratio} for label, ratio in gains.items()}
    return {"cpu_flags": flags, "tuning": {"summary": {"m": summary}}}


AVX2 = {"avx2": True, "avx512_bf16": False, "amx_bf16": False}
BF16 = {"avx2": True, "avx512f": True, "avx512_bf16": True, "amx_bf16": True}


def test_a_cpu_follows_its_own_tuning_record():
    records = {
        "cpu-avx2": _record(AVX2, jit_compile=1.4, mixed_bfloat16=0.2),
        "cpu-avx512-bf16-amx": _record(
            BF16, jit_compile=1.05, mixed_bfloat16=2.1, mixed_bfloat16__jit_compile=2.5
        ),
    }
    kept = {
        ("cpu-avx512-bf16-amx", "m"): {
            "precision_check": {"mixed_bfloat16": {"quality_kept": True}}
        }
    }
    avx2 = compute.choose(0, env={}, model_name="m", key="cpu-avx2", records=records, seeds=kept)
    assert (avx2.precision, avx2.jit_compile, avx2.source) == (
        "float32",
        True,
        "tuning record cpu-avx2",
    )
    amx = compute.choose(
        0, env={}, model_name="m", key="cpu-avx512-bf16-amx", records=records, seeds=kept
    )
    assert (amx.precision, amx.jit_compile) == ("mixed_bfloat16", True)
    # faster, but no seed/precision check, or one that found the quality lost: float32
    for seeds in (
        {},
        {
            ("cpu-avx512-bf16-amx", "m"): {
                "precision_check": {"mixed_bfloat16": {"quality_kept": False}}
            }
        },
        {("cpu-avx512-bf16-amx", "other"): kept[("cpu-avx512-bf16-amx", "m")]},  # another model's
    ):
        setup = compute.choose(
            0, env={}, model_name="m", key="cpu-avx512-bf16-amx", records=records, seeds=seeds
        )
        assert setup.precision == "float32"
    # bf16 measured faster, but the pair with XLA failed to compile (absent): bf16 without XLA
    records["cpu-avx512-bf16-amx"] = _record(BF16, jit_compile=1.3, mixed_bfloat16=2.1)
    amx = compute.choose(
        0, env={}, model_name="m", key="cpu-avx512-bf16-amx", records=records, seeds=kept
    )
    assert (amx.precision, amx.jit_compile) == ("mixed_bfloat16", False)
    # a record claiming a bf16 gain on a CPU without bf16 instructions is not believed
    records["cpu-avx2"] = _record(AVX2, jit_compile=1.0, mixed_bfloat16=3.0)
    kept[("cpu-avx2", "m")] = kept[("cpu-avx512-bf16-amx", "m")]
    assert (
        compute.choose(
            0, env={}, model_name="m", key="cpu-avx2", records=records, seeds=kept
        ).precision
        == "float32"
    )


def test_a_machine_without_a_record_uses_float32_and_the_closest_records_xla():
    records = {
        "cpu-a-avx2": _record(AVX2, jit_compile=1.4, mixed_bfloat16=3.0),
        "cpu-b-avx512-bf16": _record(BF16, jit_compile=1.0, mixed_bfloat16=3.0),
    }
    new = compute.choose(0, env={}, model_name="m", key="cpu-z-avx2", records=records)
    assert (new.precision, new.jit_compile) == ("float32", True)
    assert "no tuning record" in new.source and "cpu-a-avx2" in new.source
    other = compute.choose(0, env={}, model_name="m", key="cpu-z-avx512-bf16", records=records)
    assert (other.precision, other.jit_compile) == (
        "float32",
        False,
    ) and "cpu-b-avx512-bf16" in other.source
    amx = compute.choose(0, env={}, model_name="m", key="cpu-y-avx512-bf16-amx", records=records)
    assert "cpu-b-avx512-bf16" in amx.source  # the nearest vector units, not the first name
    untuned = compute.choose(0, env={}, model_name="never_tuned", key="cpu-a-avx2", records=records)
    assert (untuned.precision, untuned.jit_compile) == ("float32", "auto")
    assert compute.choose(1, (9, 0), env={}, model_name="m", records=records).jit_compile == "auto"


def test_machine_keys_name_the_cpu_and_its_vector_units():
    assert compute.machine_key("AMD EPYC", {"avx2"}) == "amd-epyc-avx2"
    assert (
        compute.machine_key("AMD EPYC", {"avx2", "avx512f", "avx512_bf16"})
        == "amd-epyc-avx512-bf16"
    )
    assert (
        compute.machine_key(
            "Intel(R) Xeon(R) Platinum 8480+", {"avx512f", "avx512_bf16", "amx_bf16"}
        )
        == "intel-r-xeon-r-platinum-8480-avx512-bf16-amx"
    )


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
        def batch(i):
            return blurred[i % 2 * 8 :][:8], sharp[i % 2 * 8 :][:8]

        return Stream(2 * (last - first), 2, batch), 2

    with setup.scope():
        model = build_model("resunet1", input_shape=(16, 16, 3))
        result = train(
            model,
            stream,
            (blurred[:8], sharp[:8]),
            "bf16",
            TrainConfig(epochs=1, batch_size=8),
            verbose=False,
            setup=setup,
        )
    assert keras.mixed_precision.dtype_policy().name == "float32"
    assert model.compute_dtype == "bfloat16" and model.weights[0].dtype == "float32"
    assert (
        np.isfinite(result.history["loss"]).all() and np.isfinite(result.history["val_loss"]).all()
    )
    state = json.loads((result.run_dir / "state.json").read_text())
    assert state["compute"]["precision"] == "mixed_bfloat16"
    assert state["compute"]["description"] == "mixed_bfloat16, XLA as Keras chooses, CPU"


MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from deblurlab.runtime.compute import ComputeSetup
    from deblurlab.models import build_model
    from deblurlab.training.profiles import TrainConfig
    from deblurlab.training.train import train

    setup = ComputeSetup("cpu", 0, "float32", False, True, devices=("/cpu:0", "/cpu:1"))
    rng = np.random.default_rng(0)
    sharp = rng.random((32, 16, 16, 3), dtype=np.float32)
    blurred = (0.5 * sharp + 0.25).astype(np.float32)
    from deblurlab.data.stream import Stream
    batch = lambda i: (blurred[i % 4 * 8:][:8], sharp[i % 4 * 8:][:8])
    stream = lambda first, last: (Stream(4 * (last - first), 4, batch), 4)
    with setup.scope():
        model = build_model("srndeblur_cifar", input_shape=(16, 16, 3))
        result = train(model, stream, (blurred[:8], sharp[:8]), "mirrored",
                       TrainConfig(epochs=2, batch_size=8), verbose=False, setup=setup)
    print(json.dumps({"replicas": model.distribute_strategy.num_replicas_in_sync,
                      "loss": result.history["loss"].tolist(), "describe": setup.describe()}))
""")


def test_mirrored_strategy_trains_a_multi_scale_model_over_two_devices(tmp_path):
    """Two logical CPUs stand in for two GPUs: the same code path as a multi-GPU machine."""
    proc = subprocess.run(
        [sys.executable, "-c", MIRRORED],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **__import__("os").environ,
            "DEBLURLAB_OUTPUT_DIR": str(tmp_path),
            "KERAS_BACKEND": "tensorflow",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        },
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2 and out["describe"].endswith("MirroredStrategy over 2 devices")
    assert len(out["loss"]) == 2 and all(np.isfinite(out["loss"]))


def test_every_kept_tuning_record_is_named_by_its_machine_and_drives_the_choice():
    """Each record's file name is the key of the CPU it measured, and XLA is on exactly for the
    models whose measured gain reaches XLA_MIN_GAIN."""
    records = compute.tuning_records()
    assert records, f"no tuning record in {compute.TUNING_DIR}"
    for key, record in records.items():
        flags = {flag for flag, present in record["cpu_flags"].items() if present}
        assert compute.machine_key(record["machine"].split(" (")[0].split(",")[0], flags) == key
        for name, r in record["tuning"]["models"].items():
            if "error" in r:
                continue
            gain = r["variants"]["jit_compile"]["train_ratio"]
            setup = compute.choose(0, env={}, model_name=name, key=key, records=records)
            if setup.precision == "float32":
                assert setup.jit_compile == (gain >= compute.XLA_MIN_GAIN), (key, name, gain)


def test_seed_checks_are_kept_per_machine_and_model_beside_the_tuning_records(
    tmp_path, monkeypatch
):
    for name in ("cpu-avx2.json", "cpu-avx2.frame.json", "cpu-avx2.resunet1.seeds.json"):
        (tmp_path / name).write_text(json.dumps({"file": name}))
    monkeypatch.setattr(compute, "TUNING_DIR", tmp_path)
    assert compute.tuning_records() == {"cpu-avx2": {"file": "cpu-avx2.json"}}
    assert compute.seed_records() == {
        ("cpu-avx2", "resunet1"): {"file": "cpu-avx2.resunet1.seeds.json"}
    }
    from deblurlab import seeds

    assert seeds.record_path("caessc_d30_f64", "cpu-avx2") == (
        tmp_path / "cpu-avx2.caessc_d30_f64.seeds.json"
    )


def test_jax_trains_float32_where_bf16_was_only_checked_on_tensorflow():
    records = {
        "k": {
            "cpu_flags": {"amx_bf16": True},
            "tuning": {"summary": {"m": {"mixed_bfloat16": {"train_ratio": 2.0}}}},
        }
    }
    kept = {("k", "m"): {"precision_check": {"mixed_bfloat16": {"quality_kept": True}}}}
    common = dict(env={}, model_name="m", key="k", records=records, seeds=kept)
    assert compute.choose(0, backend="tensorflow", **common).precision == "mixed_bfloat16"
    jax = compute.choose(0, backend="jax", **common)
    assert (jax.precision, jax.jit_compile) == ("float32", True)
    assert "bf16 was checked on TensorFlow" in jax.source
