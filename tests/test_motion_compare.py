"""Chapter 05's light network beside SRNDeblur_reds: the time-matched budget, the per-frame timing
from the evaluation's calls, the paired verdicts and the tables (no network trains here)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from deblurlab.core.results import BLURRED_INPUT, Evaluation
from deblurlab.runtime.provenance import provenance
from deblurlab.studies.motion import compare as MC
from deblurlab.studies.motion import compare_results as MCR
from deblurlab.studies.motion import study as MS
from deblurlab.training.train import TrainResult


def result(seconds, name="run") -> TrainResult:
    history = pd.DataFrame({"epoch": np.arange(1, len(seconds) + 1), "seconds": seconds})
    return TrainResult(
        history, len(seconds), len(seconds) - 1, float(sum(seconds)), False, None, Path(name)
    )


def test_steady_epoch_seconds_leaves_out_the_compiling_epoch():
    assert MC.steady_epoch_seconds(result([40.0, 10.0, 12.0, 11.0])) == 11.0
    assert MC.steady_epoch_seconds(result([7.0])) == 7.0
    with pytest.raises(ValueError, match="no epoch"):
        MC.steady_epoch_seconds(result([]))


def test_time_matched_epochs_fit_the_reference_seconds():
    reference = result([60.0] + [20.0] * 9)  # budget: 10 epochs x 20 s = 200 s
    light = result([30.0] + [6.0] * 9)  # 6 s an epoch once compiled
    d = MC.time_matched_epochs(reference, light)
    assert d["budget_s"] == 200.0 and d["light_epoch_s"] == 6.0
    assert d["epochs"] == d["fitting_epochs"] == 33  # floor(200 / 6): never more time than 200 s
    assert d["predicted_s"] == pytest.approx(198.0) and d["speed_ratio"] == pytest.approx(20 / 6)
    capped = MC.time_matched_epochs(reference, light, cap=12)
    assert capped["epochs"] == 12 and capped["fitting_epochs"] == 33
    slower = MC.time_matched_epochs(result([5.0, 5.0]), result([50.0, 50.0]))
    assert slower["epochs"] == 1  # at least one epoch, even when one does not fit


def fake_study(epochs=10, cap=None, steps=8, batch=8):
    plan = SimpleNamespace(epochs=epochs, light_epoch_cap=cap, batch_size=batch)
    return SimpleNamespace(
        plan=plan, steps=steps, test_groups={}, data=SimpleNamespace(label="data")
    )


@pytest.mark.parametrize("light_epoch_s, expected", [(5.0, 40), (20.0, 10)])
def test_train_light_trains_the_time_matched_run(monkeypatch, light_epoch_s, expected):
    calls = []

    def train_model(study, model_name, *, seed=0, epochs=None, run_extra=""):
        calls.append((model_name, epochs, run_extra))
        n = epochs or study.plan.epochs
        seconds = [30.0] + [light_epoch_s] * (n - 1)
        return f"model-{n}", result(seconds, f"run{run_extra}")

    monkeypatch.setattr(MS, "train_model", train_model)
    monkeypatch.setattr(MS, "steps_per_epoch", lambda study: study.steps)
    study = fake_study()
    light = MC.train_light(study, result([50.0] + [20.0] * 9))  # 200 s of SRNDeblur_reds
    assert calls[0] == (MC.LIGHT_MODEL, None, "")  # the same steps first
    if expected == study.plan.epochs:  # the time rule gives the same run: trained once
        assert len(calls) == 1 and light.time_label == light.step_label
        assert light.budgets[light.step_label]["rule"] == "same steps = same seconds"
    else:
        assert calls[1] == (MC.LIGHT_MODEL, expected, f"-e{expected}")
        assert light.time_label == "nafnet_small, same seconds" != light.step_label
        assert light.budgets[light.time_label] == {
            "rule": "same seconds",
            "epochs": expected,
            "steps": expected * 8,
            "patches": expected * 64,
            "train_s": 30.0 + light_epoch_s * (expected - 1),
            "epoch_s": light_epoch_s,
            "run": f"run-e{expected}",
        }
    assert set(light.models) == set(light.results) == set(light.budgets)
    assert light.derivation["epochs"] == expected
    assert any("same seconds: 10 epochs x 20.0 s = 200 s" in line for line in light.describe())


def test_frame_seconds_leaves_out_the_tracing_calls():
    evaluation = Evaluation(
        {},
        call_seconds={"net": [9.0, 1.0, 1.2, 8.0, 7.0, 1.1]},
        sizes=[(720, 1280)] * 3 + [(500, 400), (720, 1280), (720, 1280)],
    )
    timing = MC.frame_seconds(evaluation, "net")
    # calls 0 (first) and 4 (after another size) traced; the 500x400 frame is not the common size
    assert timing == {"size": [720, 1280], "median_s": 1.1, "calls": 3, "includes_tracing": False}
    once = Evaluation({}, call_seconds={"net": [3.0]}, sizes=[(8, 8)])
    assert MC.frame_seconds(once, "net")["includes_tracing"] is True
    with pytest.raises(ValueError, match="did not time"):
        MC.frame_seconds(once, "other")


def paired_setup():
    rng = np.random.default_rng(0)
    base = rng.normal(25.0, 2.0, 12)
    groups = {"clear": np.arange(0, 8), "tie": np.arange(8, 11), "one": np.arange(11, 12)}
    light_psnr = base.copy()
    light_psnr[:8] += 0.5 + rng.normal(0, 0.05, 8)  # better on every frame of "clear"
    light_psnr[8:11] += np.array([0.4, -0.5, 0.1])  # mixed: the interval includes zero

    def scores(psnr):
        return {"mse": 10 ** (-psnr / 10), "psnr": psnr, "ssim": np.full(12, 0.8)}

    evaluation = Evaluation(
        {BLURRED_INPUT: scores(base - 1), MS.MODEL: scores(base), "light": scores(light_psnr)},
        [f"frame{i}" for i in range(12)],
    )
    study = SimpleNamespace(
        test_groups=groups,
        data=SimpleNamespace(label="data"),
        provenance=provenance("test data", "smoke"),
    )
    light = SimpleNamespace(
        models={"light": None},
        budgets={"light": {"rule": "same seconds"}},
        time_label="light",
        model_name="nafnet_small",
    )
    return study, evaluation, light


def test_paired_rows_call_a_difference_only_when_the_interval_excludes_zero():
    study, evaluation, light = paired_setup()
    rows = {r["group"]: r for r in MCR.paired_rows(study, evaluation, light, MS.MODEL)}
    assert rows["clear"]["verdict"] == "better" and rows["clear"]["low"] > 0
    assert rows["clear"]["frames_better"] == 8 and rows["clear"]["psnr_diff"] > 0.4
    assert (
        rows["tie"]["verdict"] == "not told apart" and rows["tie"]["low"] < 0 < rows["tie"]["high"]
    )
    assert rows["one"]["verdict"] == "too few frames for an interval"
    swapped = MCR._verdict(-0.3, -0.1)
    assert swapped == "worse"


def test_verdict_lines_and_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    study, evaluation, light = paired_setup()
    rows = MCR.paired_rows(study, evaluation, light, MS.MODEL)
    cost = {
        "params": 2_000_000,
        "frame_size": [720, 1280],
        "frame_median_s": 3.0,
        "frame_calls": 9,
        "frame_includes_tracing": False,
        "train_steps": 80,
        "train_patches": 640,
        "train_s": 200.0,
        "train_epoch_s": 20.0,
    }
    costs = {MS.MODEL: dict(cost, gflop_per_frame=508.0), "light": dict(cost, gflop_per_frame=57.0)}
    lines = MCR.verdict_lines(rows, costs, light, MS.MODEL)
    assert len(lines) == 4 and "(1 frame)" in lines[2]
    assert lines[-1].startswith(
        "At the same training seconds, which to use on a CPU: nafnet_small:"
    )
    assert "better on 'clear', worse on none" in lines[-1] and "57 against 508 GFLOP" in lines[-1]
    for r in rows:  # worse everywhere it can tell
        r["verdict"] = {"better": "worse"}.get(r["verdict"], r["verdict"])
    assert (
        f": {MS.MODEL}: nafnet_small is worse on 'clear', better on none"
        in MCR.verdict_lines(rows, costs, light)[-1]
    )
    for r in rows:
        r["verdict"] = "worse"
    assert (
        "is worse on every test group, better on none" in MCR.verdict_lines(rows, costs, light)[-1]
    )
    for r in rows:
        r["verdict"] = "not told apart"
    assert "no finding: every interval includes zero" in MCR.verdict_lines(rows, costs, light)[-1]

    paired = MCR.paired_table(study, rows, MS.MODEL, name="paired_test")
    assert list(paired["data"]) == ["clear", "tie", "one"]
    assert paired["PSNR difference (dB)"].iloc[2].endswith("[–]")
    table = MCR.cost_table(study, costs, name="cost_test")
    assert list(table["GFLOP/frame"]) == ["508.0", "57.0"] and table["frame"].iloc[0] == "1280x720"
    for name in ("paired_test", "cost_test"):
        assert (tmp_path / f"report/tables/{name}.md").exists()
        assert (tmp_path / f"report/tables/{name}.csv").exists()


def test_gflops_per_frame_counts_the_padded_frame():
    from deblurlab.models import build_model
    from deblurlab.perf.flops import count

    model = build_model(MC.LIGHT_MODEL, input_shape=(32, 32, 3))
    net = build_model(MC.LIGHT_MODEL, input_shape=(None, None, 3))
    # 20 x 40 runs padded to 32 x 48 (multiples of 16)
    assert MC.gflops_per_frame(model, (20, 40)) == count(net, (32, 48, 3))["flops"] / 1e9


def test_reference_models_label_shipped_weights(monkeypatch):
    from deblurlab.training import zoo

    monkeypatch.setattr(zoo, "available", lambda: ["nafnet_small", "resunet1"])
    monkeypatch.setattr(zoo, "load", lambda name: f"loaded {name}")
    shipped = MS.reference_models([MS.MODEL, MC.LIGHT_MODEL])
    assert shipped == {"nafnet_small (reference run)": "loaded nafnet_small"}
