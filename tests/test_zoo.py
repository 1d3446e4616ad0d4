"""The zoo of shipped reference weights and the reference command that makes it."""

import json

import numpy as np
import pytest

from deblurlab import reference
from deblurlab.core.paths import REPO_ROOT
from deblurlab.data.cifar import CifarData, split_cifar10
from deblurlab.models import build_model
from deblurlab.training import zoo
from deblurlab.training.profiles import CIFAR_SIZES, PROFILES, CifarPlan


@pytest.mark.parametrize("name", zoo.available())
def test_every_shipped_model_loads_and_rescores_its_check_slice_as_recorded(name):
    """Guards the shipped weights through every refactor: sha256, architecture and the scores."""
    record = zoo.read_record(name)
    model = zoo.load(name)
    assert model.count_params() == record["params"]
    scores = zoo.score_check_slice(model)
    assert zoo.within_tolerance(scores, record["check"]["stored"]), (
        scores,
        record["check"]["stored"],
    )
    assert record["stopped"] and record["epochs"] >= 1 and record["test_scores"]["n"] > 0


with zoo.located(zoo.gpu_dir()):
    GPU_RUNS = zoo.available()


@pytest.mark.parametrize("name", GPU_RUNS)
def test_every_gpu_reference_run_loads_here_and_rescores_as_recorded(name):
    """The GPU runs (JAX on an NVIDIA GPU) give the scores they recorded on this machine's
    backend too."""
    with zoo.located(zoo.gpu_dir()):
        record = zoo.read_record(name)
        scores = zoo.score_check_slice(zoo.load(name))
    assert zoo.within_tolerance(scores, record["check"]["stored"]), (scores, record["check"])
    assert "GPU" in record["machine"] and record["stopped"]


def test_the_zoo_is_small_enough_to_ship():
    total = sum(p.stat().st_size for p in zoo.zoo_dir().glob("*") if p.is_file())
    assert total < 30e6, f"zoo/ holds {total / 1e6:.1f} MB"


def _unique_images(n: int) -> CifarData:
    """Images whose first pixels spell their index, so every split's members can be identified."""
    x = np.zeros((n, 32, 32, 3), np.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = np.arange(n) // 256, np.arange(n) % 256
    return CifarData(
        x, np.zeros(n, np.int64), None, None, [str(i) for i in range(10)], "subset", "synthetic"
    )


def _ids(images: np.ndarray) -> set:
    pixels = np.round(images[:, 0, 0, :2] * 255).astype(int)
    return set(pixels[:, 0] * 256 + pixels[:, 1])


@pytest.mark.parametrize("n_images", [1000, 5085])
def test_the_reference_profile_never_trains_or_validates_on_any_profiles_test_images(n_images):
    data = _unique_images(n_images)
    full = CifarPlan.for_profile("full")
    splits = split_cifar10(data, full.n_train, full.n_val, full.n_test, min_test=full.min_test)
    seen = _ids(splits.train) | _ids(splits.val)
    for profile in PROFILES:
        sizes = CIFAR_SIZES[profile]
        plan = CifarPlan.for_profile(profile)
        test = split_cifar10(
            data, sizes["n_train"], sizes["n_val"], sizes["n_test"], min_test=plan.min_test
        ).test
        assert not seen & _ids(test), profile


def test_a_missing_damaged_or_mismatched_weights_file_names_the_file_and_the_fix(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path))
    with pytest.raises(
        zoo.ZooError, match=r"resunet1\.json is missing.*deblurlab\.reference --models resunet1"
    ):
        zoo.load("resunet1")
    model = build_model("resunet1")
    zoo.write_weights(model, zoo.weights_path("resunet1"))
    zoo.write_record(
        "resunet1", {"sha256": zoo.sha256(zoo.weights_path("resunet1")), "input_shape": [32, 32, 3]}
    )
    loaded = zoo.load("resunet1")
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4
        )  # float16 storage

    data = bytearray(zoo.weights_path("resunet1").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one damaged byte
    zoo.weights_path("resunet1").write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match=r"resunet1\.weights\.h5 does not match the sha256"):
        zoo.load("resunet1")

    zoo.write_weights(
        build_model("resunet3"), zoo.weights_path("resunet1")
    )  # another architecture's weights
    zoo.write_record("resunet1", {"sha256": zoo.sha256(zoo.weights_path("resunet1"))})
    with pytest.raises(zoo.ZooError, match="architecture changed"):
        zoo.load("resunet1")
    zoo.weights_path("resunet1").unlink()
    with pytest.raises(zoo.ZooError, match="weights.h5 is missing"):
        zoo.load("resunet1")


