"""python -m deblurlab.deblur and its library API: any image size, tiles that agree with the whole
frame, image modes, unreadable files, existing outputs, and the weights' sources and errors."""

import h5py
import keras
import numpy as np
import pytest
from keras import layers
from PIL import Image

from deblurlab.deblur import cli as deblur
from deblurlab.deblur import networks as deblur_models
from deblurlab.models import build_model, list_models
from deblurlab.training import inference, zoo

# Tiled and whole-frame outputs of a fully convolutional model may differ only by the tiles' border
# effects, which the blending leaves out: measured ~7e-5 at tile 64 / overlap 16 on this model.
TILE_TOLERANCE = 5e-4


def _random_resunet1(input_shape=(32, 32, 3)):
    """resunet1 with Keras' random initialisation and a random (not zero) last layer, so that its
    output is not its input."""
    keras.utils.set_random_seed(0)
    model = build_model("resunet1", input_shape=input_shape)
    rng = np.random.default_rng(0)
    for weight in model.weights:
        if weight.path.startswith("restored_conv"):
            weight.assign(rng.normal(0, 0.3, weight.shape).astype(np.float32))
    return model


@pytest.fixture(scope="module")
def zoo_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    model = _random_resunet1()
    path = folder / "resunet1.weights.h5"
    zoo.write_weights(model, path)
    (folder / "resunet1.json").write_text(
        f'{{"sha256": "{zoo.sha256(path)}", "input_shape": [32, 32, 3]}}'
    )
    return folder


@pytest.fixture
def temp_zoo(zoo_folder, monkeypatch):
    monkeypatch.setenv(zoo.ZOO_ENV, str(zoo_folder))
    return zoo_folder


@pytest.fixture(scope="module")
def model(zoo_folder):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(zoo.ZOO_ENV, str(zoo_folder))
        return deblur_models.load_model("resunet1")


def _smooth_image(shape, seed=0):
    from scipy.ndimage import gaussian_filter

    image = np.random.default_rng(seed).random((*shape, 3))
    image = np.stack([gaussian_filter(image[..., c], 2) for c in range(3)], axis=-1)
    return ((image - image.min()) / (image.max() - image.min())).astype(np.float32)


def _save(array, path):
    Image.fromarray(array).save(path)
    return path


def _rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def test_the_zoo_model_is_rebuilt_for_any_size_with_the_zoo_weights(model, temp_zoo):
    assert inference.input_size(model) == (None, None)
    shipped = zoo.read_weights(temp_zoo / "resunet1.weights.h5")
    assert all(
        np.array_equal(w, s.astype(np.float32)) for w, s in zip(model.get_weights(), shipped)
    )


@pytest.mark.parametrize("shape", [(37, 53), (45, 61), (8, 9)])
def test_output_has_the_input_size_for_odd_sizes(model, shape):
    image = _smooth_image(shape)
    restored = inference.deblur_image(model, image)
    assert restored.shape == image.shape and restored.dtype == np.float32
    assert 0.0 <= restored.min() and restored.max() <= 1.0


def test_tiled_and_whole_frame_outputs_agree_on_a_fully_convolutional_model(model):
    image = _smooth_image((150, 230))
    whole = inference.deblur_image(model, image, tile=0)
    assert (
        np.abs(whole - image).mean() > 0.01
    )  # the model changes the image: the comparison is not trivial
    tiled = inference.deblur_image(model, image, tile=64, overlap=16)
    np.testing.assert_allclose(tiled, whole, atol=TILE_TOLERANCE)
    assert np.abs(inference.deblur_image(model, image, tile=96) - whole).max() < TILE_TOLERANCE


@pytest.mark.parametrize(
    "shape,tile,overlap",
    [((70, 90), 32, 8), ((37, 53), 24, 4), ((200, 41), 64, 16), ((64, 64), 32, 0)],
)
def test_tile_blending_weights_sum_to_one_everywhere(shape, tile, overlap):
    inputs = keras.Input((None, None, 3))
    pointwise = keras.Model(
        inputs, layers.Conv2D(3, 1, activation="sigmoid")(inputs)
    )  # tiles are exact
    image = np.random.default_rng(2).random((*shape, 3)).astype(np.float32)
    whole = inference.deblur_image(pointwise, image, tile=0)
    np.testing.assert_allclose(
        inference.deblur_image(pointwise, image, tile=tile, overlap=overlap), whole, atol=1e-6
    )


