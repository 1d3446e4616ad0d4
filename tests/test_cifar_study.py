import json

import numpy as np
import pytest

from deblurlab import cifar_study as cs


def test_summary_table_collects_trained_models_across_chapters(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    prov = {"data": "d", "profile": "smoke", "date": "x", "commit": "c", "machine": "m"}
    metrics = {"mse": 0.01, "psnr": 20.0, "ssim": 0.5}
    payload = {"chapter": "resunet", "provenance": prov, "models": {
        cs.BLURRED_INPUT: {"metrics": metrics},
        "resunet1": {"metrics": metrics, "epochs": 2, "train_seconds": 3.4, "params": 10,
                     "reference": {"mse": 0.0018, "psnr": 28.49, "ssim": 0.93}}}}
    (tmp_path / "report" / "results").mkdir(parents=True)
    (tmp_path / "report" / "results" / "resunet.json").write_text(json.dumps(payload))
    df = cs.summary_table()
    assert list(df["model"]) == ["resunet1"] and df["report PSNR"][0] == 28.49
    assert (tmp_path / "report" / "tables" / "cifar_summary.md").exists()


def test_summary_table_without_results_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="run the chapter notebooks"):
        cs.summary_table()


def test_hardest_examples_are_strongly_blurred():
    class Study:
        test_sigmas = np.linspace(0, 3, 50)
    picks = cs.hardest_examples(Study, n=5)
    assert len(picks) == 5 and np.all(Study.test_sigmas[picks] >= 1.5)