def test_int8_storage_keeps_each_kernel_within_half_a_step_of_its_channel_scale(tmp_path):
    model = build_model("resunet1")
    zoo.write_weights(model, tmp_path / "w8.h5", "int8")
    zoo.write_weights(model, tmp_path / "w16.h5", "float16")
    for weight, value in zip(model.weights, zoo.read_weights(tmp_path / "w8.h5")):
        exact = np.asarray(weight, np.float32)
        if exact.ndim >= 2 and exact.size >= zoo.INT8_MIN_SIZE:  # int8, a scale a last-axis index
            step = np.abs(exact).reshape(-1, exact.shape[-1]).max(axis=0) / 127
            assert np.all(np.abs(value - exact) <= step / 2 + 1e-7)
        else:  # small kernels, biases and normalisation: float16
            np.testing.assert_allclose(value, exact, rtol=1e-3, atol=1e-4)
    assert (tmp_path / "w8.h5").stat().st_size < 0.7 * (tmp_path / "w16.h5").stat().st_size


def test_storage_is_the_first_that_fits_the_size_limit_and_keeps_the_scores(tmp_path, monkeypatch):
    model = build_model("resunet1")

    def choose():
        dtype, checks = zoo.choose_storage(
            model, lambda: build_model("resunet1"), tmp_path / "w.h5"
        )
        copy = build_model("resunet1")
        zoo.assign_weights(copy, zoo.read_weights(tmp_path / "w.h5"), tmp_path / "w.h5")
        rescored = zoo.score_check_slice(copy)  # the stored scores are those of the file written
        assert all(np.isclose(rescored[k], checks["stored"][k], rtol=1e-4) for k in rescored)
        return dtype, checks

    dtype, checks = choose()
    assert dtype == "float16" and set(checks) == {"float32", "float16", "stored"}
    monkeypatch.setattr(zoo, "MAX_BYTES", (tmp_path / "w.h5").stat().st_size - 1)
    assert choose()[0] == "int8"  # float16 no longer fits
    assert (tmp_path / "w.h5").stat().st_size <= zoo.MAX_BYTES
    monkeypatch.setattr(zoo, "TOLERANCE", {"mse": -1.0, "psnr": -1.0, "ssim": -1.0})
    assert choose()[0] == "float32"  # nothing keeps the scores: full precision


def test_no_tracked_file_is_over_the_size_limit():
    import subprocess

    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    large = [
        f"{p} ({(REPO_ROOT / p).stat().st_size / 1e6:.1f} MB)"
        for p in tracked
        if p and (REPO_ROOT / p).is_file() and (REPO_ROOT / p).stat().st_size > zoo.MAX_BYTES
    ]
    assert not large, f"tracked files over {zoo.MAX_BYTES / 1e6:g} MB: {large}"


def test_export_writes_weights_and_a_record_that_load_and_the_check_reproduce(
    tmp_path, monkeypatch
):
    from deblurlab.runtime import compute
    from deblurlab.studies.cifar.study import prepare_study, train_model

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "zoo"))
    study = prepare_study("smoke")
    model, result = train_model(study, "resunet1")
    config = study.plan.train_config("resunet1")
    record = reference.export(
        "resunet1", model, result, study, config, compute.current("resunet1"), "epoch limit (1)"
    )
    assert zoo.available() == ["resunet1"]
    saved = json.loads(zoo.record_path("resunet1").read_text())
    assert saved["sha256"] == zoo.sha256(zoo.weights_path("resunet1")) == record["sha256"]
    assert saved["data"]["n_test"] == len(study.splits.test) and saved["history"]
    assert (
        saved["dtype"] in ("float16", "int8", "float32")
        and saved["arithmetic"]
        and saved["machine"]
    )
    assert zoo.within_tolerance(
        zoo.score_check_slice(zoo.load("resunet1")), saved["check"]["stored"]
    )
    assert zoo.status(["resunet1", "resunet3"]) == {"resunet1": "finished", "resunet3": "not run"}
    assert zoo.continuation("resunet1") is None  # stopped at its epoch limit: not in progress
    capped = zoo.continuation("resunet1", capped=True)  # --retrain continues it
    assert "weights stopped at their epoch limit" in capped.note
    assert capped.arithmetic == saved["arithmetic"] and len(capped.history) == 1
    rows = reference.progress_rows(["resunet1", "resunet3"], "smoke")
    assert rows[0]["zoo/"] == "1 epoch, epoch limit (1)" and rows[1]["zoo/"] == "–"
    assert rows[0]["checkpoint in runs/"].startswith("epoch 1, best val_loss ")


