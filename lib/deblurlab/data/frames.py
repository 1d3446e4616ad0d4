"""Frame files and frame sets: one image read with errors that name the file, a blurred/sharp
pair, and the indexable sets (on disk or in memory) that the motion study and the patch sampler
read. Finding REDS or GoPro folders and splitting them is ``deblurlab.data.pairs``'s work.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.paths import display_path

ENV_VAR = "DEBLURLAB_MOTION_DATA"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FIX_HINT = (
    f"Point the chapter at a REDS folder (holding train_sharp/ and train_blur/) or a GoPro "
    f"folder (holding GOPRO_Large/) with data_dir=... or ${ENV_VAR}; leave both unset to use "
    "../shared/data/gopro-sample beside the checkout or, offline, the synthetic skimage set."
)


class MotionDataError(RuntimeError):
    """A motion-blur folder or frame is missing, unpaired or unreadable; the message names it."""


# --- single images ---------------------------------------------------------------------------


def read_image(path) -> np.ndarray:
    """An image file as uint8 RGB of shape (H, W, 3); any failure names the file."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise MotionDataError(f"{path} does not exist. {FIX_HINT}") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for corrupt files
        raise MotionDataError(
            f"{path} is not a readable image ({type(exc).__name__}: {exc}). "
            "Re-copy or re-extract this file, or remove its pair."
        ) from exc
    return array


def image_size(path, verify: bool = False) -> tuple[int, int]:
    """(width, height) read from the file's header; ``verify`` also checks the whole file's
    integrity (PNG chunk checksums) without decoding it."""
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as image:
            size = image.size
            if verify:
                image.verify()
    except FileNotFoundError:
        raise MotionDataError(f"{path} does not exist. {FIX_HINT}") from None
    except Exception as exc:  # noqa: BLE001
        raise MotionDataError(
            f"{path} is not a readable image ({type(exc).__name__}: {exc}). "
            "Re-copy or re-extract this file, or remove its pair."
        ) from exc
    return size


@dataclass(frozen=True)
class FramePair:
    """The files of one blurred/sharp frame pair, with its scene and frame names."""

    blurred: Path
    sharp: Path
    scene: str
    frame: str  # the file name without extension, e.g. "00000050" or "000047"

    @property
    def name(self) -> str:
        """``scene/frame``, the pair's name in every set."""
        return f"{self.scene}/{self.frame}"


def load_pair(pair: FramePair) -> tuple[np.ndarray, np.ndarray]:
    """(blurred, sharp) as float32 RGB in [0, 1]; their sizes must agree."""
    blurred, sharp = read_image(pair.blurred), read_image(pair.sharp)
    if blurred.shape != sharp.shape:
        raise MotionDataError(
            f"{pair.blurred} is {blurred.shape[1]}x{blurred.shape[0]} but its sharp "
            f"frame {pair.sharp} is {sharp.shape[1]}x{sharp.shape[0]}: a pair must "
            "have one size."
        )
    return blurred.astype(np.float32) / 255.0, sharp.astype(np.float32) / 255.0


# --- frame sets --------------------------------------------------------------------------------


class FrameSet:
    """An indexable set of (blurred, sharp) float32 RGB frames in [0, 1]."""

    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as float32 (blurred, sharp) arrays of shape (H, W, 3) in [0, 1]."""
        raise NotImplementedError

    def subset(self, indices) -> FrameSet:
        """A frame set of the frames ``indices``, in that order."""
        raise NotImplementedError

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every frame."""
        raise NotImplementedError


