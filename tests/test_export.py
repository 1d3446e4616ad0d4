"""ONNX export and the ONNX Runtime engine: every shipped model exported once (zoo/, and the models
only zoo/gpu/ ships), its outputs against Keras' on real images within ``export.TOLERANCE``, other
sizes and tiles through the same inference code, and ``deblur --engine onnx`` in a process where
TensorFlow, Keras and JAX cannot be imported."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deblurlab
from deblurlab.deblur import cli as deblur
from deblurlab.deblur import export
from deblurlab.deblur import networks as deblur_models
from deblurlab.training import inference, onnx_engine, zoo

TESTS = Path(__file__).resolve().parent
LIB = Path(deblurlab.__file__).resolve().parent.parent


def _shipped(folder: Path) -> list[str]:
    return sorted(
        p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.weights.h5").exists()
    )


# Every model shipped in zoo/, then those that only zoo/gpu/ ships (the CAESSC variants): the zoo
# folder each is exported from.
SHIPPED = {name: zoo.ZOO_DIR for name in _shipped(zoo.ZOO_DIR)}
SHIPPED.update({n: zoo.ZOO_DIR / "gpu" for n in _shipped(zoo.ZOO_DIR / "gpu") if n not in SHIPPED})


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{name: record} of every shipped model exported once into one folder."""
    out = tmp_path_factory.mktemp("onnx")
    records = {}
    with pytest.MonkeyPatch.context() as patch:
        for name, folder in SHIPPED.items():
            patch.setenv(zoo.ZOO_ENV, str(folder))
            records[name] = export.export_model(name, out)
    return out, records


def _keras_model(name):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(zoo.ZOO_ENV, str(SHIPPED[name]))
        return deblur_models.load_model(name)


def _real_image(shape=(77, 109)) -> np.ndarray:
    """A crop of odd size of the real motion-blurred frame beside the checkout, else the blurred
    CIFAR-10 check images side by side."""
    frame = export.real_frame()
    if frame is not None:
        image = frame[1]
    else:
        from deblurlab.data.blur import blur_in_batches

        sharp, sigmas = zoo.check_images()
        tiles = blur_in_batches(sharp[:12], sigmas[:12]).reshape(3, 4, 32, 32, 3)
        image = tiles.transpose(0, 2, 1, 3, 4).reshape(96, 128, 3)
    return inference.centre_crop(image, shape).astype(np.float32)


