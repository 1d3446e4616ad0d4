"""The motion-blur chapter's workflow: full-resolution inference (pad, crop back, tiles), a tiny
end-to-end run on a GoPro-layout tree, and the results table's dataset flags."""

import dataclasses
import json

import keras
import numpy as np
import pytest
from keras import layers
from test_motion_data import make_gopro

from deblurlab import models
from deblurlab.core.results import Evaluation, read_arrays
from deblurlab.models import build_model
from deblurlab.studies.motion import compare as MC
from deblurlab.studies.motion import results as MR
from deblurlab.studies.motion import study as MS
from deblurlab.studies.motion.figures import detail_box
from deblurlab.training import inference as I
from deblurlab.training.profiles import MotionPlan


def test_pad_to_multiple_and_back():
    image = np.random.default_rng(0).random((37, 50, 3)).astype(np.float32)
    padded, size = I.pad_to_multiple(image, 8)
    assert padded.shape == (40, 56, 3) and size == (37, 50)
    np.testing.assert_array_equal(padded[:37, :50], image)
    assert I.pad_to_multiple(image[:32, :48], 8)[0].shape == (32, 48, 3)


@pytest.mark.parametrize("shape", [(37, 50), (45, 61)])
def test_full_resolution_output_has_input_size(shape):
    model = build_model("srndeblur_reds", input_shape=(None, None, 3))
    assert I.network_multiple(model) == 8
    blurred = np.random.default_rng(1).random((*shape, 3)).astype(np.float32)
    restored = I.deblur_frame(model, blurred)
    assert restored.shape == (*shape, 3) and 0.0 <= restored.min() and restored.max() <= 1.0


def test_tiled_inference_matches_whole_frame():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(
        inputs, layers.Conv2D(3, 1, activation="sigmoid")(inputs)
    )  # pointwise: tiles are exact
    image = np.random.default_rng(2).random((70, 90, 3)).astype(np.float32)
    whole = I.deblur_frame(model, image, multiple=8)
    tiled = I.deblur_frame(model, image, multiple=8, tile=32, overlap=8)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 8"):
        I.deblur_frame(model, image, multiple=8, tile=30)


def test_exponential_decay_endpoints():
    schedule = MS.exponential_decay(1e-4, 1e-6, 150)
    assert schedule(0) == pytest.approx(1e-4) and schedule(149) == pytest.approx(1e-6)
    assert schedule(75) == pytest.approx(1e-5, rel=0.05)


def test_detail_box_finds_the_blurred_region():
    sharp = np.zeros((60, 80, 3), np.float32)
    blurred = sharp.copy()
    blurred[40:55, 60:75] = 1.0
    top, left, h, w = detail_box(blurred, sharp, 16)
    assert (h, w) == (16, 16) and 39 <= top <= 40 and 59 <= left <= 60


def test_identity_init_reproduces_the_input():
    model = MS.identity_init(build_model("srndeblur_reds", input_shape=(16, 24, 3)))
    image = np.random.default_rng(3).random((2, 16, 24, 3)).astype(np.float32)
    coarse, fine = (np.asarray(t) for t in model(image))
    np.testing.assert_allclose(fine, image, atol=1e-5)
    np.testing.assert_allclose(
        coarse, image.reshape(2, 8, 2, 12, 2, 3).mean(axis=(2, 4)), atol=1e-5
    )
    with pytest.raises(ValueError, match="no layer"):
        MS.identity_init(keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(3, 1)]))


def tiny_two_scale(input_shape=(None, None, 3), **_):
    """A stand-in with SRNDeblur's interface ([coarse, fine], any size, stride 8) that traces in
    a second, so the workflow test does not pay for the real network's graph."""
    inputs = keras.Input(input_shape)
    coarse = layers.Conv2D(3, 3, padding="same", name="coarse")(layers.AveragePooling2D(2)(inputs))
    model = keras.Model(inputs, [coarse, layers.Conv2D(3, 3, padding="same", name="fine")(inputs)])
    model.required_multiple = 8
    return model