def test_large_frames_are_tiled_by_default(model, monkeypatch):
    calls = []
    real = inference.deblur_tiled
    monkeypatch.setattr(
        inference, "deblur_tiled", lambda *a, **k: calls.append(a[2]) or real(*a, **k)
    )
    monkeypatch.setattr(inference, "MAX_PIXELS", 64 * 64)
    monkeypatch.setattr(inference, "DEFAULT_TILE", 80)
    image = _smooth_image((100, 110))
    assert inference.deblur_image(model, image).shape == image.shape and calls == [(80, 80)]
    inference.deblur_image(
        model, image[:60, :60]
    )  # padded to 64x64 = MAX_PIXELS: one tile of the whole frame
    assert calls == [(80, 80), (64, 64)]


def test_bad_tiles_are_refused(model):
    with pytest.raises(ValueError, match="multiple of 8"):
        inference.deblur_image(model, _smooth_image((40, 40)), tile=30)
    with pytest.raises(ValueError, match="tile=64 is too small for an overlap of 32"):
        inference.check_tile(model, 64, 32)


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_at_any_size_with_its_32x32_weights_unless_they_depend_on_the_size(name):
    small = build_model(name)
    rebuilt = inference.any_size(small)
    if rebuilt is small:  # kept at 32x32: its weights must really depend on the size
        try:
            other = build_model(name, input_shape=(None, None, 3))
        except ValueError:
            return
        assert zoo.weight_shapes(other) != zoo.weight_shapes(small)
    else:
        assert inference.input_size(rebuilt) == (None, None) and zoo.weight_shapes(
            rebuilt
        ) == zoo.weight_shapes(small)
        assert all(np.array_equal(a, b) for a, b in zip(rebuilt.get_weights(), small.get_weights()))


def test_a_model_whose_weights_depend_on_the_size_runs_on_tiles_of_its_size():
    with pytest.raises(ValueError, match="fixed input size"):
        build_model("srndeblur_cifar_lstm", input_shape=(None, None, 3))
    assert zoo.weight_shapes(build_model("srndeblur_cifar_lstm")) != zoo.weight_shapes(
        build_model("srndeblur_cifar_lstm", input_shape=(64, 64, 3))
    )
    lstm = build_model("srndeblur_cifar_lstm")
    assert inference.any_size(lstm) is lstm
    image = _smooth_image((37, 53))
    restored = inference.deblur_image(lstm, image)
    assert restored.shape == image.shape
    direct = np.clip(np.asarray(lstm(image[None, :32, :32], training=False)[-1][0]), 0, 1)
    np.testing.assert_allclose(inference.deblur_image(lstm, image[:32, :32]), direct, atol=1e-6)
    with pytest.raises(ValueError, match="runs only on 32x32"):
        inference.deblur_image(lstm, image, tile=64)


def test_grayscale_rgba_palette_and_16_bit_images_become_rgb(tmp_path):
    rgb = _rgb((21, 34))
    gray = rgb[..., 0]
    files = {
        "gray": _save(gray, tmp_path / "gray.png"),
        "rgba": _save(np.dstack([rgb, np.full(gray.shape, 7, np.uint8)]), tmp_path / "rgba.png"),
        "jpeg": _save(rgb, tmp_path / "photo.jpg"),
    }
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    np.testing.assert_array_equal(
        deblur.read_image(files["gray"]), np.repeat(gray[..., None], 3, -1) / np.float32(255)
    )
    np.testing.assert_allclose(deblur.read_image(files["rgba"]), rgb / np.float32(255))
    np.testing.assert_allclose(
        deblur.read_image(tmp_path / "gray16.png"),
        np.repeat(gray[..., None], 3, -1) / 255,
        atol=1e-6,
    )
    for name in ("jpeg", "palette"):
        image = deblur.read_image(files.get(name, tmp_path / "palette.png"))
        assert image.shape == (21, 34, 3) and image.dtype == np.float32


