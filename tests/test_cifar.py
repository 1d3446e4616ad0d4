import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from deblurlab.data import cifar
from deblurlab.data.cifar import CifarDataError, load_cifar10, load_path, split_cifar10


def fake_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def write_binary(path, images, labels):
    planar = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    path.write_bytes(np.concatenate([labels[:, None].astype(np.uint8), planar], axis=1).tobytes())


def pickled(images, labels):
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"data": data, b"labels": list(map(int, labels))})


def test_binary_folder_round_trip(tmp_path):
    images, labels = fake_images(5)
    write_binary(tmp_path / "data_batch_1.bin", images, labels)
    write_binary(tmp_path / "test_batch.bin", images[:2], labels[:2])
    data = load_path(tmp_path)
    np.testing.assert_array_equal(data.x_train, images)
    np.testing.assert_array_equal(data.y_train, labels)
    assert data.x_test.shape == (2, 32, 32, 3) and data.kind == "subset"


def test_record_layout_is_planar_red_green_blue(tmp_path):
    record = np.zeros(cifar.RECORD_BYTES, np.uint8)
    record[0] = 7
    record[1 + 0] = 10  # red, pixel (0, 0)
    record[1 + 1024 + 1] = 20  # green, pixel (0, 1)
    record[1 + 2048 + 32] = 30  # blue, pixel (1, 0)
    (tmp_path / "data_batch_1.bin").write_bytes(record.tobytes())
    data = load_path(tmp_path)
    assert data.y_train[0] == 7
    assert (
        data.x_train[0, 0, 0, 0] == 10
        and data.x_train[0, 0, 1, 1] == 20
        and data.x_train[0, 1, 0, 2] == 30
    )


def test_pickle_folder_matches_binary(tmp_path):
    images, labels = fake_images(4)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(pickled(images, labels))
    data = load_path(tmp_path)  # finds the cifar-10-batches-py child
    np.testing.assert_array_equal(data.x_train, images)


def make_archive(path, images, labels):
    with tarfile.open(path, "w:gz") as tar:
        raw = pickled(images, labels)
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))


def test_archive_with_wrong_md5_is_refused_unless_allowed(tmp_path):
    images, labels = fake_images(3)
    archive = tmp_path / "cifar-10-python.tar.gz"
    make_archive(archive, images, labels)
    with pytest.raises(CifarDataError, match="MD5"):
        load_path(archive)
    data = load_path(archive, allow_unverified_archive=True)
    np.testing.assert_array_equal(data.x_train, images)


def test_md5sum_reads_the_whole_file(tmp_path):
    path = tmp_path / "blob"
    payload = os.urandom(3 << 20)  # several read chunks
    path.write_bytes(payload)
    assert cifar.md5sum(path) == hashlib.md5(payload).hexdigest()
    assert cifar.OFFICIAL_PYTHON_ARCHIVE_MD5 == "c58f30108f718f92721af3b95e74349a"


def test_malicious_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(CifarDataError, match="not allowed"):
        load_path(tmp_path)


def test_truncated_binary_names_the_file(tmp_path):
    images, labels = fake_images(2)
    write_binary(tmp_path / "data_batch_1.bin", images, labels)
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CifarDataError, match="data_batch_1.bin is corrupt"):
        load_path(tmp_path)


def test_missing_explicit_path_names_path_and_fix(tmp_path):
    with pytest.raises(CifarDataError) as error:
        load_cifar10(tmp_path / "nowhere")
    assert "nowhere" in str(error.value) and "DEBLURLAB_CIFAR10" in str(error.value)


def test_environment_variable_is_used(tmp_path, monkeypatch):
    images, labels = fake_images(3)
    write_binary(tmp_path / "data_batch_1.bin", images, labels)
    monkeypatch.setenv(cifar.ENV_VAR, str(tmp_path))
    assert len(load_cifar10().x_train) == 3


def test_fallback_to_embedded_sample_is_loud(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(cifar.ENV_VAR, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(cifar, "shared_data_dir", lambda: tmp_path / "no-shared")
    with pytest.warns(UserWarning, match="embedded CIFAR-10 sample"):
        data = load_cifar10(allow_download=False)
    assert data.kind == "sample" and len(data.x_train) == 1000
    assert "NO CIFAR-10 DATASET FOUND" in capsys.readouterr().err
    assert "embedded offline sample" in data.source


def test_embedded_sample_is_small_and_real():
    size = (cifar.SAMPLE_DIR / "data_batch_1.bin").stat().st_size
    assert size <= 3 * 1024 * 1024
    data = cifar.load_sample()
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.x_train.std() > 30  # natural images, not zeros


def test_split_is_reproducible_and_disjoint():
    images, labels = fake_images(200)
    images[:, 0, 0, 0] = np.arange(200) % 256  # make images distinguishable
    images[:, 0, 0, 1] = np.arange(200) // 256
    data = cifar.CifarData(images, labels, None, None, cifar.DEFAULT_CLASS_NAMES, "subset", "x")
    a = split_cifar10(data, n_val=20, n_test=30, seed=0)
    b = split_cifar10(data, n_val=20, n_test=30, seed=0)
    np.testing.assert_array_equal(a.test, b.test)
    keys = [
        set(map(tuple, (s[:, 0, 0, :2] * 255).round().astype(int)))
        for s in (a.train, a.val, a.test)
    ]
    assert len(keys[0]) == 150 and len(keys[1]) == 20 and len(keys[2]) == 30
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert a.train.dtype == np.float32 and a.train.max() <= 1.0


def test_split_uses_the_test_batch_when_present():
    images, labels = fake_images(50)
    data = cifar.CifarData(
        images, labels, images[:10], labels[:10], cifar.DEFAULT_CLASS_NAMES, "full", "x"
    )
    s = split_cifar10(data, n_val=5, n_test=10)
    np.testing.assert_allclose(s.test, images[:10] / 255.0)
    assert len(s.train) == 45


def test_automatic_split_sizes_for_the_full_profile():
    images, labels = fake_images(100)
    subset = cifar.CifarData(images, labels, None, None, cifar.DEFAULT_CLASS_NAMES, "subset", "x")
    s = split_cifar10(subset, n_val=None, n_test=None)
    assert (len(s.train), len(s.val), len(s.test)) == (80, 10, 10)
    full = cifar.CifarData(
        images, labels, images[:30], labels[:30], cifar.DEFAULT_CLASS_NAMES, "full", "x"
    )
    s = split_cifar10(full, n_val=None, n_test=None)
    assert (len(s.train), len(s.val), len(s.test)) == (90, 10, 30)
