"""The GPU script's path, on this CPU: JAX without TensorFlow trains and exports; TensorFlow loads.

``tools/gpu_reference.sh --local --smoke`` runs what the lent GPU machine would run (the layer
check, the reference command, the archive), at the smoke profile and one epoch, with
``KERAS_BACKEND=jax`` and TensorFlow blocked from import, as on the GPU image.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from deblurlab.training import zoo

REPO = Path(__file__).resolve().parents[1]
MODELS = ["resunet1", "srndeblur_reds"]  # one CIFAR-10 model and the motion model

pytest.importorskip("jax")


def run_script(tmp, models: list[str], **settings) -> tuple[Path, str]:
    """``gpu_reference.sh --local --smoke`` for ``models`` with TensorFlow blocked; (out, log)."""
    site = tmp / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import block_tf\nblock_tf.install(force=True)\n")
    env = {
        **os.environ,
        "PY": sys.executable,
        "GPU_MODELS": ",".join(models),
        **settings,
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO / "tests"), str(REPO / "lib")]),
        "DEBLURLAB_OUTPUT_DIR": str(tmp / "output"),
    }
    env.pop("DEBLURLAB_ZOO", None)
    out = tmp / "out"
    proc = subprocess.run(
        ["bash", str(REPO / "tools" / "gpu_reference.sh"), "--local", "--smoke", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    # one process a model side by side, as on the GPU
    return run_script(tmp_path_factory.mktemp("gpu"), MODELS, GPU_PARALLEL="2")


def test_the_script_checks_layers_and_trains_on_jax_without_tensorflow(gpu_run):
    out, log = gpu_run
    assert "all layers match" in log
    assert "jax" in log
    assert "2 process(es) at a time" in log and all(f"== {m}\n" in log for m in MODELS)
    with tarfile.open(out / "gpu_reference.tar.gz") as archive:
        names = set(archive.getnames())
    for model in MODELS:
        assert f"gpu/{model}.json" in names and f"gpu/{model}.weights.h5" in names


def test_tensorflow_loads_what_jax_exported(gpu_run, tmp_path, monkeypatch):
    out, _ = gpu_run
    with tarfile.open(out / "gpu_reference.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "gpu"))
    for model in MODELS:
        record = json.loads((tmp_path / "gpu" / f"{model}.json").read_text())
        assert record["backend"] == "jax" and record["profile"] == "smoke"
        loaded = zoo.load(model)  # sha256 and architecture checked
        rescored = zoo.score_check_slice(loaded)
        assert zoo.within_tolerance(rescored, record["check"]["stored"]), (model, rescored)


def test_the_script_skips_finished_gpu_runs_and_continues_those_in_progress(tmp_path):
    with zoo.located(zoo.gpu_dir()):
        finished = [n for n in zoo.available() if not zoo.in_progress(zoo.read_record(n))]
        going = [n for n in zoo.available() if zoo.in_progress(zoo.read_record(n))]
        shipped = zoo.read_record(going[0]) if going else {}
    if not (finished and going):
        pytest.skip("zoo/gpu has no finished and in-progress run side by side")
    cap = str(shipped["epochs"] + 1)  # one epoch more than shipped
    out, log = run_script(tmp_path, [finished[0], going[0]], GPU_CONTINUE="1", GPU_MAX_EPOCHS=cap)
    assert f"{finished[0]}: in the zoo already" in log
    with tarfile.open(out / "gpu_reference.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    record = json.loads((tmp_path / "gpu" / f"{going[0]}.json").read_text())
    assert record["continued_from"]["epoch"] == shipped["epochs"]
    assert "shipped in-progress weights" in record["continued_from"]["note"]
    assert record["epochs"] == shipped["epochs"] + 1
