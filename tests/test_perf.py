"""The benchmark package runs end to end at a tiny size and writes well-formed JSON (no timing
assertions); its FLOP count, bound rules, tuning helpers and tables are checked on their own."""

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from deblurlab import report as REPORT
from deblurlab.models import build_model
from deblurlab.perf import bounds, cli, flops, pipelines, plans, records, tables, tuning


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check_quick_record(report, backend):
    assert report["schema"] == records.SCHEMA and report["device"] in ("cpu", "gpu")
    assert report["backend"] == backend and report["keras"] == keras.__version__
    assert {
        "machine",
        "cpu_flags",
        "settings",
        "methods",
        "bound_rules",
        "peaks",
        "pipelines",
    } <= set(report)
    assert report["settings"]["quick"] is True
    for dtype in ("float32", "bfloat16"):
        assert _positive(report["peaks"][dtype]["flops_per_s"])
    assert _positive(report["peaks"]["bandwidth"]["bytes_per_s"])
    assert _positive(report["pipelines"]["cifar_blur_stream"]["batches_per_s"])
    reds = report["pipelines"]["reds_patches"]
    assert "skipped" in reds or "source" in reds

    [row] = report["models"]
    assert "error" not in row, row.get("error")
    assert (
        row["name"] == "resunet1"
        and row["input_shape"] == [32, 32, 3]
        and row["backend"] == backend
    )
    for key in (
        "forward_flops_per_image",
        "train_images_per_s",
        "infer_images_per_s",
        "train_flops_per_s",
        "infer_flops_per_s",
        "train_frac_fp32_peak",
        "train_frac_bf16_peak",
        "infer_frac_fp32_peak",
        "peak_rss_mb",
        "arithmetic_intensity",
        "pipeline_headroom",
        "params",
    ):
        assert _positive(row[key]), key
    assert all(
        _positive(v) for v in row["train_images_per_s_samples"] + row["infer_images_per_s_samples"]
    )
    assert row["flops_method"] == flops.METHOD and row["bound"] and row["bound_evidence"]
    assert row["forward_flops_per_image"] == row["traffic"]["flops"]
    assert row["train_flops_per_s"] == pytest.approx(
        3 * row["forward_flops_per_image"] * row["train_images_per_s"]
    )
    assert row["train_ceiling_images_per_s"] == pytest.approx(
        report["peaks"]["float32"]["flops_per_s"] / (3 * row["forward_flops_per_image"])
    )
    kinds = {(c["model"], c["kind"]) for c in report["targets"]}
    assert ("resunet1", "train_frac_fp32_peak") in kinds
    assert all(
        isinstance(c["met"], bool) and c["text"].startswith(c["model"]) for c in report["targets"]
    )
    return row


def test_quick_benchmark_writes_json(tmp_path, monkeypatch):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the TensorFlow backend's run (test_quick_benchmark_on_jax covers JAX)")
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    out = tmp_path / "bench.json"
    cli.main(["--quick", "--models", "resunet1", "--out", str(out)])
    report = json.loads(out.read_text())
    row = _check_quick_record(report, "tensorflow")
    assert report["tensorflow"]

    # Training's own XLA choice is what is timed.
    from deblurlab.runtime import compute

    assert row["jit_compile"] == (compute.current("resunet1").jit_compile is True)

    # The report's speed table: one row a model; the footnote names the peak and the commit.
    markdown = tables.write_speed_table(report)
    assert (
        "| resunet1 | 32×32 |" in markdown
        and report["commit"] in markdown
        and "GFLOP/s" in markdown
    )
    assert "Keras backend tensorflow" in markdown
    assert (tmp_path / "report" / "tables" / f"speed_{report['device']}.csv").exists()

    # ... and the report's speed chapter renders it, the targets included.
    (tmp_path / "report" / "results").mkdir(parents=True, exist_ok=True)
    # (the chapter leaves --quick records out; this one stands in for a full run)
    full = {**report, "settings": {**report["settings"], "quick": False}}
    (tmp_path / "report" / "results" / "bench_cpu.json").write_text(json.dumps(full))
    sections = tmp_path / "sections"
    sections.mkdir()
    (sections / "35_speed.md").write_text((REPORT.SECTIONS / "35_speed.md").read_text())
    monkeypatch.setattr(REPORT, "SECTIONS", sections)
    monkeypatch.setattr(REPORT, "TEMPLATE", tmp_path / "report.md")
    (tmp_path / "report.md").write_text(
        "{% for section in sections %}{% include section %}\n{% endfor %}"
    )
    tables.speed_tables()
    text = REPORT.render("")
    assert "Table 1: Training and inference speed" in text and "| resunet1 | 32×32 |" in text
    assert "resunet1: " in text and "of the fp32 peak vs 40%" in text


