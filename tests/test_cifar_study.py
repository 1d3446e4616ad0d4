import json

import numpy as np
import pytest

from deblurlab.studies.cifar import results as cr
from deblurlab.studies.cifar import study as cs


def test_summary_table_collects_trained_models_across_chapters(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    prov = {"data": "d", "profile": "smoke", "date": "x", "commit": "c", "machine": "m"}
    metrics = {"mse": 0.01, "psnr": 20.0, "ssim": 0.5}
    payload = {
        "chapter": "resunet",
        "provenance": prov,
        "models": {
            cs.BLURRED_INPUT: {"metrics": metrics},
            "resunet1": {
                "metrics": metrics,
                "epochs": 2,
                "train_seconds": 3.4,
                "params": 10,
                "reference": {"mse": 0.0018, "psnr": 28.49, "ssim": 0.93},
            },
        },
    }
    motion = {  # chapter 05's rows: a registered motion model and a labelled budget row
        "chapter": "srndeblur_reds",
        "provenance": prov,
        "models": {
            name: {"metrics": metrics, "epochs": 1, "train_seconds": 1.0}
            for name in ("srndeblur_reds", "nafnet_small, same steps")
        },
    }
    (tmp_path / "report" / "results").mkdir(parents=True)
    (tmp_path / "report" / "results" / "resunet.json").write_text(json.dumps(payload))
    (tmp_path / "report" / "results" / "srndeblur_reds.json").write_text(json.dumps(motion))
    df = cr.summary_table()
    assert list(df["model"]) == ["resunet1"] * 3
    assert list(df["run"]) == [
        "this run",
        "reference run: not scored by this run",
        "original report",
    ]
    assert df["PSNR"][2] == "28.49" and df["MSE"][0] == "0.01000"
    assert (tmp_path / "report" / "tables" / "cifar_summary.md").exists()


def test_results_table_gives_intervals_and_the_reference_run_between_ours_and_the_report(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    ours = {
        "mse": rng.uniform(0.001, 0.003, 200),
        "psnr": rng.uniform(25, 30, 200),
        "ssim": rng.uniform(0.8, 0.9, 200),
    }
    ref = {k: v * 0.9 for k, v in ours.items()}

    class Study:
        provenance = {"data": "d", "profile": "smoke", "date": "x", "commit": "c", "machine": "m"}

        class splits:
            test = np.zeros((200, 2, 2, 3))

    monkeypatch.setattr(
        cr,
        "reference_records",
        lambda names: {
            n: {
                "epochs": 30,
                "train_seconds": 600.0,
                "stopped": "epoch limit (30)",
                "data": {"n_train": 4069},
                "arithmetic": "float32 on CPU",
                "machine": "here",
                "date": "today",
                "dtype": "int8",
            }
            for n in names
        },
    )
    gpu_record = {
        "epochs": 53,
        "train_seconds": 48.0,
        "stopped": "early stopping: no better validation loss in 7 epochs",
        "data": {"n_train": 4069},
        "arithmetic": "float32 on 1 GPU",
        "backend": "jax",
        "machine": "NVIDIA H200",
        "date": "today",
    }
    monkeypatch.setattr(
        cr,
        "gpu_reference_runs",
        lambda study, names: {"resunet1": (ref, gpu_record)} if "resunet1" in names else {},
    )
    df = cr.results_table(
        Study, {cs.BLURRED_INPUT: ours, "resunet1": ours}, {}, name="t", reference={"resunet1": ref}
    )
    assert list(df["run"]) == [
        "this run",
        "this run",
        "reference run",
        "GPU reference run",
        "original report",
    ]
    assert df["epochs"][3] == 53
    low, high = cr.stats.mean_ci(ours["mse"])
    assert df["MSE"][1] == f"{ours['mse'].mean():.5f} ± {(high - low) / 2:.5f}"
    assert df["epochs"][2] == 30
    csv = (tmp_path / "report" / "tables" / "t.csv").read_text()
    assert "mse low" in csv and f"{low}"[:8] in csv
    note = (tmp_path / "report" / "tables" / "t.md").read_text()
    assert "bootstrap" in note and "[resunet1] reference run: 30 epochs" in note
    assert "today, weights stored with int8 kernels." in note  # the GPU run's float16: unsaid
    assert note.count("int8") == 1
    assert "[resunet1] GPU reference run: 53 epochs (early stopping" in note and "jax" in note


def test_summary_table_without_results_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run the chapter notebooks"):
        cr.summary_table()


def test_hardest_examples_are_strongly_blurred():
    class Study:
        test_sigmas = np.linspace(0, 3, 50)

    picks = cs.hardest_examples(Study, n=5)
    assert len(picks) == 5 and np.all(Study.test_sigmas[picks] >= 1.5)
