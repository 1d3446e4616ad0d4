"""Blurred/sharp frame pairs: REDS and GoPro loaders, the report's split protocol, and the offline
fallback; ``deblurlab.data.sources.find_motion_data()`` finds and combines them.

Layouts read here:

- REDS (Nah et al. 2019): ``<root>/train_sharp/<clip>/<frame>.png`` with ``train_blur/`` (or
  ``train_blur_jpeg/``, JPEG frames) beside it, and the same for ``val_*``. Clips ``000``-``239``
  of 100 frames ``00000000``-``00000099``, each 1280x720.
- GoPro (Nah et al. 2017):
  ``<root>/GOPRO_Large/{train,test}/<scene>/{blur,blur_gamma,sharp}/NNNNNN.png`` (``root`` may
  also be the ``GOPRO_Large`` folder itself).

A pair is matched by the frame's file name (without its extension) in the blurred and sharp
folders of one clip, and both images must have the same size. A missing folder, a frame without
its partner, or an unreadable image raises ``MotionDataError`` naming the file and the fix.

The report's REDS protocol (``reds_protocol``): the first 24 training clips are the test set;
training uses half of the remaining frames, those matching ``000000[5-9][0-9]`` (frames 50-99).
"""

from __future__ import annotations

import fnmatch
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .frames import (
    FIX_HINT,
    IMAGE_SUFFIXES,
    FileFrames,
    FramePair,
    MotionData,
    MotionDataError,
    image_size,
)

REDS_TEST_CLIPS = 24
REDS_HALF_GLOB = "000000[5-9][0-9]"  # the report's half training set: frames 50-99 of each clip
# The one-scene GoPro sample (53 frames) is split in time: the last TEST frames are the test set,
# the VAL frames before them validate, and GAP frames before those are dropped so that no training
# frame is a near neighbour of a held-out one.
TEMPORAL_SPLIT = dict(test=10, val=4, gap=3)
# A REDS folder with too few clips for the report's protocol (the 3-clip sample): its first clip is
# the test scene, whole, and the other clips are split in time into training and validation.
REDS_SAMPLE_SPLIT = dict(test=0, val=2, gap=2)


# --- folders ---------------------------------------------------------------------------------


def _images(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise MotionDataError(f"{folder} is missing. {FIX_HINT}")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def pair_folder(blur_dir: Path, sharp_dir: Path, scene: str) -> list[FramePair]:
    """Pairs of one clip, matched by frame name; a frame without its partner is an error."""
    blurred, sharp = _images(Path(blur_dir)), _images(Path(sharp_dir))
    for stem, path in blurred.items():
        if stem not in sharp:
            raise MotionDataError(
                f"{path} has no sharp frame {stem}.* in {sharp_dir}: every "
                "blurred frame needs its ground truth. Restore it or delete both."
            )
    for stem, path in sharp.items():
        if stem not in blurred:
            raise MotionDataError(
                f"{path} has no blurred frame {stem}.* in {blur_dir}: every "
                "sharp frame needs its blurred partner. Restore it or delete both."
            )
    if not sharp:
        raise MotionDataError(f"{sharp_dir} holds no .png or .jpg frame. {FIX_HINT}")
    return [FramePair(blurred[stem], sharp[stem], scene, stem) for stem in sorted(sharp)]


def check_pairs(pairs: list[FramePair], verify: bool = False, workers: int = 8) -> None:
    """Read every pair's headers (and, with ``verify``, check the files' integrity) in parallel;
    a pair whose two images differ in size is an error naming both files."""

    def check(pair):
        a, b = image_size(pair.blurred, verify), image_size(pair.sharp, verify)
        if a != b:
            raise MotionDataError(
                f"{pair.blurred} is {a[0]}x{a[1]} but its sharp frame {pair.sharp} "
                f"is {b[0]}x{b[1]}: a pair must have one size."
            )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(check, pairs))


def reds_blur_dir(root: Path, split: str) -> Path:
    """The blurred-frame folder of a REDS ``split`` (``<split>_blur`` or
    ``<split>_blur_jpeg``); raises ``MotionDataError`` if neither exists."""
    for name in (f"{split}_blur", f"{split}_blur_jpeg"):
        if (root / name).is_dir():
            return root / name
    raise MotionDataError(
        f"{root} has no {split}_blur/ or {split}_blur_jpeg/ folder beside "
        f"{split}_sharp/. {FIX_HINT}"
    )


