"""Motion-blur data: REDS/GoPro loaders on tiny trees, the report's protocol, the patch sampler and
its SSIM, and the synthetic camera-shake kernels and FFT blur."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from skimage.metrics import structural_similarity

from deblurlab.data import motion as MO
from deblurlab.data import pairs as PR
from deblurlab.data import patches as P
from deblurlab.data import sources as SRC

W, H = 64, 48


def _png(path: Path, seed: int, size=(W, H)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def make_reds(root: Path, clips=26, frames=("00000049", "00000050", "00000099"), val_clips=0):
    for split, n in (("train", clips), ("val", val_clips)):
        for c in range(n):
            for f in frames:
                for kind in ("sharp", "blur"):
                    _png(
                        root / f"{split}_{kind}" / f"{c:03d}" / f"{f}.png",
                        hash((split, c, f, kind)) % 2**32,
                    )
    return root


def make_gopro(root: Path, scenes=("GOPR0001_00_00",), frames=20, test_scenes=(), size=(W, H)):
    for split, names in (("train", scenes), ("test", test_scenes)):
        for scene in names:
            for i in range(frames):
                for kind in ("blur", "blur_gamma", "sharp"):
                    _png(
                        root / "GOPRO_Large" / split / scene / kind / f"{i + 1:06d}.png",
                        i * 7 + len(kind),
                        size,
                    )
    return root


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
    return make_reds(tmp_path_factory.mktemp("reds"))


@pytest.fixture(scope="module")
def gopro(tmp_path_factory):
    return make_gopro(tmp_path_factory.mktemp("gopro"))


# --- loaders and protocol ------------------------------------------------------------------


def test_reds_pairs_match_by_name_and_protocol_splits(reds):
    pairs = PR.find_reds(reds, "train")
    assert len(pairs) == 26 * 3
    assert all(p.blurred.stem == p.sharp.stem and p.blurred.parent.name == p.scene for p in pairs)
    assert all("train_blur" in str(p.blurred) and "train_sharp" in str(p.sharp) for p in pairs)
    split = PR.reds_protocol(pairs)
    assert PR.scenes(split["test"]) == [f"{c:03d}" for c in range(24)]  # the first 24 clips
    assert len(split["test"]) == 24 * 3  # every frame of a test clip
    assert {p.scene for p in split["train"]} == {"024", "025"}
    assert sorted({p.frame for p in split["train"]}) == [
        "00000050",
        "00000099",
    ]  # frames 50-99 only


def test_reds_without_val_folder_holds_out_last_clip(reds):
    data = PR.load_reds(reds)
    assert data.kind == "reds" and len(data.test) == 72
    assert data.val.names == ["025/00000050", "025/00000099"]
    assert data.train.names == ["024/00000050", "024/00000099"]
    assert "000-023" in data.protocol
    blurred, sharp = data.train.load(0)
    assert blurred.shape == sharp.shape == (H, W, 3) and blurred.dtype == np.float32
    assert 0.0 <= blurred.min() and blurred.max() <= 1.0


def test_reds_jpeg_blur_folder_and_val_split(tmp_path):
    root = make_reds(tmp_path, clips=25, frames=("00000050",), val_clips=2)
    (root / "train_blur").rename(root / "train_blur_jpeg")
    assert len(PR.find_reds(root, "train")) == 25
    data = SRC.find_motion_data(root)
    assert len(data.val) == 2 and len(data.train) == 1


def test_gopro_sample_temporal_split(gopro):
    data = SRC.find_motion_data(gopro)
    assert data.kind == "gopro-sample" and data.is_real
    # 20 frames: 3 train, 3 dropped, 4 validation, 10 test, in time order, never overlapping.
    assert data.train.names == [f"GOPR0001_00_00/{i:06d}" for i in (1, 2, 3)]
    assert data.val.names == [f"GOPR0001_00_00/{i:06d}" for i in (7, 8, 9, 10)]
    assert data.test.names[0] == "GOPR0001_00_00/000011" and len(data.test) == 10
    assert "blur_gamma" not in str(data.train.pairs[0].blurred)
    assert data.label in data.source and str(len(data.test)) in data.source


def test_gopro_official_split(tmp_path):
    root = make_gopro(tmp_path, scenes=("A", "B", "C"), frames=2, test_scenes=("T",))
    data = PR.load_gopro(root / "GOPRO_Large")
    assert data.kind == "gopro"
    assert PR.scenes(data.test.pairs) == ["T"] and PR.scenes(data.val.pairs) == ["C"]
    assert PR.scenes(data.train.pairs) == ["A", "B"]


def test_missing_frame_names_the_file(tmp_path):
    root = make_gopro(tmp_path, frames=3)
    lonely = root / "GOPRO_Large/train/GOPR0001_00_00/blur/000002.png"
    (root / "GOPRO_Large/train/GOPR0001_00_00/sharp/000002.png").unlink()
    with pytest.raises(PR.MotionDataError, match=str(lonely)):
        PR.find_gopro(root)


def test_missing_folder_and_unknown_layout(tmp_path):
    with pytest.raises(PR.MotionDataError, match="train_sharp"):
        PR.find_reds(tmp_path)
    with pytest.raises(PR.MotionDataError, match="neither a REDS folder"):
        SRC.find_motion_data(tmp_path)


def test_corrupt_png_names_the_file(tmp_path):
    root = make_gopro(tmp_path, frames=3)
    bad = root / "GOPRO_Large/train/GOPR0001_00_00/sharp/000003.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated after the header
    pairs = PR.find_gopro(root)
    with pytest.raises(PR.MotionDataError, match=str(bad)):
        PR.check_pairs(pairs, verify=True)
    with pytest.raises(PR.MotionDataError, match=str(bad)):
        PR.FileFrames(pairs).load(2)
    bad.write_bytes(b"not a png at all")
    with pytest.raises(PR.MotionDataError, match=str(bad)):
        PR.check_pairs(pairs)


def test_size_mismatch_is_an_error(tmp_path):
    root = make_gopro(tmp_path, frames=2)
    _png(root / "GOPRO_Large/train/GOPR0001_00_00/sharp/000001.png", 0, size=(32, 32))
    with pytest.raises(PR.MotionDataError, match="one size"):
        PR.check_pairs(PR.find_gopro(root))


def test_environment_variable_and_synthetic_keyword(reds, monkeypatch):
    monkeypatch.setenv(SRC.ENV_VAR, str(reds))
    assert SRC.find_motion_data().kind == "reds"
    monkeypatch.setattr(
        MO,
        "available_photos",
        lambda names=None: {
            "astronaut": np.full((40, 40, 3), 0.5, np.float32),
            "chelsea": np.zeros((40, 40, 3), np.float32),
            "coffee": np.ones((40, 40, 3), np.float32),
        },
    )
    data = SRC.find_motion_data("synthetic", synthetic_kernels=1)
    assert data.kind == "synthetic" and not data.is_real
    assert (data.train.names, data.val.names, data.test.names) == (
        ["astronaut/k0"],
        ["chelsea/k0"],
        ["coffee/k0"],
    )


# --- SSIM and the patch sampler ------------------------------------------------------------


def test_batched_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    sharp = ndimage.gaussian_filter(rng.random((5, 40, 56, 3)), (0, 2, 2, 0))
    blurred = np.stack(
        [ndimage.uniform_filter(s, (1, k, 1)) for s, k in zip(sharp, (1, 3, 5, 9, 15))]
    )
    blurred[0] = np.clip(blurred[0] + 0.05 * rng.standard_normal(blurred[0].shape), 0, 1)
    ours = P.ssim_numpy(blurred, sharp)
    reference = [
        structural_similarity(
            b,
            s,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=-1,
        )
        for b, s in zip(blurred, sharp)
    ]
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    assert P.ssim_numpy(sharp[0], sharp[0]) == pytest.approx(1.0, abs=1e-5)


def test_sampler_keeps_patches_below_threshold():
    rng = np.random.default_rng(1)
    sharp = rng.random((64, 128, 3)).astype(np.float32)
    blurred = sharp.copy()
    blurred[:, 64:] = ndimage.uniform_filter(
        sharp[:, 64:], (1, 9, 1)
    )  # only the right half is blurred
    for seed in range(4):
        b, s, ssim, passed = P.sample_patches(blurred, sharp, [seed, 9], 24, 2, tries=20)
        assert b.shape == s.shape == (2, 24, 24, 3)
        assert passed.all() and (ssim < P.SSIM_THRESHOLD).all()
        np.testing.assert_allclose(ssim, P.ssim_numpy(b, s), atol=1e-5)


def test_sampler_falls_back_to_random_patches():
    sharp = np.random.default_rng(2).random((40, 40, 3)).astype(np.float32)
    b, s, ssim, passed = P.sample_patches(sharp, sharp, [3, 4], 16, 2, tries=3)
    assert b.shape == (2, 16, 16, 3) and not passed.any()
    np.testing.assert_allclose(ssim, 1.0, atol=1e-5)
    again = P.sample_patches(sharp, sharp, [3, 4], 16, 2, tries=3)[0]
    np.testing.assert_array_equal(b, again)  # seeded


def test_patch_stream_batches_and_determinism(gopro):
    data = SRC.find_motion_data(gopro)
    ds, steps = P.patch_stream(
        data.test,
        batch_size=4,
        seed=0,
        first_epoch=0,
        last_epoch=2,
        patch_size=16,
        patches_per_image=2,
    )
    batches = [b for b, _ in ds]
    assert steps == 5 and len(batches) == 10 and batches[0].shape == (4, 16, 16, 3)
    resumed, _ = P.patch_stream(data.test, 4, 0, 1, 2, patch_size=16, patches_per_image=2)
    np.testing.assert_array_equal(next(iter(resumed))[0], batches[5])  # epoch 2 is epoch 2
    with pytest.raises(ValueError, match="multiple of patches_per_image"):
        P.patch_stream(data.test, 5, 0, 0, 1, patch_size=16, patches_per_image=2)


def test_too_perfect_probability_from_kde_and_counts():
    ssim = np.r_[np.linspace(0.3, 0.85, 70), np.linspace(0.92, 0.99, 30)]
    out = P.too_perfect_probability(ssim)
    assert out["empirical"] == pytest.approx(0.30)
    assert 0.2 < out["kde"] < 0.4 and out["n_patches"] == 100


# --- kernels and FFT blur ------------------------------------------------------------------


def test_kernels_normalised_non_negative_seeded():
    kernels = MO.random_kernels(6, seed=5)
    assert kernels.shape == (6, MO.KERNEL_SIZE, MO.KERNEL_SIZE)
    assert (kernels >= 0).all()
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-12)
    np.testing.assert_array_equal(kernels, MO.random_kernels(6, seed=5))
    assert not np.allclose(kernels, MO.random_kernels(6, seed=6))
    assert (kernels > 0).sum(axis=(1, 2)).min() > 1  # a path, not a point


def test_fft_blur_delta_is_identity_and_no_renormalisation():
    rng = np.random.default_rng(3)
    image = (0.5 * rng.random((30, 41, 3))).astype(np.float32)  # values in [0, 0.5]
    delta = np.zeros((7, 7))
    delta[3, 3] = 1.0
    np.testing.assert_allclose(MO.fft_blur(image, delta), image, atol=1e-6)
    kernel = MO.random_kernels(1, seed=1, size=9)[0]
    blurred = MO.fft_blur(image, kernel)
    assert (
        blurred.shape == image.shape and blurred.max() <= 0.5 + 1e-6
    )  # not stretched back to [0, 1]
    expected = np.stack(
        [
            ndimage.convolve(image[..., c].astype(np.float64), kernel, mode="mirror")
            for c in range(3)
        ],
        -1,
    )
    np.testing.assert_allclose(blurred, expected, atol=1e-5)
    np.testing.assert_allclose(MO.fft_blur(np.full((20, 20, 3), 0.3), kernel), 0.3, atol=1e-6)


def test_synthetic_pairs_are_reproducible():
    photos = {"a": np.random.default_rng(0).random((40, 48, 3)).astype(np.float32)}
    first = MO.make_synthetic_pairs(photos, 2, seed=1, size=9)
    again = MO.make_synthetic_pairs(photos, 2, seed=1, size=9)
    assert first.names == ["a/k0", "a/k1"]
    np.testing.assert_array_equal(first.blurred[1], again.blurred[1])
    assert not np.allclose(first.blurred[0], first.sharp[0])


def test_a_few_reds_clips_hold_out_the_first_as_an_unseen_scene(tmp_path):
    frames = tuple(f"{i:08d}" for i in range(10))
    data = PR.load_reds(make_reds(tmp_path, clips=3, frames=frames))
    assert data.kind == "reds-sample"
    assert PR.scenes(data.test.pairs) == ["000"] and len(data.test) == 10  # the whole first clip
    assert PR.scenes(data.train.pairs) == PR.scenes(data.val.pairs) == ["001", "002"]
    seen = {p.scene for p in data.train.pairs + data.val.pairs}
    assert "000" not in seen
    # per clip: frames 0-5 train, 6-7 dropped, 8-9 validate
    assert [p.frame for p in data.val.pairs if p.scene == "001"] == ["00000008", "00000009"]
    assert list(data.groups()) == ["REDS clip 000, unseen scene"]


def test_every_source_found_is_combined_and_keeps_its_split(tmp_path):
    frames = tuple(f"{i:08d}" for i in range(10))
    reds = make_reds(tmp_path / "reds", clips=3, frames=frames)
    gopro = make_gopro(tmp_path / "gopro", frames=20)
    data = SRC.find_motion_data([reds, gopro])
    alone = [PR.load_reds(reds), PR.load_gopro(gopro)]
    assert data.kind == "combined"
    assert len(data.train) == sum(len(d.train) for d in alone)
    assert len(data.val) == sum(len(d.val) for d in alone)
    assert data.test.names == alone[0].test.names + alone[1].test.names
    groups = data.groups()
    assert list(groups) == ["REDS clip 000, unseen scene", "GoPro GOPR0001_00_00, later frames"]
    assert groups["GoPro GOPR0001_00_00, later frames"] == list(range(10, 20))
    blurred, sharp = data.test.load(12)
    np.testing.assert_array_equal(blurred, alone[1].test.load(2)[0])
    assert data.test.subset([0, 12]).names == [data.test.names[0], data.test.names[12]]
    joined = SRC.find_motion_data(f"{reds}{os.pathsep}{gopro}")
    assert joined.test.names == data.test.names


def test_dihedral_turns_both_images_of_a_pair_alike():
    rng = np.random.default_rng(0)
    blurred = rng.random((16, 8, 8, 3)).astype(np.float32)
    turned_b, turned_s = P.dihedral(blurred, blurred.copy(), seed=[1, 2])
    np.testing.assert_array_equal(turned_b, turned_s)  # the same turn for both
    again = P.dihedral(blurred, blurred, seed=[1, 2])[0]
    np.testing.assert_array_equal(turned_b, again)  # a pure function of the seed
    for k in range(16):  # each patch is one of the 8 flips/rotations of its original
        variants = [np.rot90(blurred[k], r) for r in range(4)]
        variants += [v[:, ::-1] for v in variants]
        assert any(np.array_equal(turned_b[k], v) for v in variants)
    assert not np.array_equal(turned_b, blurred)  # 16 draws: not all the identity
