"""The one results writer: its encoder, atomic writes, the per-image arrays, the shared
Evaluation."""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deblurlab.core import results as R
from deblurlab.core.paths import results_dir


@dataclass
class Point:
    x: float
    values: np.ndarray


def test_the_encoder_writes_plain_json_and_nan_as_null():
    payload = {
        "f32": np.float32(1.5),
        "i64": np.int64(3),
        "flag": np.bool_(True),
        "nan": float("nan"),
        "inf": np.float64(np.inf),
        "array": np.array([1.0, np.nan]),
        "path": Path("/a/b"),
        "frame": pd.DataFrame({"m": ["x", "y"], "v": [1.0, np.nan]}),
        "na": pd.NA,
        "series": pd.Series({"a": np.int32(2)}),
        "point": Point(np.float64(0.25), np.arange(2)),
        "tuple": (1, "σ"),
        np.int64(7): "numpy key",
    }
    text = R.dumps(payload)
    assert "NaN" not in text and "Infinity" not in text and "σ" in text
    assert json.loads(text) == {
        "f32": 1.5,
        "i64": 3,
        "flag": True,
        "nan": None,
        "inf": None,
        "array": [1.0, None],
        "path": "/a/b",
        "frame": [{"m": "x", "v": 1.0}, {"m": "y", "v": None}],
        "na": None,
        "series": {"a": 2},
        "point": {"x": 0.25, "values": [0, 1]},
        "tuple": [1, "σ"],
        "7": "numpy key",
    }


def test_results_round_trip_and_a_missing_result_is_none(tmp_path):
    assert R.read_results("never_written") is None and R.read_arrays("never_written") is None
    path = R.write_results("chapter_x", {"a": np.float64(0.1), "b": [np.int16(1)]})
    assert path == results_dir() / "chapter_x.json" and R.read_results("chapter_x") == {
        "a": 0.1,
        "b": [1],
    }
    R.write_arrays("chapter_x", {"m|mse": np.arange(3.0), "names": np.array(["f0", "f1", "f2"])})
    arrays = R.read_arrays("chapter_x")
    assert list(arrays["names"]) == ["f0", "f1", "f2"] and arrays["m|mse"].tolist() == [
        0.0,
        1.0,
        2.0,
    ]
    assert not [p for p in results_dir().rglob("*.tmp")]  # no temporary file left behind


def test_a_failed_write_keeps_the_previous_file(monkeypatch):
    R.write_results("kept", {"version": 1})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        R.write_results("kept", {"version": 2})
    monkeypatch.undo()
    assert R.read_results("kept") == {"version": 1}
    assert not [p for p in results_dir().glob(".kept*")]


def test_the_evaluation_reads_as_its_scores_and_flattens_for_the_arrays():
    scores = {
        R.BLURRED_INPUT: {"mse": np.array([0.02, 0.03])},
        "m": {"mse": np.array([0.01, 0.02])},
    }
    evaluation = R.Evaluation(scores, ["a", "b"])
    assert list(evaluation) == [R.BLURRED_INPUT, "m"] and evaluation["m"] is scores["m"]
    assert {**evaluation}.keys() == scores.keys() and evaluation.methods == ["m"]
    flat = evaluation.score_arrays("reference:")
    assert set(flat) == {f"reference:{R.BLURRED_INPUT}|mse", "reference:m|mse"}
    assert (
        R.split_scores({"sigma": np.ones(2), **evaluation.score_arrays()}).keys() == scores.keys()
    )
    evaluation.pop(R.BLURRED_INPUT)
    assert list(evaluation.scores) == ["m"]
