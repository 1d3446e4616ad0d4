"""The benchmark runs end to end at a tiny size and writes well-formed JSON (no timing assertions)."""
import json
import math

import keras
import pytest
import tensorflow as tf
from keras import layers

from deblurlab import bench
from deblurlab import report as REPORT
from deblurlab.models import build_model


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_benchmark_writes_json(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    out = tmp_path / "bench.json"
    bench.main(["--quick", "--models", "resunet1", "--out", str(out)])
    report = json.loads(out.read_text())

    assert report["schema"] == bench.SCHEMA and report["device"] in ("cpu", "gpu")
    assert {"machine", "cpu_flags", "settings", "methods", "bound_rules", "peaks", "pipelines"} <= set(report)
    assert report["settings"]["quick"] is True
    for dtype in ("float32", "bfloat16"):
        assert _positive(report["peaks"][dtype]["flops_per_s"])
    assert _positive(report["peaks"]["bandwidth"]["bytes_per_s"])
    assert _positive(report["pipelines"]["cifar_blur_stream"]["batches_per_s"])
    reds = report["pipelines"]["reds_patches"]
    assert "skipped" in reds or "source" in reds

    [row] = report["models"]
    assert "error" not in row, row.get("error")
    assert row["name"] == "resunet1" and row["input_shape"] == [32, 32, 3]
    for key in ("forward_flops_per_image", "train_images_per_s", "infer_images_per_s", "train_flops_per_s",
                "infer_flops_per_s", "train_frac_fp32_peak", "train_frac_bf16_peak", "infer_frac_fp32_peak",
                "peak_rss_mb", "arithmetic_intensity", "pipeline_headroom", "params"):
        assert _positive(row[key]), key
    assert all(_positive(v) for v in row["train_images_per_s_samples"] + row["infer_images_per_s_samples"])
    assert row["flops_method"] and row["bound"] and row["bound_evidence"]
    assert row["train_flops_per_s"] == pytest.approx(3 * row["forward_flops_per_image"] * row["train_images_per_s"])
    assert row["train_ceiling_images_per_s"] == pytest.approx(
        report["peaks"]["float32"]["flops_per_s"] / (3 * row["forward_flops_per_image"]))

    # Training's own XLA choice is what is timed; every target is checked and says how it stands.
    from deblurlab import compute
    assert row["jit_compile"] == (compute.current("resunet1").jit_compile is True)
    kinds = {(c["model"], c["kind"]) for c in report["targets"]}
    assert ("resunet1", "train_frac_fp32_peak") in kinds
    assert all(isinstance(c["met"], bool) and c["text"].startswith(c["model"]) for c in report["targets"])

    # The report's speed table: one row a model, the footnote names the measured peak and the commit.
    markdown = bench.write_speed_table(report)
    assert "| resunet1 | 32×32 |" in markdown and report["commit"] in markdown and "GFLOP/s" in markdown
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
    (tmp_path / "report.md").write_text("{% for section in sections %}{% include section %}\n{% endfor %}")
    text = REPORT.render("")
    assert "Table 1: Training and inference speed" in text and "| resunet1 | 32×32 |" in text
    assert "resunet1: " in text and "of the fp32 peak vs 40%" in text
    assert "tuning pass has not been run" in text


def test_tuning_pairs_each_change_with_the_reference(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    variants = {"reference": {"precision": "float32", "steps_per_execution": 1, "jit": False},
                "steps_per_execution=2": {"precision": "float32", "steps_per_execution": 2, "jit": False},
                "batch x2": {"precision": "float32", "steps_per_execution": 1, "jit": False, "batch_size_factor": 2}}
    result = bench.tune_model("resunet1", [16, 16, 3], 4, variants, rounds=2, window_s=0.05)
    assert result["reference"] == "reference" and set(result["variants"]) == set(variants)
    assert result["variants"]["batch x2"]["batch_size"] == 8
    for v in result["variants"].values():
        assert len(v["train_ratio_samples"]) == 2 and all(_positive(r) for r in v["train_ratio_samples"])
        assert _positive(v["train_images_per_s"]) and _positive(v["infer_images_per_s"])
    assert result["variants"]["reference"]["train_ratio"] == 1.0

    report = {"device": "cpu", "date": "today", "commit": "abc", "machine": "here",
              "settings": {"steps_per_execution": 1, "jit": False},
              "tuning": {"models": {"resunet1": result}, "variants": variants}}
    markdown = bench.write_tuning_table(report)
    assert "| resunet1 | 4 |" in markdown and "steps_per_execution=2 ×" in markdown
    assert "(float32, no XLA, one step per call)" in markdown
    assert (tmp_path / "report" / "tables" / "tuning_cpu.csv").exists()


def test_bad_model_name_names_the_option():
    with pytest.raises(SystemExit, match="--models: unknown model"):
        bench.main(["--quick", "--models", "no-such-model"])


def test_analytic_flops_of_known_layers():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)      # 2*8*8*4*9*3 = 13,824
    x = layers.Conv2D(4, 3, strides=2, padding="same")(x)               # 2*4*4*4*9*4 = 4,608
    x = layers.Conv2DTranspose(2, 3, strides=2, padding="same")(x)      # 2*4*4*4*9*2 = 2,304
    x = layers.BatchNormalization()(x)
    x = layers.Dense(5)(x)                                              # 2*8*8*2*5 = 1,280
    counted = bench.analytic_flops(keras.Model(inputs, x))
    assert counted["flops"] == 13_824 + 4_608 + 2_304 + 1_280
    assert counted["uncounted_layers"] == []
    assert 0 < counted["memory_bound_traffic_share"] < 1


def test_analytic_flops_agree_with_the_tensorflow_profiler():
    """The count for ResUNet1 is within 1% of TensorFlow's graph profiler (which adds BN and biases)."""
    model = build_model("resunet1")
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, 32, 32, 3), tf.float32)).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    profiled = tf.compat.v1.profiler.profile(graph, options=options).total_float_ops
    assert bench.analytic_flops(model)["flops"] == pytest.approx(profiled, rel=0.01)


