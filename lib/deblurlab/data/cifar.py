"""CIFAR-10 loading: the official binary and python-pickle formats, archives, the Keras cache,
a download when online, and a small real sample shipped in the package as the offline fallback.

Every loader returns uint8 images of shape (N, 32, 32, 3) and int64 labels, plus a ``source``
sentence that the report prints next to every number computed from the data.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import sys
import tarfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.paths import SAMPLE_DIR, display_path, file_digest, shared_data_dir

ENV_VAR = "DEBLURLAB_CIFAR10"
OFFICIAL_PYTHON_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
RECORD_BYTES = 1 + 32 * 32 * 3
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
DEFAULT_CLASS_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
FIX_HINT = (
    f"Point the loader at a CIFAR-10 folder with data_dir=... or ${ENV_VAR}: a folder of "
    "data_batch_N.bin files, a cifar-10-batches-py/ folder, or cifar-10-python.tar.gz "
    "(https://www.cs.toronto.edu/~kriz/cifar.html). Offline, ../shared/data/cifar10-subset works."
)


class CifarDataError(RuntimeError):
    """A CIFAR-10 file is missing, corrupt or untrusted. The message names the paths and the fix."""


@dataclass
class CifarData:
    """CIFAR-10 as read: uint8 (N, 32, 32, 3) images with labels (no test batch for some
    subsets), where from (``path``), and what kind of copy (``kind``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: list[str]
    kind: str  # "full", "subset" or "sample"
    path: str
    notes: list[str] = field(default_factory=list)

    @property
    def n_images(self) -> int:
        """The number of images, training and test together."""
        return len(self.x_train) + (0 if self.x_test is None else len(self.x_test))

    @property
    def source(self) -> str:
        """One line: which CIFAR-10 copy this is, how many images, and from where."""
        label = {
            "full": "CIFAR-10",
            "subset": "CIFAR-10 subset",
            "sample": "CIFAR-10 embedded offline sample",
        }[self.kind]
        test = "with test batch" if self.x_test is not None else "no test batch"
        return f"{label} ({self.n_images:,} real images, {test}) from {display_path(self.path)}"


# --- format readers -------------------------------------------------------------------------


def _records_to_arrays(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    if len(raw) == 0 or len(raw) % RECORD_BYTES:
        raise CifarDataError(
            f"{name} is corrupt: {len(raw):,} bytes is not a whole number of {RECORD_BYTES}-byte "
            f"CIFAR-10 records. Re-download or re-copy the file. {FIX_HINT}"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise CifarDataError(f"{name} is corrupt: label {labels.max()} is outside 0-9. {FIX_HINT}")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file of the official binary format: records of 1 label byte + 3,072 pixel bytes."""
    return _records_to_arrays(Path(path).read_bytes(), str(path))


class _CifarUnpickler(pickle.Unpickler):
    """Refuses every global except the numpy pieces that the CIFAR-10 pickles are made of."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR-10 pickle")


def _unpickle_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise CifarDataError(
            f"{name} is not a readable CIFAR-10 python batch ({exc}). {FIX_HINT}"
        ) from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise CifarDataError(f"{name} is corrupt: data has shape {data.shape}. {FIX_HINT}")
    return np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One file of the python format (``cifar-10-batches-py/data_batch_1``), unpickled safely."""
    return _unpickle_batch(Path(path).read_bytes(), str(path))


def md5sum(path: Path) -> str:
    """The MD5 hex digest of the file at ``path``."""
    return file_digest(path, "md5")


def _read_class_names(text: str | None) -> list[str]:
    if not text:
        return list(DEFAULT_CLASS_NAMES)
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return names if len(names) == 10 else list(DEFAULT_CLASS_NAMES)


def _assemble(
    parts: dict[str, tuple[np.ndarray, np.ndarray]], class_names, path, kind=None
) -> CifarData:
    train = [parts[name] for name in TRAIN_BATCHES if name in parts]
    if not train:
        raise CifarDataError(f"No data_batch_N file in {path}. {FIX_HINT}")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = parts.get(TEST_BATCH, (None, None))
    if kind is None:
        complete = len(train) == 5 and len(x_train) == 50_000 and x_test is not None
        kind = "full" if complete else "subset"
    return CifarData(x_train, y_train, x_test, y_test, class_names, kind, str(path))


def load_binary_folder(folder: Path, kind: str | None = None) -> CifarData:
    """CIFAR-10 from a folder of the binary format (``data_batch_N.bin``, ``test_batch.bin``);
    ``kind`` overrides the full/subset label."""
    folder = Path(folder)
    parts = {}
    for name in TRAIN_BATCHES + [TEST_BATCH]:
        file = folder / f"{name}.bin"
        if file.exists():
            parts[name] = read_binary_batch(file)
    meta = folder / "batches.meta.txt"
    return _assemble(
        parts, _read_class_names(meta.read_text() if meta.exists() else None), folder, kind
    )


def load_pickle_folder(folder: Path) -> CifarData:
    """CIFAR-10 from a folder of the python format (``data_batch_N``, ``test_batch``)."""
    folder = Path(folder)
    parts = {
        name: read_pickle_batch(folder / name)
        for name in TRAIN_BATCHES + [TEST_BATCH]
        if (folder / name).exists()
    }
    return _assemble(parts, list(DEFAULT_CLASS_NAMES), folder)


def load_python_archive(archive: Path, allow_unverified: bool = False) -> CifarData:
    """``cifar-10-python.tar.gz``. Unpickles only the official archive (MD5-checked) unless told."""
    archive = Path(archive)
    digest = md5sum(archive)
    if digest != OFFICIAL_PYTHON_ARCHIVE_MD5 and not allow_unverified:
        raise CifarDataError(
            f"{archive} has MD5 {digest}, not the official {OFFICIAL_PYTHON_ARCHIVE_MD5}. "
            "It will not be unpickled, since a pickle can run code. Re-download the official "
            "archive, or pass allow_unverified_archive=True if you trust this file."
        )
    parts = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and name in TRAIN_BATCHES + [TEST_BATCH]:
                    parts[name] = _unpickle_batch(
                        tar.extractfile(member).read(), f"{archive}:{member.name}"
                    )
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CifarDataError(
            f"{archive} is not a readable tar.gz archive ({exc}). {FIX_HINT}"
        ) from exc
    return _assemble(parts, list(DEFAULT_CLASS_NAMES), archive)


# --- discovery ------------------------------------------------------------------------------


def load_path(path: Path, allow_unverified_archive: bool = False) -> CifarData:
    """Load CIFAR-10 from a folder or archive in any supported format, or raise CifarDataError."""
    path = Path(path).expanduser()
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        return load_python_archive(path, allow_unverified_archive)
    if path.is_dir():
        if any((path / f"{n}.bin").exists() for n in TRAIN_BATCHES):
            return load_binary_folder(path)
        if any((path / n).exists() for n in TRAIN_BATCHES):
            return load_pickle_folder(path)
        for child in ("cifar-10-batches-bin", "cifar-10-batches-py"):
            if (path / child).is_dir():
                return load_path(path / child)
        for archive in ("cifar-10-python.tar.gz", "cifar-10-batches-py.tar.gz"):
            if (path / archive).is_file():
                return load_python_archive(path / archive, allow_unverified_archive)
    raise CifarDataError(f"No CIFAR-10 data at {path}. {FIX_HINT}")


def keras_cache_dir() -> Path:
    """The folder Keras downloads data sets to (``$KERAS_HOME/datasets``, default
    ``~/.keras/datasets``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _online(host: str = "www.cs.toronto.edu", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_sample() -> CifarData:
    """The small CIFAR-10 sample embedded in the package, for offline runs."""
    data = load_binary_folder(SAMPLE_DIR, kind="sample")
    data.path = "the package's embedded sample (lib/deblurlab/data/sample)"
    return data


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_cifar10(
    data_dir: str | Path | None = None,
    allow_download: bool = True,
    allow_unverified_archive: bool = False,
) -> CifarData:
    """Find and load CIFAR-10.

    Order: ``data_dir``, then ``$DEBLURLAB_CIFAR10`` (either one, when given, must work), the Keras
    cache, ``../shared/data/cifar10-subset`` beside the checkout, a Keras download when online, and
    last the embedded 1,000-image sample, announced loudly.
    """
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit:
        return load_path(Path(explicit), allow_unverified_archive)

    tried = []
    candidates = [
        keras_cache_dir() / "cifar-10-batches-py",
        keras_cache_dir() / "cifar-10-python.tar.gz",
        shared_data_dir() / "cifar10-subset",
    ]
    for candidate in candidates:
        tried.append(str(candidate))
        if candidate.exists():
            return load_path(candidate, allow_unverified_archive)

    if allow_download and _online():
        tried.append("keras.datasets.cifar10 download")
        try:
            import keras

            keras.datasets.cifar10.load_data()
            return load_path(keras_cache_dir() / "cifar-10-batches-py")
        except Exception as exc:  # noqa: BLE001 - fall through to the sample, loudly
            _announce(f"CIFAR-10 download failed: {exc}")

    data = load_sample()
    data.notes.append("Tried: " + "; ".join(tried))
    banner = "!" * 100
    message = (
        f"{banner}\nNO CIFAR-10 DATASET FOUND, so this run uses the embedded sample of "
        f"{data.n_images:,} real CIFAR-10 images.\nNumbers from it are indicative only. Tried: "
        f"{', '.join(tried)}.\n{FIX_HINT}\n{banner}"
    )
    _announce(message)
    warnings.warn("Using the embedded CIFAR-10 sample: " + FIX_HINT, stacklevel=2)
    return data


# --- splits ---------------------------------------------------------------------------------


@dataclass
class CifarSplits:
    """Train, validation and held-out test images as float32 in [0, 1]."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray
    source: str
    kind: str

    def describe(self) -> str:
        """One line: the data's source and the sizes of the train/val/test splits."""
        return (
            f"{self.source}; split {len(self.train):,} train / {len(self.val):,} val / "
            f"{len(self.test):,} test"
        )


def split_cifar10(
    data: CifarData,
    n_train: int | None = None,
    n_val: int | None = 500,
    n_test: int | None = 500,
    seed: int = 0,
    min_test: int = 0,
) -> CifarSplits:
    """A reproducible split. Without a test batch, the test images come out of the training
    batches first (fixed permutation), so they never overlap train or validation.

    ``n_val=None`` takes 10% of the training images; ``n_test=None`` the whole test batch, or
    without one 10% of the training images (at least ``min_test``). ``n_train=None`` takes all
    that remain. Test splits of one seed are nested: a smaller one is the start of a larger one.
    """
    tenth = round(0.1 * len(data.x_train))
    n_val = tenth if n_val is None else n_val
    n_test = (
        (max(tenth, min_test) if data.x_test is None else len(data.x_test))
        if n_test is None
        else n_test
    )
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    if data.x_test is not None:
        x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
        pool = order
    else:
        x_test, y_test = data.x_train[order[:n_test]], data.y_train[order[:n_test]]
        pool = order[n_test:]
    val_idx, train_idx = pool[:n_val], pool[n_val:]
    if n_train is not None:
        train_idx = train_idx[:n_train]
    if len(train_idx) == 0 or len(val_idx) == 0 or len(x_test) == 0:
        raise ValueError(
            f"{data.source} is too small for n_val={n_val}, n_test={n_test}: "
            "lower them in the profile."
        )

    def to_float(x):
        return x.astype(np.float32) / 255.0

    return CifarSplits(
        to_float(data.x_train[train_idx]),
        to_float(data.x_train[val_idx]),
        to_float(x_test),
        y_test,
        data.source,
        data.kind,
    )