def test_the_shipped_models_are_the_zoos_and_the_gpu_zoos():
    assert {"resunet1", "resunet3", "srndeblur_cifar", "srndeblur_cifar_lstm"} <= set(SHIPPED)
    assert set(zoo.available()) <= set(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_exports_and_matches_keras_on_real_images(exported, name):
    out, records = exported
    record = records[name]
    path = out / f"{name}.onnx"
    assert json.loads((out / f"{name}.json").read_text()) == record
    assert record["sha256"] == zoo.sha256(path) and record["format"] == onnx_engine.RECORD_FORMAT
    check = record["check"]
    assert check["max_abs_diff"] <= export.TOLERANCE
    assert check["mean_abs_diff"] <= export.MEAN_TOLERANCE
    described = " ".join(s["images"] for s in check["sets"])
    assert "CIFAR-10 check images" in described
    if export.real_frame() is not None:
        assert "blur/" in described or "train_blur" in described  # a real motion-blurred frame
    assert (
        record["weights"]["sha256"]
        == json.loads((SHIPPED[name] / f"{name}.json").read_text())["sha256"]
    )
    model = onnx_engine.load(name, path)
    # Any size, except the model whose Dense layers around the LSTM fix its training size.
    fixed = (32, 32) if name == "srndeblur_cifar_lstm" else (None, None)
    assert model.inputs[0].shape[1:3] == fixed
    assert record["input"]["shape"][:3] == [
        "batch",
        *(d or n for d, n in zip(fixed, ("height", "width"))),
    ]
    assert record["opset"] >= 13 and record["exporter"]
    if "fallback_reason" in record:
        assert (
            record["exporter"].startswith("tf2onnx")
            and "Keras' exporter failed" in record["fallback_reason"]
        )


@pytest.mark.parametrize(
    "name, tile",
    [("resunet1", 0), ("resunet1", 48), ("srndeblur_cifar", 0), ("srndeblur_cifar_lstm", None)],
)
def test_onnx_and_keras_agree_through_deblur_image_at_other_sizes_and_in_tiles(
    exported, name, tile
):
    """An odd size (padded) whole and in tiles: the dynamic height and width beyond the export's
    sizes (srndeblur_cifar's bilinear resize at a size it was not traced at); the fixed-size
    model in batches of its 32x32 tiles."""
    out, _ = exported
    image = _real_image()
    keras_model, onnx_model = _keras_model(name), onnx_engine.load(name, out / f"{name}.onnx")
    ours = inference.deblur_image(onnx_model, image, tile=tile, overlap=8)
    theirs = inference.deblur_image(keras_model, image, tile=tile, overlap=8)
    assert ours.shape == image.shape
    assert np.abs(ours - theirs).max() <= export.TOLERANCE


def test_the_check_catches_a_wrong_graph(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    out, _ = exported
    model = onnx.load(str(out / "resunet1.onnx"))
    weights = max(
        model.graph.initializer, key=lambda t: np.prod(t.dims)
    )  # the largest: a transposed convolution's kernel
    array = numpy_helper.to_array(weights)
    weights.CopyFrom(numpy_helper.from_array((array * 1.05).astype(array.dtype), weights.name))
    onnx.save(model, str(tmp_path / "resunet1.onnx"))
    keras_net = export.inference_network(_keras_model("resunet1"))
    sets = export.check_sets((None, None))
    wrong = export.compare(keras_net, onnx_engine.load(path=tmp_path / "resunet1.onnx"), sets)
    assert max(c["max_abs_diff"] for c in wrong) > 10 * export.TOLERANCE


def test_deblur_engine_onnx_runs_without_tensorflow_keras_or_jax(exported, tmp_path):
    out, _ = exported
    image = _real_image((90, 140))
    source = tmp_path / "frame.png"
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(source)
    code = f"""
        import sys, block_tf
        block_tf.block("tensorflow", "keras", "jax")
        from deblurlab.deblur import cli as deblur
        status = deblur.main([{str(source)!r}, "--model", "resunet1", "--engine", "onnx",
                              "--out", {str(tmp_path / "out")!r}])
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax"))
        print("RESULT", status, heavy)
    """
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(LIB)]),
        onnx_engine.ONNX_DIR_ENV: str(out),
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT 0 []" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    assert "through onnxruntime" in proc.stdout and "resunet1.onnx" in proc.stdout
    written = np.asarray(Image.open(tmp_path / "out" / "frame.png"), np.int16)
    keras_out = deblur.deblur_image(_keras_model("resunet1"), deblur.read_image(source))
    expected = np.round(keras_out * 255).astype(np.int16)
    assert written.shape == expected.shape and np.abs(written - expected).max() <= 1


def test_missing_files_a_changed_file_and_a_missing_runtime_name_the_fix(
    exported, tmp_path, monkeypatch, capsys
):
    out, _ = exported
    monkeypatch.setenv(onnx_engine.ONNX_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(onnx_engine.OnnxEngineError, match=r"python -m deblurlab\.export resunet3"):
        onnx_engine.load("resunet3")
    frame = tmp_path / "frame.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(frame)
    argv = [str(frame), "--model", "resunet3", "--engine", "onnx", "--out", str(tmp_path / "o")]
    assert deblur.main(argv) == 2
    assert "resunet3.onnx is missing" in capsys.readouterr().err
    changed = tmp_path / "changed"
    changed.mkdir()
    for suffix in (".onnx", ".json"):
        (changed / f"resunet1{suffix}").write_bytes((out / f"resunet1{suffix}").read_bytes())
    with pytest.raises(onnx_engine.OnnxEngineError, match="holds resunet1, not resunet3"):
        onnx_engine.load("resunet3", changed / "resunet1.onnx")
    with open(changed / "resunet1.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(onnx_engine.OnnxEngineError, match="does not match the sha256"):
        onnx_engine.load(path=changed / "resunet1.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(onnx_engine.OnnxEngineError, match="pip install onnxruntime"):
        onnx_engine.load(path=out / "resunet1.onnx")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        deblur.main([*argv[:2], "resunet1", *argv[3:], "--weights", "x.h5"])
    assert "--weights belongs to the keras engine" in capsys.readouterr().err


def test_the_export_command_reports_an_unknown_model_and_needs_a_name(tmp_path, capsys):
    assert export.main(["nonesuch", "--out", str(tmp_path)]) == 1
    assert "unknown model 'nonesuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        export.main([])
    assert not list(tmp_path.iterdir())