@pytest.mark.jax
def test_quick_benchmark_on_jax(tmp_path, monkeypatch):
    """``KERAS_BACKEND=jax python -m deblurlab.perf --quick --models resunet1`` (pytest -m jax)."""
    if keras.backend.backend() != "jax":
        pytest.skip("needs KERAS_BACKEND=jax (pytest -m jax)")
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    out = tmp_path / "bench.json"
    cli.main(["--quick", "--models", "resunet1", "--out", str(out)])
    report = json.loads(out.read_text())
    row = _check_quick_record(report, "jax")
    assert report["jax"] and "tensorflow" not in report
    assert row["jit_compile"] is True  # JAX always compiles
    assert sys.modules.get("tensorflow") is None  # not imported (or blocked)


def test_tuning_pairs_each_change_with_the_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    variants = {
        "reference": {"precision": "float32", "steps_per_execution": 1, "jit": False},
        "steps_per_execution=2": {"precision": "float32", "steps_per_execution": 2, "jit": False},
        "batch x2": {
            "precision": "float32",
            "steps_per_execution": 1,
            "jit": False,
            "batch_size_factor": 2,
        },
    }
    result = tuning.tune_model("resunet1", [16, 16, 3], 4, variants, rounds=2, window_s=0.05)
    assert result["reference"] == "reference" and set(result["variants"]) == set(variants)
    assert result["backend"] == keras.backend.backend()
    assert result["variants"]["batch x2"]["batch_size"] == 8
    for v in result["variants"].values():
        assert len(v["train_ratio_samples"]) == 2 and all(
            _positive(r) for r in v["train_ratio_samples"]
        )
        assert _positive(v["train_images_per_s"]) and _positive(v["infer_images_per_s"])
    assert result["variants"]["reference"]["train_ratio"] == 1.0

    report = {
        "device": "cpu",
        "date": "today",
        "commit": "abc",
        "machine": "here",
        "settings": {"steps_per_execution": 1, "jit": False},
        "tuning": {"models": {"resunet1": result}, "variants": variants},
    }
    markdown = tables.write_tuning_table(report)
    assert "| resunet1 | 4 |" in markdown and "steps_per_execution=2 ×" in markdown
    assert "(float32, no XLA, one step per call)" in markdown
    assert (tmp_path / "report" / "tables" / "tuning_cpu.csv").exists()


def test_bad_model_name_names_the_option():
    with pytest.raises(SystemExit, match="--models: unknown model"):
        cli.main(["--quick", "--models", "no-such-model"])


def test_analytic_flops_of_known_layers():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 2*8*8*4*9*3 = 13,824
    x = layers.Conv2D(4, 3, strides=2, padding="same")(x)  # 2*4*4*4*9*4 = 4,608
    x = layers.Conv2DTranspose(2, 3, strides=2, padding="same")(x)  # 2*4*4*4*9*2 = 2,304
    x = layers.BatchNormalization()(x)
    x = layers.Dense(5)(x)  # 2*8*8*2*5 = 1,280
    counted = flops.count(keras.Model(inputs, x))
    assert counted["flops"] == 13_824 + 4_608 + 2_304 + 1_280
    assert counted["uncounted_layers"] == []
    assert 0 < counted["memory_bound_traffic_share"] < 1


def test_recurrent_layers_and_their_cells_count_once():
    """A ConvLSTM2D counts its gates at every step, and its cell is not counted a second time."""
    model = keras.Sequential([keras.Input((4, 8, 8, 3)), layers.ConvLSTM2D(4, 3, padding="same")])
    assert flops.flops_per_image(model) == 2 * 4 * (8 * 8) * (4 * 4) * 9 * (3 + 4)
    assert flops.uncounted_layers(model) == []
    lstm = keras.Sequential([keras.Input((5, 3)), layers.LSTM(2)])
    assert flops.flops_per_image(lstm) == 2 * 5 * (3 * 8 + 2 * 8)