def find_reds(root, split: str = "train") -> list[FramePair]:
    """Every pair of one REDS split (``train`` or ``val``), clip by clip, in name order."""
    root = Path(root)
    sharp_root = root / f"{split}_sharp"
    if not sharp_root.is_dir():
        raise MotionDataError(f"{sharp_root} is missing: not a REDS folder. {FIX_HINT}")
    blur_root = reds_blur_dir(root, split)
    pairs = []
    for clip in sorted(p.name for p in sharp_root.iterdir() if p.is_dir()):
        pairs += pair_folder(blur_root / clip, sharp_root / clip, clip)
    if not pairs:
        raise MotionDataError(f"{sharp_root} holds no clip folder. {FIX_HINT}")
    return pairs


def gopro_root(root) -> Path:
    """The ``GOPRO_Large`` folder inside ``root`` if there is one, else ``root`` itself."""
    root = Path(root)
    return root / "GOPRO_Large" if (root / "GOPRO_Large").is_dir() else root


def find_gopro(root, split: str = "train", blur: str = "blur") -> list[FramePair]:
    """Every pair of one GoPro split, scene by scene. ``blur`` is ``"blur"`` (the benchmark's
    input) or ``"blur_gamma"``."""
    split_root = gopro_root(root) / split
    if not split_root.is_dir():
        raise MotionDataError(f"{split_root} is missing: not a GoPro folder. {FIX_HINT}")
    pairs = []
    for scene in sorted(p.name for p in split_root.iterdir() if p.is_dir()):
        pairs += pair_folder(split_root / scene / blur, split_root / scene / "sharp", scene)
    if not pairs:
        raise MotionDataError(f"{split_root} holds no scene folder. {FIX_HINT}")
    return pairs


def is_reds(root) -> bool:
    """Whether ``root`` looks like a REDS folder (``train_sharp/`` or ``val_sharp/``)."""
    return (Path(root) / "train_sharp").is_dir() or (Path(root) / "val_sharp").is_dir()


def is_gopro(root) -> bool:
    """Whether ``root`` looks like a GoPro folder (``train/`` or ``test/`` under its root)."""
    base = gopro_root(root)
    return (base / "train").is_dir() or (base / "test").is_dir()


# --- protocols -------------------------------------------------------------------------------


def scenes(pairs: list[FramePair]) -> list[str]:
    """The sorted distinct scene names of ``pairs``."""
    return sorted({p.scene for p in pairs})


def reds_protocol(
    pairs: list[FramePair],
    n_test_clips: int = REDS_TEST_CLIPS,
    frame_glob: str | None = REDS_HALF_GLOB,
) -> dict[str, list[FramePair]]:
    """The report's split of the REDS training set: the first ``n_test_clips`` clips (all their
    frames) are the test set; the other clips give the training frames matching ``frame_glob``."""
    clips = scenes(pairs)
    if len(clips) <= n_test_clips:
        raise MotionDataError(
            f"the REDS training set has {len(clips)} clips; the protocol needs more "
            f"than {n_test_clips} (the first {n_test_clips} are the test set)."
        )
    test_clips = set(clips[:n_test_clips])
    test = [p for p in pairs if p.scene in test_clips]
    train = [
        p
        for p in pairs
        if p.scene not in test_clips
        and (frame_glob is None or fnmatch.fnmatchcase(p.frame, frame_glob))
    ]
    if not train:
        raise MotionDataError(
            f"no training frame of clips {clips[n_test_clips]}... matches "
            f"{frame_glob!r} (frames 50-99)."
        )
    return {"train": train, "test": test}


def temporal_split(
    pairs: list[FramePair], test: int, val: int, gap: int
) -> dict[str, list[FramePair]]:
    """Per scene, in frame order: training frames, ``gap`` dropped frames, ``val`` validation
    frames, then the last ``test`` frames."""
    out = {"train": [], "val": [], "test": []}
    for scene in scenes(pairs):
        frames = [p for p in pairs if p.scene == scene]
        if len(frames) < test + val + gap + 1:
            raise MotionDataError(
                f"scene {scene} has {len(frames)} frames; the temporal split needs at "
                f"least {test + val + gap + 1} ({test} test, {val} val, {gap} gap)."
            )
        cut = len(frames) - test - val - gap
        out["train"] += frames[:cut]
        out["val"] += frames[cut + gap : cut + gap + val]
        out["test"] += frames[len(frames) - test :]
    return out


def _frame_range(pairs: list[FramePair]) -> str:
    return f"{pairs[0].frame}-{pairs[-1].frame}" if pairs else "none"


