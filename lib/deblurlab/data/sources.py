"""Where the motion-blur data come from: every REDS and GoPro folder found, combined into one
training set whose sources keep their own splits and test groups, or the offline synthetic set.

    data = find_motion_data()          # ../shared/data's REDS and GoPro folders, combined
    data = find_motion_data("/data/REDS" + os.pathsep + "/data/GOPRO_Large")

The loaders of each layout and their split protocols are ``deblurlab.data.pairs``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.paths import shared_data_dir
from .frames import ENV_VAR, FIX_HINT, ArrayFrames, ConcatFrames, MotionData, MotionDataError
from .pairs import is_gopro, is_reds, load_gopro, load_reds


def load_synthetic(kernels_per_photo: int = 8, seed: int | None = None) -> MotionData:
    """The offline default: skimage's colour photographs blurred by synthetic camera shake."""
    from . import motion

    seed = motion.SYNTHETIC_SEED if seed is None else seed
    photos = motion.available_photos()
    if not photos:
        raise MotionDataError(
            "none of skimage.data's colour photographs is available offline. " + FIX_HINT
        )
    held_out = set(motion.SYNTHETIC_TEST_PHOTOS) | set(motion.SYNTHETIC_VAL_PHOTOS)
    groups = {
        "train": {k: v for k, v in photos.items() if k not in held_out},
        "val": {k: v for k, v in photos.items() if k in motion.SYNTHETIC_VAL_PHOTOS},
        "test": {k: v for k, v in photos.items() if k in motion.SYNTHETIC_TEST_PHOTOS},
    }
    sets = {}
    for split, chosen in groups.items():
        pairs = motion.make_synthetic_pairs(chosen, kernels_per_photo, seed)
        sets[split] = ArrayFrames(pairs.names, pairs.blurred, pairs.sharp)
    text = (
        f"{kernels_per_photo} random camera-shake kernels a photo (seed {seed}); photos "
        f"{', '.join(groups['train'])} train, {', '.join(groups['val'])} validate, "
        f"{', '.join(groups['test'])} test"
    )
    return MotionData(
        "synthetic",
        "synthetic camera shake on skimage photographs",
        "skimage.data (offline)",
        sets["train"],
        sets["val"],
        sets["test"],
        text,
    )


def shared_motion_dirs() -> list[Path]:
    """Folders beside the checkout that are used automatically, every one found, in order."""
    base = shared_data_dir()
    names = ["reds", "REDS", "reds-sample", "gopro", "GoPro", "gopro-sample"]
    return [base / name for name in names]


def combine(parts: list[MotionData]) -> MotionData:
    """Several motion data sets as one: their training, validation and test frames joined,
    each source keeping its own split, and each source's test groups kept apart."""
    if len(parts) == 1:
        return parts[0]
    groups, offset = {}, 0
    for part in parts:
        for name, indices in part.groups().items():
            groups[name] = [offset + i for i in indices]
        offset += len(part.test)
    return MotionData(
        "combined",
        " + ".join(part.label for part in parts),
        os.pathsep.join(part.path for part in parts),
        ConcatFrames([part.train for part in parts]),
        ConcatFrames([part.val for part in parts]),
        ConcatFrames([part.test for part in parts]),
        "; ".join(f"{part.label}: {part.protocol}" for part in parts),
        [note for part in parts for note in part.notes],
        groups,
    )


def load_motion_path(path, verify: bool | None = None) -> MotionData:
    """The REDS or GoPro data set at ``path``; raises ``MotionDataError`` if it is neither."""
    path = Path(path).expanduser()
    if is_reds(path):
        return load_reds(path, bool(verify))
    if is_gopro(path):
        return load_gopro(path, verify=verify)
    raise MotionDataError(
        f"{path} is neither a REDS folder (train_sharp/, train_blur/) nor a GoPro "
        f"folder (GOPRO_Large/train/<scene>/...). {FIX_HINT}"
    )


def find_motion_data(data_dir=None, synthetic_kernels: int = 8) -> MotionData:
    """``data_dir``, else ``$DEBLURLAB_MOTION_DATA`` (either, when given, must work; several
    folders, a list or joined by ``os.pathsep``, are combined); else every REDS and GoPro folder
    beside the checkout in ``../shared/data``, combined; else the synthetic skimage set. The
    string ``"synthetic"`` forces the synthetic set."""
    explicit = data_dir or os.environ.get(ENV_VAR)
    if explicit == "synthetic":
        return load_synthetic(synthetic_kernels)
    if explicit:
        paths = explicit if isinstance(explicit, (list, tuple)) else str(explicit).split(os.pathsep)
        return combine([load_motion_path(p) for p in paths if str(p)])
    found = [
        load_motion_path(candidate)
        for candidate in shared_motion_dirs()
        if candidate.is_dir() and (is_reds(candidate) or is_gopro(candidate))
    ]
    return combine(found) if found else load_synthetic(synthetic_kernels)