def test_composite_layers_count_their_sublayers_per_call(tmp_path):
    """SRNDeblur's ConvLSTMCell (one Conv2D for the gates): counted through its conv, per call,
    and named by the graph's own layer in flops_by_kind."""
    reds = build_model("srndeblur_reds", input_shape=(32, 32, 3))
    counted = flops.count(reds)
    assert counted["uncounted_layers"] == [] and counted["approximated_layers"] == []
    assert "ConvLSTMCell" in counted["flops_by_kind"]
    assert sum(counted["flops_by_kind"].values()) == counted["flops"]


def test_analytic_flops_agree_with_the_tensorflow_profiler():
    """ResUNet1's count is within 1% of TensorFlow's graph profiler (it adds BN and biases)."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the profiler cross-check is TensorFlow's")
    model = build_model("resunet1")
    assert flops.count(model)["flops"] == pytest.approx(
        flops.profiler_flops(model, (32, 32, 3)), rel=0.01
    )


def test_bound_reads_the_evidence():
    peaks = {"machine_balance_flop_per_byte": 20.0}
    row = {
        "train_frac_fp32_peak": 0.1,
        "arithmetic_intensity": 5.0,
        "infer_train_ratio": 5.0,
        "traffic": {"memory_bound_traffic_share": 0.7, "mean_channels": 16},
        "overhead": {"share": 0.5, "fixed_s": 0.01},
    }
    label, evidence = bounds.bound_of(row, peaks)
    for cause in ("memory", "thin channels", "per-call overhead", "backward-heavy"):
        assert cause in label
    assert "BatchNorm" in evidence
    assert bounds.bound_of({**row, "train_frac_fp32_peak": 0.8}, peaks)[0] == "compute"


def test_a_tuning_pass_keeps_the_models_of_earlier_passes(tmp_path):
    path = tmp_path / "bench_cpu_tuning.json"
    path.write_text(
        json.dumps(
            {"device": "cpu", "tuning": {"models": {"a": {"rounds": 5}, "b": {"error": "x"}}}}
        )
    )
    assert records.earlier_tuning(path, "cpu") == {"a": {"rounds": 5}}
    assert records.earlier_tuning(path, "gpu") == {}
    assert records.earlier_tuning(tmp_path / "none.json", "cpu") == {}


def test_tuning_variants_start_from_float32_when_precision_is_chosen_per_model():
    variants = tuning.tuning_variants(
        "cpu", {"precision": None, "steps_per_execution": 1, "jit": None}
    )
    assert variants["reference"]["precision"] == "float32"
    assert variants["mixed_bfloat16+jit_compile"] == {
        **variants["reference"],
        "precision": "mixed_bfloat16",
        "jit": True,
    }


def test_the_kept_tuning_records_still_make_their_table(tmp_path, monkeypatch):
    """Records written by the old ``deblurlab.bench`` (no backend key) are read as TensorFlow's."""
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    kept = tables.tuning_records()
    assert kept and all(r["schema"] == records.SCHEMA for r in kept)
    for record in kept:
        assert not tables.tuning_table(record).empty
        assert "Keras backend tensorflow" in tables.tuning_note(record)