def test_tiny_end_to_end_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    tiny = lambda name, input_shape, **kw: tiny_two_scale(input_shape)  # noqa: E731
    monkeypatch.setattr(MS, "build_model", tiny)
    monkeypatch.setattr(models, "build_model", tiny)  # full_resolution_model's rebuild
    root = make_gopro(tmp_path / "data", frames=20, size=(61, 45))  # neither side a multiple of 8
    plan = dataclasses.replace(
        MotionPlan.for_profile("smoke"),
        patch_size=16,
        batch_size=2,
        images_per_epoch=2,
        n_val=2,
        n_eval=2,
        eval_crop=None,
    )
    study = MS.prepare_study(data_dir=root, plan=plan)
    assert study.val[0].shape == study.val[1].shape == (2, 16, 16, 3)  # fixed validation patches
    assert len(study.test_indices) == 2  # 2 of the 10 test frames
    assert MS.run_name(study, lr_decay=True, recipe="report").endswith("-lrdecay-smoke")
    assert MS.run_name(study).endswith("-mse-cosine-flips-smoke") and "gopro-sample" in MS.run_name(
        study
    )
    with pytest.raises(ValueError, match="constant-rate recipe"):
        MS.train_model(study, lr_decay=True, init="default")
    model, result = MS.train_model(study, init="default")
    assert result.epochs_run == 1 and np.isfinite(result.history["loss"]).all()
    evaluation = MS.evaluate(study, {MS.MODEL: model}, verbose=False)
    assert evaluation.hardest[MS.MODEL].shape == (45, 61, 3)
    assert set(evaluation.scores) == {MS.BLURRED_INPUT, MS.MODEL}
    assert evaluation.sizes == [(45, 61)] * 2 and len(evaluation.call_seconds[MS.MODEL]) == 2
    costs = MC.measure_costs(study, evaluation, {MS.MODEL: model}, {MS.MODEL: result}, [MS.MODEL])
    cost = costs[MS.MODEL]
    assert cost["frame_size"] == [45, 61] and cost["frame_calls"] == 1  # the first call traced
    assert cost["frame_median_s"] == evaluation.call_seconds[MS.MODEL][1]
    # two 3x3 convolutions, 3 -> 3 channels, on the frame padded to 48x64 and on its half
    assert cost["gflop_per_frame"] == pytest.approx(2 * 27 * 3 * (48 * 64 + 24 * 32) / 1e9)
    assert cost["train_steps"] == 2 and cost["train_patches"] == 4
    assert cost["params"] == model.count_params() and cost["train_s"] == result.train_seconds
    shipped = MR.results_table(
        study,
        Evaluation(
            {**evaluation.scores, "net (reference run)": evaluation[MS.MODEL]}, evaluation.names
        ),
        {},
    )
    row = shipped[shipped["model"] == "net (reference run)"].iloc[0]  # no "(ours)"
    assert row["comparable"] == "shipped weights, these frames"
    table = MR.results_table(
        study, evaluation, {MS.MODEL: result}, {MS.MODEL: model}, name="motion_test"
    )
    assert list(table["comparable"][-2:]) == ["not comparable: different data"] * 2
    assert table["data"].iloc[0] == "GoPro GOPR0001_00_00, later frames"
    assert table["PSNR gain"].iloc[1].startswith(("+", "-"))
    lines = MR.gain_lines(study, evaluation)
    assert lines[0] == "GoPro GOPR0001_00_00, later frames"
    assert lines[1].startswith(f"  {MS.MODEL} ") and "the blurred input: PSNR" in lines[1]
    assert (tmp_path / "out/report/tables/motion_test.md").exists()
    payload = MR.save_results(
        "motion_test", study, evaluation, {MS.MODEL: result}, {MS.MODEL: model}
    )
    saved = json.loads((tmp_path / "out/report/results/motion_test.json").read_text())
    assert saved["data_kind"] == "gopro-sample" and saved["n_eval"] == 2
    assert saved["models"][MS.MODEL]["params"] == payload["models"][MS.MODEL]["params"] > 0
    assert "frames improved" in saved["models"][MS.MODEL]["gains"]
    arrays = read_arrays("motion_test")
    assert list(arrays["names"]) == evaluation.names
    np.testing.assert_array_equal(arrays[f"{MS.MODEL}|psnr"], evaluation[MS.MODEL]["psnr"])
    images, metrics = MS.lowres_comparison(evaluation, model, MS.MODEL, factor=2)
    assert images[MS.MODEL].shape == images["sharp"].shape == (22, 30, 3)
    assert set(metrics) == {MS.BLURRED_INPUT, MS.MODEL}
    assert MS.training_patches_per_s(study, result) > 0


def test_reference_rows_flag_other_data():
    class Data:
        kind = "reds"

    report, published = MR.references()
    assert report["psnr"] == 27.23 and published["psnr"] == 30.26
    assert MR._comparable(report, Data()) != "not comparable: different data"
    assert MR._comparable(published, Data()) == "not comparable: different data"


def test_the_restored_frame_figure_titles_each_panel_with_its_psnr():
    from deblurlab.studies.motion import figures as mf

    rng = np.random.default_rng(0)
    sharp = rng.random((40, 60, 3)).astype(np.float32)
    images = {MS.BLURRED_INPUT: sharp * 0.9, "net": sharp * 0.95, "sharp": sharp}
    fig = mf.plot_restored_frame(images, ["net", "not evaluated"], box_size=16)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("blurred input (") and titles[1].startswith("net (")
    assert titles[-1] == "sharp" and len(titles) == 3  # names it does not hold are left out


def test_a_gain_without_an_interval_says_so():
    from deblurlab.studies.motion.results import _gain_cell

    one_frame = {"PSNR gain dB": 0.26, "PSNR gain interval": (float("nan"), float("nan"))}
    assert _gain_cell(one_frame) == "+0.26 (no interval)"
    assert _gain_cell({**one_frame, "PSNR gain interval": (0.1, 0.4)}) == "+0.26 [+0.10, +0.40]"