def load_reds(root, verify: bool = False) -> MotionData:
    """The REDS folder ``root`` split by the report's protocol (``verify`` checks every
    pair's image sizes)."""
    root = Path(root)
    found = find_reds(root, "train")
    if len(scenes(found)) <= REDS_TEST_CLIPS and not (root / "val_sharp").is_dir():
        return _load_reds_sample(root, found, verify)
    protocol = reds_protocol(found)
    if (root / "val_sharp").is_dir():
        val, val_note = find_reds(root, "val"), "REDS val_* clips for validation"
    else:  # no official validation split: hold out the last training clip instead
        last = scenes(protocol["train"])[-1]
        val = [p for p in protocol["train"] if p.scene == last]
        protocol["train"] = [p for p in protocol["train"] if p.scene != last]
        val_note = f"training clip {last} held out for validation (no val_* folder)"
    for split in (protocol["train"], val, protocol["test"]):
        check_pairs(split, verify)
    test_clips = scenes(protocol["test"])
    text = (
        f"the report's protocol: clips {test_clips[0]}-{test_clips[-1]} are the test set, "
        f"training on frames 50-99 of the other clips; {val_note}"
    )
    return MotionData(
        "reds",
        "REDS",
        str(root),
        FileFrames(protocol["train"]),
        FileFrames(val),
        FileFrames(protocol["test"]),
        text,
    )


def _load_reds_sample(root: Path, pairs: list[FramePair], verify: bool) -> MotionData:
    """A few REDS clips: the first is the test scene, never trained or validated on; the others
    split in time (``REDS_SAMPLE_SPLIT``)."""
    clips = scenes(pairs)
    if len(clips) < 2:
        raise MotionDataError(
            f"{root} holds one REDS clip; a test scene and a training scene need two or more."
        )
    test = [p for p in pairs if p.scene == clips[0]]
    parts = temporal_split([p for p in pairs if p.scene != clips[0]], **REDS_SAMPLE_SPLIT)
    for split in (parts["train"], parts["val"], test):
        check_pairs(split, verify)
    gap = REDS_SAMPLE_SPLIT["gap"]
    text = (
        f"clip {clips[0]} is the test scene (never trained or validated on); clips "
        f"{', '.join(clips[1:])} split in time: the last {REDS_SAMPLE_SPLIT['val']} frames "
        f"validate, the {gap} before them are dropped, the rest train"
    )
    return MotionData(
        "reds-sample",
        f"REDS sample (clips {', '.join(clips)})",
        str(root),
        FileFrames(parts["train"], cache=True),
        FileFrames(parts["val"], cache=True),
        FileFrames(test),
        text,
        test_groups={f"REDS clip {clips[0]}, unseen scene": list(range(len(test)))},
    )


def load_gopro(
    root, blur: str = "blur", verify: bool | None = None, split: dict | None = None
) -> MotionData:
    """GoPro with its official train/test scenes, or, when only one scene (or no test/ folder) is
    present, as in the shared sample, a temporal split of each scene's frames."""
    base = gopro_root(root)
    train = find_gopro(base, "train", blur)
    if (base / "test").is_dir() and len(scenes(train)) > 1:
        test = find_gopro(base, "test", blur)
        last = scenes(train)[-1]
        val = [p for p in train if p.scene == last]
        train = [p for p in train if p.scene != last]
        kind, label = "gopro", "GoPro"
        groups = {}
        text = (
            f"official split: {len(scenes(train))} training scenes, "
            f"{len(scenes(test))} test scenes; "
            f"training scene {last} held out for validation"
        )
    else:
        parts = temporal_split(train, **(split or TEMPORAL_SPLIT))
        train, val, test = parts["train"], parts["val"], parts["test"]
        names = ", ".join(scenes(train))
        gap = (split or TEMPORAL_SPLIT)["gap"]
        kind, label = "gopro-sample", f"GoPro sample (scene {names})"
        groups = {f"GoPro {names}, later frames": list(range(len(test)))}
        text = (
            f"temporal split of each scene: frames {_frame_range(train)} train, "
            f"{gap} frames dropped, "
            f"{_frame_range(val)} validation, {_frame_range(test)} test"
        )
    small = len(train) + len(val) + len(test) <= 2000
    for part in (train, val, test):
        check_pairs(part, verify=small if verify is None else verify)
    return MotionData(
        kind,
        label,
        str(base),
        FileFrames(train, cache=small),
        FileFrames(val, cache=small),
        FileFrames(test),
        text,
        test_groups=groups,
    )