def test_the_pipeline_timer_reads_a_py_dataset_epoch_after_epoch():
    class Three(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epochs = 0

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return np.full((2, 1), 10 * self.epochs + i, np.float32), np.zeros((2, 1), np.float32)

        def on_epoch_end(self):
            self.epochs += 1

    it = pipelines.endless_batches(Three())
    assert [float(next(it)[0][0, 0]) for _ in range(7)] == [0, 1, 2, 10, 11, 12, 20]


def test_plans_follow_the_profiles():
    plan = plans.bench_plan("resunet1", quick=True)
    assert plan["input_shape"] == [32, 32, 3] and plan["batch_size"] <= plans.QUICK_BATCH
    assert cli.select_models("resunet1") == ["resunet1"]


def test_records_and_tables_import_neither_keras_nor_tensorflow():
    code = (
        "import sys; import deblurlab.perf.tables, deblurlab.perf.records, deblurlab.perf.bounds; "
        "bad = [m for m in ('keras', 'tensorflow', 'jax') if sys.modules.get(m)]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_engines_run_puts_keras_and_onnxruntime_side_by_side(tmp_path, monkeypatch, capsys):
    """``--engines`` on a small frame (the real run uses 1280x720): one record with each engine's
    times, the ratio to TensorFlow's and the difference of its restored frame; no timing limits."""
    from deblurlab.deblur import export
    from deblurlab.perf import engines

    monkeypatch.setattr(engines, "FRAME_SIZE", (48, 64))
    out = tmp_path / "engines.json"
    argv = ["--engines", "tensorflow,onnx", "--models", "resunet1", "--repeats", "2"]
    cli.main([*argv, "--threads", "1", "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["kind"] == "engines" and record["frame"]["shape"] == [48, 64, 3]
    (row,) = record["models"]
    assert row["name"] == "resunet1" and "error" not in row, row
    assert row["onnx_check_max_abs_diff"] <= export.TOLERANCE
    for engine in ("tensorflow", "onnx"):
        result = row["engines"][engine]
        assert len(result["seconds"]) == 2 and _positive(result["median_s"]), result
        assert _positive(result["speedup_vs_tensorflow"])
        assert result["max_abs_diff_vs_tensorflow"] <= export.TOLERANCE
    assert row["engines"]["tensorflow"]["speedup_vs_tensorflow"] == 1.0
    assert row["engines"]["onnx"]["imported"] == []  # onnxruntime alone: no Keras, no TensorFlow
    assert "onnxruntime" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="choose among"):
        cli.main(["--engines", "torch"])


def test_the_frame_run_pairs_each_inference_path_with_the_path_before(tmp_path, capsys):
    """``--frame --quick`` (a 96x64 frame; the real run uses 1280x720): one record with each path's
    times, its ratios to the reference's runs next to them, and its difference from them."""
    from deblurlab.perf import frame

    out = tmp_path / "frame.json"
    argv = ["--frame", "--quick", "--variants", "before,default,eager", "--repeats", "2"]
    cli.main([*argv, "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["kind"] == "frame inference" and record["frame"]["shape"] == [64, 96, 3]
    assert set(record["variants"]) == {"before", "default", "eager"}
    assert record["workers"]["main"]["variants"] == ["before", "default", "eager"]
    for label, row in record["variants"].items():
        runs = 4 if label == "before" else 2  # the reference runs next to each of the others
        assert len(row["ratio_to_before"]) == runs and _positive(row["median_s"]), row
        assert row["within_tolerance"] and row["max_abs_diff_vs_before"] <= frame.TOLERANCE
    default = record["variants"]["default"]
    assert len(default["alternating_seconds"]) == len(default["alternating_before_seconds"]) == 2
    assert record["choice"]["default"] == "default"
    assert record["choice"]["fastest_within_tolerance"] in record["variants"]
    assert len(record["fp32_matmul_peak_flops_per_s"]) == 2 and record["forward_flops"] > 0
    assert "new/before" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown variant"):
        frame.eligible_variants("tensorflow", ["warp-drive"])
    assert "xla" not in frame.eligible_variants("jax")  # JAX always compiles with XLA


def test_the_frame_quality_check_pairs_each_policy_with_float32():
    import keras

    from deblurlab.perf import frame_quality as FQ

    rng = np.random.default_rng(0)
    sharp = [rng.random((40, 56, 3), dtype=np.float32) for _ in range(3)]
    frames = [(np.clip(s + 0.05, 0, 1).astype(np.float32), s) for s in sharp]
    outputs, seconds = {}, {}
    for policy in FQ.POLICIES:
        outputs[policy], seconds[policy] = FQ.restore_all(FQ.MODEL, policy, frames)
        assert keras.mixed_precision.dtype_policy().name == "float32"  # restored
        assert outputs[policy][0].shape == (40, 56, 3)
    record = FQ.compare(frames, outputs, seconds)
    assert record["float32"]["minus_float32_db"] == 0.0
    assert record["float32"]["max_abs_output_diff"] == 0.0
    assert record["mixed_bfloat16"]["max_abs_output_diff"] > 0.0  # another arithmetic
    low, high = record["mixed_bfloat16"]["minus_float32_ci"]
    assert low <= record["mixed_bfloat16"]["minus_float32_db"] <= high
    text = FQ.summary({"model": FQ.MODEL, "frames": 3, "group": "g", "policies": record})
    assert "mixed_bfloat16" in text and "s/frame" in text