def test_the_command_writes_one_png_of_the_input_size_per_file(temp_zoo, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _save(_rgb((37, 53)), inputs / "b_odd.png")
    _save(_rgb((37, 53))[..., 0], inputs / "a_gray.png")
    _save(np.dstack([_rgb((16, 24)), np.zeros((16, 24), np.uint8)]), inputs / "c_rgba.png")
    _save(_rgb((30, 41)), tmp_path / "photo.JPG")
    (inputs / "notes.txt").write_text("not an image, and not picked from a folder")
    out = tmp_path / "out" / "nested"
    assert (
        deblur.main(
            [str(inputs), str(tmp_path / "photo.JPG"), "--model", "resunet1", "--out", str(out)]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "a_gray.png",
        "b_odd.png",
        "c_rgba.png",
        "photo.png",
    ]
    for name, size in {
        "a_gray": (53, 37),
        "b_odd": (53, 37),
        "c_rgba": (24, 16),
        "photo": (41, 30),
    }.items():
        with Image.open(out / f"{name}.png") as written:
            assert written.mode == "RGB" and written.size == size
    assert "4 written, 0 skipped, 0 failed" in capsys.readouterr().out


def test_an_unreadable_file_is_reported_by_name_and_skipped_while_the_others_are_written(
    temp_zoo, tmp_path, capsys
):
    good = _save(_rgb((20, 20)), tmp_path / "good.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    missing = tmp_path / "missing.png"
    later = _save(_rgb((12, 18)), tmp_path / "later.jpg")
    code = deblur.main(
        [
            str(bad),
            str(good),
            str(missing),
            str(later),
            "--model",
            "resunet1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png", "later.png"]
    assert (
        f"{bad} is not a readable image" in captured.err
        and f"{missing} does not exist" in captured.err
    )
    assert "2 written, 0 skipped, 2 failed" in captured.out


def test_existing_outputs_are_kept_unless_overwrite(temp_zoo, tmp_path, capsys):
    source = _save(_rgb((16, 16)), tmp_path / "frame.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "frame.png").write_bytes(b"keep me")
    argv = [str(source), "--model", "resunet1", "--out", str(out)]
    assert deblur.main(argv) == 0
    captured = capsys.readouterr()
    assert (out / "frame.png").read_bytes() == b"keep me"
    assert f"{out / 'frame.png'} exists (--overwrite to replace it)" in captured.err
    assert "0 written, 1 skipped, 0 failed" in captured.out
    assert deblur.main(argv + ["--overwrite"]) == 0
    with Image.open(out / "frame.png") as written:
        assert written.size == (16, 16)
    assert [p.name for p in out.iterdir()] == ["frame.png"]  # no temporary file left behind


def test_two_inputs_with_one_output_name_do_not_overwrite_each_other(model, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = (
        _save(_rgb((16, 16)), tmp_path / "a" / "x.png"),
        _save(_rgb((16, 16)), tmp_path / "b" / "x.jpg"),
    )
    summary = deblur.deblur_files(
        model,
        [first, second],
        tmp_path / "out",
        overwrite=True,
        progress=False,
        log=lambda text: None,
    )
    assert summary["written"] == [tmp_path / "out" / "x.png"]
    assert summary["failed"][0][0] == second and "same name" in summary["failed"][0][1]
    assert deblur.expand_inputs([first, tmp_path / "a", first])[0] == [
        first
    ]  # one file named twice: once


def test_missing_weights_name_the_zoo_file_and_the_command_that_trains_it(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "empty-zoo"))
    with pytest.raises(
        deblur_models.DeblurError,
        match=r"resunet3\.weights\.h5 is missing.*"
        r"`python -m deblurlab\.reference --models resunet3`",
    ):
        deblur_models.load_model("resunet3")
    with pytest.raises(
        deblur_models.DeblurError,
        match=r"srndeblur_reds\.weights\.h5 is missing.*"
        r"`python -m deblurlab\.reference --models srndeblur_reds`.*"
        r"--weights runs/<run>/best\.weights\.h5 of a chapter 05 run",
    ):
        deblur_models.load_model("srndeblur_reds")
    image = _save(_rgb((16, 16)), tmp_path / "frame.png")
    assert deblur.main([str(image), "--model", "resunet1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert (
        "resunet1.weights.h5 is missing" in err
        and "python -m deblurlab.reference --models resunet1" in err
    )
    with pytest.raises(deblur_models.DeblurError, match="unknown model 'nonesuch'"):
        deblur_models.load_model("nonesuch")


def test_weights_from_a_training_run_or_a_zoo_file(tmp_path):
    trained = _random_resunet1(input_shape=(48, 48, 3))
    trained.compile(
        optimizer="adam", loss="mse"
    )  # a run's best.weights.h5 also holds the optimizer's state
    trained.optimizer.build(trained.trainable_variables)
    trained.save_weights(tmp_path / "best.weights.h5")
    with h5py.File(tmp_path / "best.weights.h5", "r") as saved:
        assert "optimizer" in saved
    loaded = deblur_models.load_model("resunet1", weights=tmp_path / "best.weights.h5")
    assert inference.input_size(loaded) == (None, None)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.get_weights(), trained.get_weights()))
    zoo.write_weights(trained, tmp_path / "zoo-format.weights.h5", dtype="float32")
    from_zoo_file = deblur_models.load_model("resunet1", weights=tmp_path / "zoo-format.weights.h5")
    assert all(
        np.array_equal(a, b) for a, b in zip(from_zoo_file.get_weights(), trained.get_weights())
    )
    with pytest.raises(
        deblur_models.DeblurError, match=r"best\.weights\.h5 does not fit resunet3.*--model"
    ):
        deblur_models.load_model("resunet3", weights=tmp_path / "best.weights.h5")
    with pytest.raises(deblur_models.DeblurError, match="nope.weights.h5 does not exist"):
        deblur_models.load_model("resunet1", weights=tmp_path / "nope.weights.h5")
    (tmp_path / "text.weights.h5").write_text("no")
    with pytest.raises(deblur_models.DeblurError, match="is not a weights file"):
        deblur_models.load_model("resunet1", weights=tmp_path / "text.weights.h5")


def test_the_motion_model_runs_at_any_size_through_its_per_shape_graph():
    keras.utils.set_random_seed(0)
    reds = build_model(
        "srndeblur_reds", input_shape=(None, None, 3)
    )  # its bilinear upsampling needs static sizes
    image = _smooth_image((37, 53))
    restored = inference.deblur_image(reds, image)
    assert restored.shape == image.shape
    direct = np.asarray(reds(inference.pad_to_multiple(image, 8)[0][None], training=False)[-1][0])
    np.testing.assert_allclose(restored, np.clip(direct[:37, :53], 0, 1), atol=1e-5)


def test_a_frame_on_disk_goes_through_the_files_path_and_one_in_memory_does_not(tmp_path):
    from deblurlab.data.frames import ArrayFrames, FileFrames, FramePair

    inputs = keras.Input((None, None, 3))
    identity = keras.Model(inputs, layers.Identity()(inputs))
    blurred = _save(_rgb((24, 32)), tmp_path / "000001.png")
    frames = FileFrames([FramePair(blurred, blurred, "scene", "000001")])
    restored, done = deblur.deblur_frame_as_user(identity, frames, 0)
    assert done.startswith("000001.png:")
    np.testing.assert_allclose(restored, frames.load(0)[0], atol=1 / 255)  # the 8-bit PNG read back
    memory = ArrayFrames(["a"], [frames.load(0)[0] * 0.5], [frames.load(0)[1]])
    restored, done = deblur.deblur_frame_as_user(identity, memory, 0)
    assert "in-memory" in done
    np.testing.assert_allclose(restored, memory.load(0)[0], atol=1e-6)


# --- the default model: srndeblur_reds from the zoo ----------------------------------------------

# The inference path may change how the graph runs, not what it computes: on a real motion-blurred
# frame its output stays this close to the path it replaced and to the eager call (float32 sums in
# another order; 1/40 of an 8-bit level). Measured: 0 on the whole 1280x720 frame
# (tuning/<machine key>.frame.json).
FRAME_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def motion_zoo(zoo_folder, tmp_path_factory):
    """A zoo with resunet1 and an identity-initialised srndeblur_reds (each output is its input),
    written by the zoo's own writers."""
    import shutil

    from deblurlab.studies.motion.study import identity_init

    folder = tmp_path_factory.mktemp("motion-zoo")
    for name in ("resunet1.weights.h5", "resunet1.json"):
        shutil.copy(zoo_folder / name, folder / name)
    reds = identity_init(build_model("srndeblur_reds", input_shape=(None, None, 3)))
    with zoo.located(folder):
        zoo.write_weights(reds, zoo.weights_path("srndeblur_reds"), dtype="float32")
        zoo.write_record(
            "srndeblur_reds",
            {
                "model": "srndeblur_reds",
                "sha256": zoo.sha256(zoo.weights_path("srndeblur_reds")),
                "input_shape": [None, None, 3],
                "epochs": 3,
                "date": "2026-12-05 10:00",
                "stopped": "in progress: time limit",
            },
        )
    return folder


def test_without_model_the_command_runs_the_motion_model_of_the_zoo(
    motion_zoo, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(zoo.ZOO_ENV, str(motion_zoo))
    source = _save(_rgb((37, 53)), tmp_path / "photo.png")
    assert deblur.main([str(source), "--out", str(tmp_path / "out")]) == 0
    line = capsys.readouterr().out
    assert line.startswith("srndeblur_reds (") and "CIFAR-10" not in line
    assert "weights: " in line and "srndeblur_reds.weights.h5" in line
    assert "unfinished reference run (3 epochs, 2026-12-05 10:00)" in line
    restored = deblur.read_image(tmp_path / "out" / "photo.png")
    np.testing.assert_allclose(restored, deblur.read_image(source), atol=1.01 / 255)  # identity
    assert deblur.main([str(source), "--model", "resunet1", "--out", str(tmp_path / "cifar")]) == 0
    assert "not on motion blur" in capsys.readouterr().out  # the CIFAR-10 models keep their note


def test_without_the_motion_weights_the_error_names_the_file_and_both_fixes(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(zoo.ZOO_ENV, str(tmp_path / "empty-zoo"))
    monkeypatch.setenv("DEBLURLAB_ONNX_DIR", str(tmp_path / "no-onnx"))
    image = _save(_rgb((16, 16)), tmp_path / "frame.png")
    assert deblur.main([str(image), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    for part in (
        "srndeblur_reds.weights.h5 is missing",
        "`python -m deblurlab.reference --models srndeblur_reds`",
        "--weights runs/<run>/best.weights.h5 of a chapter 05 run",
        "srndeblur_reds is the default model",
        "--model NAME",
    ):
        assert part in err, (part, err)
    assert deblur.main([str(image), "--out", str(tmp_path / "out"), "--engine", "onnx"]) == 2
    err = capsys.readouterr().err
    for part in (
        "no-onnx/srndeblur_reds.onnx is missing",
        "`python -m deblurlab.export srndeblur_reds`",
        "srndeblur_reds.weights.h5, which is missing too",
        "--weights runs/<run>/best.weights.h5",
    ):
        assert part in err, (part, err)
    assert not (tmp_path / "out").exists()


def test_weights_without_model_load_into_the_motion_model(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    reds = build_model("srndeblur_reds", input_shape=(None, None, 3))
    reds.save_weights(tmp_path / "best.weights.h5")
    source = _save(_rgb((24, 40)), tmp_path / "frame.png")
    argv = [str(source), "--out", str(tmp_path / "out"), "--weights"]
    assert deblur.main([*argv, str(tmp_path / "best.weights.h5")]) == 0
    assert capsys.readouterr().out.startswith("srndeblur_reds (")


# --- whole-frame inference: one trace per size, the same numbers ---------------------------------


def test_frames_of_alternating_sizes_are_traced_once_each(monkeypatch):
    inputs = keras.Input((None, None, 3))
    net = keras.Model(inputs, layers.Conv2D(3, 3, padding="same")(inputs))
    landscape, portrait = _smooth_image((24, 40)), _smooth_image((40, 24))
    inference.deblur_image(net, landscape)
    first = net.predict_function
    inference.deblur_image(net, portrait)
    inference.deblur_image(net, landscape)
    assert net.predict_function is first
    assert inference.traced_sizes(net) == [(40, 24, 3), (24, 40, 3)]  # most recent last
    if keras.backend.backend() == "tensorflow":
        assert first.experimental_get_tracing_count() == 1
    monkeypatch.setattr(inference, "MAX_TRACES", 2)
    inference.deblur_image(net, _smooth_image((16, 16)))  # the least recent size is dropped
    assert inference.traced_sizes(net) == [(24, 40, 3), (16, 16, 3)]


def test_the_inference_path_keeps_the_numbers_of_the_path_it_replaced_on_a_real_frame():
    from deblurlab.deblur.export import real_frame
    from deblurlab.perf.frame import TOLERANCE
    from deblurlab.perf.frame_worker import previous_deblur_image

    assert TOLERANCE == FRAME_TOLERANCE  # the benchmark's eligibility is this test's tolerance
    found = real_frame()
    if found is None:
        pytest.skip("no GoPro or REDS sample frame beside the checkout")
    image = inference.centre_crop(found[1], (120, 200))  # padded to 120x200: a multiple of 8
    keras.utils.set_random_seed(0)
    weights = build_model("srndeblur_reds", input_shape=(None, None, 3)).get_weights()
    nets = []
    for _ in range(3):  # one model a path, so that no path reuses another's trace
        nets.append(build_model("srndeblur_reds", input_shape=(None, None, 3)))
        nets[-1].set_weights(weights)
    now = inference.deblur_image(nets[0], image)
    before = previous_deblur_image(nets[1], image)
    eager = np.clip(inference.run_model(nets[2], image), 0, 1)
    assert np.abs(now - image).mean() > 0.01  # random weights change the frame: not trivial
    assert np.abs(now - before).max() <= FRAME_TOLERANCE
    assert np.abs(now - eager).max() <= FRAME_TOLERANCE
    raw = inference.predict_batch(nets[0], image[None])  # unclipped: every pixel compared
    assert np.abs(raw - inference.run_batch(nets[2], image[None])).max() <= FRAME_TOLERANCE
    assert np.abs(inference.deblur_frame(nets[0], image) - now).max() <= FRAME_TOLERANCE