def test_bound_reads_the_evidence():
    peaks = {"machine_balance_flop_per_byte": 20.0}
    row = {"train_frac_fp32_peak": 0.1, "arithmetic_intensity": 5.0, "infer_train_ratio": 5.0,
           "traffic": {"memory_bound_traffic_share": 0.7, "mean_channels": 16},
           "overhead": {"share": 0.5, "fixed_s": 0.01}}
    label, evidence = bench.bound_of(row, peaks)
    for cause in ("memory", "thin channels", "per-call overhead", "backward-heavy"):
        assert cause in label
    assert "BatchNorm" in evidence
    assert bench.bound_of({**row, "train_frac_fp32_peak": 0.8}, peaks)[0] == "compute"


def test_a_tuning_pass_keeps_the_models_of_earlier_passes(tmp_path):
    path = tmp_path / "bench_cpu_tuning.json"
    path.write_text(json.dumps({"device": "cpu", "tuning": {"models": {"a": {"rounds": 5}, "b": {"error": "x"}}}}))
    assert bench.earlier_tuning(path, "cpu") == {"a": {"rounds": 5}}
    assert bench.earlier_tuning(path, "gpu") == {}
    assert bench.earlier_tuning(tmp_path / "none.json", "cpu") == {}


def test_tuning_variants_start_from_float32_when_precision_is_chosen_per_model():
    variants = bench.tuning_variants("cpu", {"precision": None, "steps_per_execution": 1, "jit": None})
    assert variants["reference"]["precision"] == "float32"
    assert variants["mixed_bfloat16+jit_compile"] == {**variants["reference"], "precision": "mixed_bfloat16",
                                                      "jit": True}
