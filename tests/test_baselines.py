import keras
import numpy as np
import pytest
from keras import layers

from deblurlab.core.metrics import mse_per_image
from deblurlab.data.blur import blur_in_batches, gaussian_blur, make_blurred_set
from deblurlab.data.cifar import CifarSplits
from deblurlab.studies.cifar.study import VAL_SEED, CifarStudy
from deblurlab.studies.comparison import baselines as B
from deblurlab.studies.comparison import study as C


def textured_images(n=2, size=32, seed=0):
    """Smooth colour fields with sharp-edged squares: something a blur visibly damages."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        img = np.stack(
            [
                0.5
                + 0.3 * np.sin(2 * np.pi * (rng.uniform(1, 3) * xx + rng.uniform(1, 3) * yy + p))
                for p in rng.uniform(0, 1, 3)
            ],
            -1,
        )
        for _ in range(4):
            y, x = rng.integers(0, size - 8, 2)
            img[y : y + 8, x : x + 8] = rng.uniform(0.05, 0.95, 3)
        out.append(img)
    return np.clip(np.stack(out), 0, 1).astype(np.float32)


PARAMS = {
    B.WIENER: {"balance": 1e-3},
    B.RICHARDSON_LUCY: {"num_iter": 30},
    B.UNSUPERVISED_WIENER: {},
}


@pytest.mark.parametrize("method", B.method_names())
def test_each_baseline_improves_on_the_blurred_input(method):
    sharp = textured_images()
    sigmas = np.array([1.2, 2.0], np.float32)
    blurred = gaussian_blur(sharp, sigmas)
    restored = B.deconvolve(blurred, sigmas, method, workers=1, **PARAMS[method])
    assert restored.shape == sharp.shape and restored.dtype == np.float32
    assert np.all(mse_per_image(restored, sharp) < mse_per_image(blurred, sharp))


def test_true_psf_is_the_kernel_the_blur_applies():
    for sigma in (0.5, 1.0, 2.7):
        psf = B.true_psf(sigma)
        r = psf.shape[0] // 2
        assert r == int(np.floor(3 * sigma + 1e-6))
        assert psf.sum() == pytest.approx(1.0, abs=1e-6)
        impulse = np.zeros((1, 31, 31, 1), np.float32)
        impulse[0, 15, 15, 0] = 1.0
        response = gaussian_blur(impulse, [sigma])[0, 15 - r : 16 + r, 15 - r : 16 + r, 0]
        np.testing.assert_allclose(response, psf, atol=1e-6)


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.33])
def test_delta_kernel_returns_the_input_unchanged(sigma):
    assert B.true_psf(sigma).shape == (1, 1)
    image = textured_images(1)
    for method in B.method_names():
        out = B.deconvolve(image, [sigma], method, **PARAMS[method])
        np.testing.assert_array_equal(out, image)


@pytest.mark.parametrize("method", B.method_names())
@pytest.mark.parametrize("pad_factor", [0, 1, 2, 3.5])
def test_padding_and_cropping_keep_the_shape(method, pad_factor):
    image = np.random.default_rng(1).random((20, 28, 3)).astype(np.float32)  # not square
    out = B.deconvolve_image(image, 2.5, method, pad_factor=pad_factor, **PARAMS[method])
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_batched_richardson_lucy_matches_skimage_image_by_image():
    sharp = textured_images(5)
    sigmas = np.array(
        [0.2, 0.5, 1.4, 1.45, 3.0], np.float32
    )  # delta, small, two of one size, largest
    blurred = gaussian_blur(sharp, sigmas)
    batched = B.deconvolve(blurred, sigmas, B.RICHARDSON_LUCY, num_iter=15)
    reference = B.deconvolve(
        blurred, sigmas, B.RICHARDSON_LUCY, num_iter=15, engine="skimage", workers=1
    )
    np.testing.assert_allclose(batched, reference, atol=1e-5)
    with pytest.raises(ValueError, match="engine"):
        B.deconvolve(blurred, sigmas, B.RICHARDSON_LUCY, num_iter=1, engine="fast")


def test_result_does_not_depend_on_the_number_of_threads():
    sharp = textured_images(3)
    sigmas = np.array([0.8, 1.5, 2.5], np.float32)
    blurred = gaussian_blur(sharp, sigmas)
    one = B.deconvolve(blurred, sigmas, B.UNSUPERVISED_WIENER, workers=1)
    two = B.deconvolve(blurred, sigmas, B.UNSUPERVISED_WIENER, workers=2)
    np.testing.assert_array_equal(one, two)


def test_bad_input_names_the_fix():
    image = textured_images(1)
    with pytest.raises(KeyError, match="unknown baseline"):
        B.deconvolve(image, [1.0], "Lucy")
    with pytest.raises(TypeError, match="balance.*tune"):
        B.deconvolve(image, [1.0], B.WIENER)
    with pytest.raises(ValueError, match="N sigmas"):
        B.deconvolve(image, [1.0, 2.0], B.WIENER, balance=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        B.true_psf(-1.0)


def test_tuner_picks_the_value_with_the_best_validation_score():
    rng = np.random.default_rng(0)
    blurred = rng.random((4, 16, 16, 3)).astype(np.float32)
    sharp = 0.5 * blurred
    sigmas = np.ones(4)
    calls = []

    def restore(images, sig, gain):
        calls.append(gain)
        return images * gain

    for metric in ("mse", "psnr", "ssim"):
        result = B.tune(
            restore, "gain", [0.2, 0.9, 0.5, 1.0], blurred, sharp, sigmas, metric=metric
        )
        assert result.params == {"gain": 0.5}, metric
        assert list(result.scores["gain"]) == [0.2, 0.9, 0.5, 1.0]
    assert calls[:4] == [0.2, 0.9, 0.5, 1.0]
    # ties go to the earlier value
    tie = B.tune(lambda images, sig, gain: images, "gain", [3, 1, 2], blurred, sharp, sigmas)
    assert tie.params == {"gain": 3}
    with pytest.raises(ValueError, match="metric"):
        B.tune(restore, "gain", [1], blurred, sharp, sigmas, metric="mae")


def test_tune_baselines_uses_the_grid_and_leaves_unsupervised_wiener_untuned():
    sharp = textured_images(2)
    sigmas = np.array([1.0, 2.0], np.float32)
    blurred = gaussian_blur(sharp, sigmas)
    grids = {B.WIENER: {"balance": [10.0, 1e-3]}, B.RICHARDSON_LUCY: {"num_iter": [1, 30]}}
    tuned = B.tune_baselines(blurred, sharp, sigmas, grids, workers=1)
    assert tuned[B.WIENER].params == {"balance": 1e-3}
    assert tuned[B.RICHARDSON_LUCY].params == {"num_iter": 30}
    assert tuned[B.UNSUPERVISED_WIENER].params == {}
    assert "nothing to tune" in tuned[B.UNSUPERVISED_WIENER].describe()


def toy_study(n_val=6, n_test=8):
    rng = np.random.default_rng(0)
    val, test = textured_images(n_val, 16, seed=1), textured_images(n_test, 16, seed=2)
    val_blurred, _ = make_blurred_set(val, seed=VAL_SEED)
    test_blurred, test_sigmas = make_blurred_set(test)
    splits = CifarSplits(
        rng.random((4, 16, 16, 3)).astype(np.float32), val, test, np.zeros(n_test), "toy", "toy"
    )
    return CifarStudy(None, splits, val_blurred, test_blurred, test_sigmas)


def test_validation_sigmas_reproduce_the_validation_blur():
    study = toy_study()
    np.testing.assert_allclose(
        blur_in_batches(study.splits.val, C.validation_sigmas(study)), study.val_blurred, atol=1e-6
    )


def test_hard_image_is_the_most_blurred_of_the_textured():
    study = toy_study()
    study.splits.test[:4] = 0.5  # flat, so no texture
    study.test_sigmas[:] = np.linspace(0.1, 2.9, len(study.test_sigmas))[
        ::-1
    ]  # image 0 most blurred
    index = C.hard_image_index(study, texture_quantile=0.5)
    assert index == 4  # the most blurred image that has texture
    assert C.hard_image_index(study, texture_quantile=0.5) == index


def test_verdict_sentences_say_when_a_model_does_not_beat_a_baseline():
    scores = {
        "net": {"mse": np.array([0.02]), "ssim": np.array([0.70])},
        "good net": {"mse": np.array([0.001]), "ssim": np.array([0.95])},
        "Wiener": {"mse": np.array([0.01]), "ssim": np.array([0.80])},
    }
    table, sentences = C.verdicts(scores, ["Wiener"], ["net", "good net"])
    assert table["net"]["Wiener"] == {"mse": False, "ssim": False}
    assert sentences[0].startswith("net does not beat Wiener")
    assert sentences[1] == "good net beats Wiener in both MSE and SSIM."


def test_flops_per_image_matches_a_hand_count():
    inputs = keras.Input((8, 8, 3))
    one_conv = keras.Model(inputs, layers.Conv2D(4, 3, padding="same")(inputs))
    assert C.flops_per_image(one_conv) == 2 * (8 * 8) * 4 * (
        3 * 3 * 3
    )  # 2 x out pixels x filters x kernel
    assert C.uncounted_layers(one_conv) == []

    x = layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4x4 out
    x = layers.Conv2DTranspose(5, 3, strides=2, padding="same")(
        x
    )  # each of 4x4x4 inputs scatters 3x3x5
    x = layers.Dense(7)(layers.Flatten()(x))
    mixed = keras.Model(inputs, x)
    assert C.flops_per_image(mixed) == 2 * (16 * 4 * 27 + 16 * 4 * 9 * 5 + 8 * 8 * 5 * 7)

    shared_in = keras.Input((None, None, 3))
    shared = keras.Model(shared_in, layers.Conv2D(3, 3, padding="same")(shared_in))
    twice = keras.Model(inputs, shared(shared(inputs)))  # one layer, two calls: counted twice
    assert C.flops_per_image(twice) == 2 * 2 * (8 * 8) * 3 * 27
    with pytest.raises(ValueError, match="input_shape"):
        C.flops_per_image(shared)
    assert C.flops_per_image(shared, (8, 8, 3)) == 2 * (8 * 8) * 3 * 27
    # the wrapped calls are removed again
    assert "call" not in shared.layers[1].__dict__


def test_training_speed_counts_the_images_the_profile_trains_on():
    """A model whose default profile caps its training images is timed on the capped count."""
    from types import SimpleNamespace

    import numpy as np

    from deblurlab.models import get_spec
    from deblurlab.training.profiles import CifarPlan

    study = SimpleNamespace(
        plan=CifarPlan.for_profile("default"),
        splits=SimpleNamespace(train=np.zeros((4285, 1, 1, 1), np.float32)),
    )
    result = SimpleNamespace(train_seconds=100.0, epochs_run=2)
    assert C.training_images_per_second(study, "resunet1", result) == 2 * 4256 / 100.0
    cap = get_spec("caessc_d30_f64").default_train_images
    assert (
        C.training_images_per_second(study, "caessc_d30_f64", result)
        == 2 * (cap // 32 * 32) / 100.0
    )


def test_training_setup_reads_the_runs_kept_record(tmp_path):
    import json
    from types import SimpleNamespace

    (tmp_path / "state.json").write_text(
        json.dumps({"compute": {"jit_compile": True, "precision": "float32"}})
    )
    assert C.training_setup(SimpleNamespace(run_dir=tmp_path))["jit_compile"] is True
    (tmp_path / "state.json").write_text(
        json.dumps({"compute": "float32, XLA, CPU"})
    )  # an older run
    assert C.training_setup(SimpleNamespace(run_dir=tmp_path)) is None
    assert C.training_setup(SimpleNamespace(run_dir=tmp_path / "missing")) is None