class FileFrames(FrameSet):
    """Frames read from disk on demand; ``cache=True`` keeps each decoded pair (as uint8) after
    its first read, for small sets that are visited every epoch."""

    def __init__(self, pairs: list[FramePair], cache: bool = False):
        self.pairs = list(pairs)
        self.names = [p.name for p in self.pairs]
        self.cache = cache
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as float32 (blurred, sharp) arrays of shape (H, W, 3) in [0, 1]."""
        index = int(index)
        if self.cache and index in self._cache:
            blurred, sharp = self._cache[index]
        else:
            pair = self.pairs[index]
            blurred, sharp = read_image(pair.blurred), read_image(pair.sharp)
            if blurred.shape != sharp.shape:
                load_pair(pair)  # raises the size error naming both files
            if self.cache:
                with self._lock:
                    self._cache[index] = (blurred, sharp)
        return blurred.astype(np.float32) / 255.0, sharp.astype(np.float32) / 255.0

    def subset(self, indices) -> FileFrames:
        """A frame set of the frames ``indices``, in that order (same caching)."""
        return FileFrames([self.pairs[i] for i in indices], self.cache)

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every frame, read from the file headers."""
        return [image_size(p.sharp)[::-1] for p in self.pairs]


class ArrayFrames(FrameSet):
    """Frames held in memory (the synthetic set)."""

    def __init__(self, names, blurred, sharp):
        self.names, self.blurred, self.sharp = list(names), list(blurred), list(sharp)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as float32 (blurred, sharp) arrays of shape (H, W, 3) in [0, 1]."""
        index = int(index)
        return (
            np.asarray(self.blurred[index], np.float32),
            np.asarray(self.sharp[index], np.float32),
        )

    def subset(self, indices) -> ArrayFrames:
        """A frame set of the frames ``indices``, in that order."""
        return ArrayFrames(
            [self.names[i] for i in indices],
            [self.blurred[i] for i in indices],
            [self.sharp[i] for i in indices],
        )

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every frame."""
        return [tuple(s.shape[:2]) for s in self.sharp]


class ConcatFrames(FrameSet):
    """Several frame sets read as one, in order (the motion sources combined)."""

    def __init__(self, parts):
        self.parts = [p for p in parts if len(p)]
        self.names = [name for part in self.parts for name in part.names]
        self._starts = np.cumsum([0] + [len(p) for p in self.parts])

    def _locate(self, index: int) -> tuple[FrameSet, int]:
        index = int(index)
        if not 0 <= index < len(self.names):
            raise IndexError(f"frame {index} of a set of {len(self.names)}")
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        return self.parts[k], index - int(self._starts[k])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``index`` as float32 (blurred, sharp) arrays of shape (H, W, 3) in [0, 1]."""
        part, local = self._locate(index)
        return part.load(local)

    def subset(self, indices) -> FrameSet:
        """A frame set of the frames ``indices``, in that order."""
        located = [self._locate(i) for i in indices]
        return ConcatFrames([part.subset([local]) for part, local in located])

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of every frame."""
        return [size for part in self.parts for size in part.sizes()]


@dataclass
class MotionData:
    """A motion-blur data set split into train/val/test frame sets, with its kind, a
    short label, where it was found and the split protocol in words."""

    kind: str  # "reds", "gopro", "gopro-sample" or "synthetic"
    label: str  # short name for tables, e.g. "GoPro sample (scene GOPR0372_07_00)"
    path: str
    train: FrameSet
    val: FrameSet
    test: FrameSet
    protocol: str
    notes: list[str] = field(default_factory=list)
    # Named groups of test frames (indices into ``test``), reported apart: e.g. a scene that
    # training saw and one that it never saw. Empty: one group, every test frame.
    test_groups: dict[str, list[int]] = field(default_factory=dict)

    def groups(self) -> dict[str, list[int]]:
        """The test groups, or one group of every test frame named after the data."""
        return self.test_groups or {f"{self.label}, test": list(range(len(self.test)))}

    @property
    def source(self) -> str:
        """One sentence for provenance footnotes: which data, how split, from where."""
        return (
            f"{self.label}: {len(self.train):,} training / {len(self.val):,} validation / "
            f"{len(self.test):,} test frame pairs from {display_path(self.path)} ({self.protocol})"
        )

    @property
    def is_real(self) -> bool:
        """Whether the frames are real captures (not the synthetic camera-shake set)."""
        return self.kind != "synthetic"