def test_stopping_reasons_and_epoch_caps():
    class Result:
        def __init__(self, epochs_run, stopped_early):
            self.epochs_run, self.stopped_early = epochs_run, stopped_early

    assert reference.stopping_reason(Result(12, True), 70, 7).startswith("early stopping")
    assert reference.stopping_reason(Result(40, False), 40, 7) == "epoch limit (40)"
    assert (
        reference.stopping_reason(Result(5, False), 40, 7) is None
    )  # stopped by the time limit: unfinished

    import argparse

    parser = argparse.ArgumentParser()
    assert reference.parse_caps("12", ["a", "b"], parser) == {"a": 12, "b": 12}
    assert reference.parse_caps("a=40,b=3", ["a", "b"], parser) == {"a": 40, "b": 3}
    with pytest.raises(SystemExit):
        reference.parse_caps("c=4", ["a", "b"], parser)


def test_weights_zoo_loads_shipped_models_and_trains_the_others(tmp_path, monkeypatch, capsys):
    from deblurlab.studies.cifar import study as cs

    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "zoo"))
    zoo.zoo_dir().mkdir()
    model = build_model("resunet1")
    zoo.write_weights(model, zoo.weights_path("resunet1"))
    record = {
        "model": "resunet1",
        "sha256": zoo.sha256(zoo.weights_path("resunet1")),
        "epochs": 3,
        "best_epoch": 2,
        "train_seconds": 60.0,
        "stopped": "epoch limit (3)",
        "machine": "here",
        "history": [{"epoch": 1, "loss": 0.1, "seconds": 20.0}],
    }
    zoo.write_record("resunet1", record)
    study = cs.prepare_study("smoke")
    shipped, result = cs.train_model(study, "resunet1", weights="zoo")
    assert (
        result.epochs_run == 3 and not (tmp_path / "out" / "runs" / "cifar-resunet1-smoke").exists()
    )
    _, trained = cs.train_model(study, "eddensenet", weights="zoo")
    assert trained.epochs_run == 1 and "no shipped reference weights" in capsys.readouterr().out
    with pytest.raises(ValueError, match="weights='best'"):
        cs.train_model(study, "resunet1", weights="best")
    # weights shipped while their run goes on load too, under their own status
    zoo.write_record("resunet1", {**record, "stopped": "in progress: time limit after 3 of 70"})
    assert zoo.status(["resunet1", "eddensenet"]) == {
        "resunet1": "shipped in progress",
        "eddensenet": "not run",  # its smoke run above is no reference checkpoint
    }
    assert list(cs.reference_models(["resunet1", "eddensenet"])) == ["resunet1"]


def test_the_docs_list_every_shipped_run_as_its_record_says():
    """docs/reference-runs.md's tables and the README's are the records' (tools/zoo_tables.py
    --write): every run, the GPU's too, with its epochs, time, arithmetic and machine."""
    import runpy

    tool = runpy.run_path(str(REPO_ROOT / "tools" / "zoo_tables.py"))
    doc, readme = (page.read_text() for page in tool["PAGES"])
    assert doc.count("<!-- zoo-table:") == 2 and readme.count("<!-- zoo-table:summary -->") == 1
    for text in (doc, readme):
        assert tool["render"](text) == text, "run: python tools/zoo_tables.py --write"
    with zoo.located(zoo.ZOO_DIR):
        assert all(f"| {name} |" in doc and f"| {name} |" in readme for name in zoo.available())
    with zoo.located(zoo.ZOO_DIR / zoo.GPU_SUBDIR):
        assert all(f"| {name} (GPU) |" in readme for name in zoo.available())
    assert {"epochs", "minutes", "arithmetic", "machine"} <= set(tool["summary_rows"]()[0])
