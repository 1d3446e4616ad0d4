"""Deblur your own images: ``python -m deblurlab.deblur``, by default with the motion model.

    python -m deblurlab.deblur photo.jpg frames/ --out restored/         # srndeblur_reds (zoo)
    python -m deblurlab.deblur blurred.png --out restored/ \\
        --weights runs/motion-combined-srndeblur_reds-mse-cosine-flips-default/best.weights.h5
    python -m deblurlab.deblur photo.jpg --model resunet1 --out restored/  # a CIFAR-10 model
    python -m deblurlab.deblur photo.jpg --out restored/ --engine onnx    # onnx/srndeblur_reds.onnx

INPUT is any number of image files (PNG or JPEG, any size; grayscale, RGBA and palette images are
converted to RGB, the alpha channel dropped) and folders (their .png/.jpg/.jpeg files, sorted).
Each result goes to ``OUT/<stem>.png`` as an 8-bit PNG of the output clipped to [0, 1]. An output
that already exists is reported and skipped unless ``--overwrite``; a file that cannot be read as
an image is reported with the reason and skipped while the others go on, and the exit code is 1
when any file failed (2 when the model cannot be loaded).

Without ``--model`` the model is ``srndeblur_reds`` (``deblur_models.DEFAULT_MODEL``), the
motion-blur model trained on REDS and GoPro frames. The shipped CIFAR-10 models stay available by
name (``--model resunet1``), with a note that they learnt a gaussian blur on 32x32 thumbnails.
The weights come from the zoo (``zoo.load``: ``zoo/<model>.weights.h5``, sha256 checked) unless
``--weights`` names a ``.weights.h5`` file (Keras ``save_weights`` or zoo format). Without either,
the error names the missing file and the fix: ``python -m deblurlab.reference --models
srndeblur_reds``, or ``--weights`` with a chapter 05 run's ``runs/<run>/best.weights.h5``.
The network is rebuilt for any input size where its weights do not depend on the image size (every
registered model except ``srndeblur_cifar_lstm``, which runs on tiles of its 32x32 training
size). The inference itself (reflection padding to the network's size multiple, whole frames up to
``MAX_PIXELS`` through one traced graph per frame size, larger ones in tiles (``--tile``) that
overlap and are cross-faded so that no seam shows) is ``deblurlab.training.inference``, the models
and their weights ``deblurlab.deblur.networks``; this module adds the files and the command line.

``--engine onnx`` runs the model that ``python -m deblurlab.export NAME`` wrote (``onnx/NAME.onnx``,
or ``--onnx PATH``; without either, ``srndeblur_reds``'s) through onnxruntime, with the same padding
and tiles, and imports neither TensorFlow nor Keras (``deblurlab.training.onnx_engine``).

Library use (the notebooks)::

    from deblurlab.deblur import cli as deblur, networks
    model = networks.load_model("srndeblur_reds")  # or weights="runs/.../best.weights.h5"
    # float32 (H, W, 3) in [0, 1]:
    restored = deblur.deblur_image(model, deblur.read_image("photo.jpg"))
    summary = deblur.deblur_files(model, ["photo.jpg", "frames/"], "restored/")
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..core.paths import display_path
from ..data.frames import IMAGE_SUFFIXES
from ..training import zoo
from ..training.inference import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    MAX_PIXELS,
    any_size,
    check_tile,
    deblur_image,
)
from .networks import DEFAULT_MODEL, DeblurError, describe, load_model, show_path, zoo_note

# --- images ------------------------------------------------------------------------------------


def read_image(path) -> np.ndarray:
    """An image file as float32 RGB in [0, 1], shape (H, W, 3), turned upright by its EXIF
    orientation. Grayscale, palette and RGBA images become RGB (alpha dropped); 16-bit grayscale
    keeps its precision. Any failure raises ``DeblurError`` naming the file and the reason."""
    from PIL import Image, ImageOps

    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(image, dtype=np.float64) / 65535.0
                return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1).astype(np.float32)
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DeblurError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DeblurError(f"{path} is a folder, not an image") from None
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for corrupt or foreign files
        raise DeblurError(f"{path} is not a readable image ({type(exc).__name__}: {exc})") from None
    return array.astype(np.float32) / 255.0


def write_png(image: np.ndarray, path) -> None:
    """``image`` (float, [0, 1]) as an 8-bit RGB PNG, written atomically (an interrupted run leaves
    no partial file that a rerun would then skip)."""
    from PIL import Image

    path = Path(path)
    data = np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        Image.fromarray(data).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def expand_inputs(inputs) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(image files in order, [(input, reason)] for inputs that give none): files as given,
    folders as their PNG/JPEG files sorted by name (not recursive), each file once."""
    files, problems = [], []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if found:
                files += found
            else:
                problems.append((path, f"{path} is a folder without any .png, .jpg or .jpeg file"))
        elif path.exists():
            files.append(path)
        else:
            problems.append((path, f"{path} does not exist"))
    unique = {}
    for path in files:  # a file named twice (alone and in its folder) is deblurred once
        unique.setdefault(path.resolve(), path)
    return list(unique.values()), problems


# --- files -------------------------------------------------------------------------------------


def deblur_files(
    model,
    paths,
    out_dir,
    overwrite: bool = False,
    tile: int | None = None,
    overlap: int = DEFAULT_OVERLAP,
    progress: bool = True,
    log=None,
) -> dict:
    """Deblur image files and folders (see ``expand_inputs``) into ``out_dir/<stem>.png``.

    A file that cannot be read is reported (by ``log``, default: printed) and skipped, as is an
    existing output unless ``overwrite``. Returns ``{"written": [output paths], "skipped":
    [(input, reason)], "failed": [(input, reason)], "seconds": float}``.
    """
    from tqdm.std import tqdm

    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = any_size(model)
    check_tile(model, tile, overlap)
    files, failed = expand_inputs([paths] if isinstance(paths, (str, Path)) else paths)
    written, skipped = [], []
    bar = tqdm(
        files, desc="deblur", unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True
    )
    say = log or (lambda text: bar.write(text, file=sys.stderr))

    def fail(path, reason):
        failed.append((path, reason))
        say(f"failed: {reason}; skipped")

    for reason in [r for _, r in failed]:
        say(f"failed: {reason}; skipped")
    claimed: dict[Path, Path] = {}
    for path in bar:
        bar.set_postfix_str(path.name, refresh=False)
        target = out_dir / f"{path.stem}.png"
        if target in claimed:
            fail(
                path,
                f"{path}: its output {target} is also that of {claimed[target]} "
                "(same name); rename one",
            )
            continue
        claimed[target] = path
        if target.exists() and target.resolve() == path.resolve():
            fail(path, f"{path}: its output would replace the input itself; choose another --out")
            continue
        if target.exists() and not overwrite:
            skipped.append((path, f"{target} exists (--overwrite to replace it)"))
            say(f"skipped: {path}: {skipped[-1][1]}")
            continue
        try:
            image = read_image(path)
        except DeblurError as exc:
            fail(path, str(exc))
            continue
        restored = deblur_image(model, image, tile=tile, overlap=overlap)
        try:
            write_png(restored, target)
        except OSError as exc:
            fail(path, f"{target} cannot be written ({type(exc).__name__}: {exc})")
            continue
        written.append(target)
    bar.close()
    return {
        "written": written,
        "skipped": skipped,
        "failed": failed,
        "seconds": time.perf_counter() - start,
    }


def summary_line(summary: dict, out_dir) -> str:
    """One line counting the files written, skipped and failed, with the time taken."""
    return (
        f"{len(summary['written'])} written, {len(summary['skipped'])} skipped, "
        f"{len(summary['failed'])} failed "
        f"in {summary['seconds']:.1f} s (outputs in {display_path(out_dir)})"
    )


# --- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.deblur",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files (PNG/JPEG) or folders of them"
    )
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help=f"a registered model (default: {DEFAULT_MODEL}, the motion-blur model; shipped here: "
        f"{', '.join(zoo.available()) or 'none'}; the CIFAR-10 ones learnt a gaussian blur on "
        "32x32 thumbnails); with --onnx PATH, the file's own by default",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (created): DIR/<stem>.png"
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help=(
            "a .weights.h5 file (a run's runs/<run>/best.weights.h5 or a zoo file); "
            "default: zoo/NAME.weights.h5"
        ),
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=None,
        metavar="N",
        help=f"tiles of N x N pixels (a multiple of 8); 0: always whole frames; default: whole "
        f"frames up to {MAX_PIXELS:,} pixels, else tiles of {DEFAULT_TILE}",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        metavar="PX",
        help=f"context each tile adds on each side (default {DEFAULT_OVERLAP}): neighbouring "
        "tiles share 2 x PX pixels, cross-faded over the middle PX",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (default: skip them)"
    )
    parser.add_argument(
        "--engine",
        choices=("keras", "onnx"),
        default="keras",
        help="keras (default): the Keras model and weights; onnx: the model exported by "
        "`python -m deblurlab.export NAME`, run by onnxruntime without TensorFlow or Keras",
    )
    parser.add_argument(
        "--onnx",
        default=None,
        metavar="PATH",
        help="with --engine onnx: the exported .onnx file (default: NAME.onnx in "
        "$DEBLURLAB_ONNX_DIR, else in onnx/ of the checkout, where the export writes it)",
    )
    return parser


def _load(args):
    """(model, the line that says what runs) for the chosen engine; raises DeblurError or
    onnx_engine.OnnxEngineError."""
    if args.engine == "onnx":
        from ..training import onnx_engine

        model = onnx_engine.load(args.model, args.onnx)
        return model, f"{onnx_engine.describe(model)}; {onnx_engine.weights_line(model)}"
    try:
        model = load_model(args.model, args.weights)
    except ModuleNotFoundError as exc:
        if exc.name not in ("keras", "tensorflow", "jax"):
            raise
        raise DeblurError(
            f"the keras engine needs Keras and a backend, and {exc.name} is not installed here: "
            "install requirements.txt, or run an exported model with --engine onnx "
            f"(`python -m deblurlab.export {args.model}` where Keras is installed)"
        ) from None
    if args.weights:
        return model, f"{describe(model)}; weights: {args.weights}"
    source = show_path(zoo.weights_path(args.model))
    return model, f"{describe(model)}; weights: {source}{zoo_note(args.model)}"


def main(argv=None) -> int:
    """The command line (``python -m deblurlab.deblur``); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.tile is not None and args.tile < 0:
        parser.error(f"--tile {args.tile}: use 0 (whole frames) or a positive multiple of 8")
    if args.overlap < 0:
        parser.error(f"--overlap {args.overlap}: use 0 or more pixels")
    defaulted = not args.model and not args.onnx
    if defaulted:
        args.model = DEFAULT_MODEL
    if args.engine == "onnx" and args.weights:
        parser.error(
            "--weights belongs to the keras engine; export those weights first "
            f"(`python -m deblurlab.export {args.model or 'NAME'} --weights {args.weights}`)"
        )
    if args.onnx and args.engine != "onnx":
        parser.error("--onnx needs --engine onnx")
    from ..training.onnx_engine import OnnxEngineError

    try:
        model, line = _load(args)
    except (DeblurError, OnnxEngineError) as exc:
        hint = ""
        if defaulted:
            shipped = ", ".join(zoo.available()) or "none"
            hint = (
                f" ({DEFAULT_MODEL} is the default model, for motion blur; --model NAME runs "
                f"another, e.g. a shipped CIFAR-10 one ({shipped}), which learnt a gaussian blur "
                "on 32x32 thumbnails.)"
            )
        print(f"python -m deblurlab.deblur: error: {exc}{hint}", file=sys.stderr)
        return 2
    print(line, flush=True)
    try:
        check_tile(model, args.tile, args.overlap)
    except ValueError as exc:
        parser.error(str(exc))
    summary = deblur_files(
        model, args.inputs, args.out, overwrite=args.overwrite, tile=args.tile, overlap=args.overlap
    )
    print(summary_line(summary, args.out), flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())


def deblur_frame_as_user(net, frames, index: int, tile=None) -> tuple[np.ndarray, str]:
    """Restore frame ``index`` of a frame set the way a user runs the command: a frame on disk
    goes through ``deblur_files`` (read, restore, write an 8-bit PNG, read it back); an in-memory
    frame through ``deblur_image``. Returns (restored image, one line saying what was done)."""
    import tempfile

    pairs = getattr(frames, "pairs", None)
    if pairs is None:
        return deblur_image(net, frames.load(index)[0], tile=tile), "in-memory frame: deblur_image"
    source = pairs[index].blurred
    with tempfile.TemporaryDirectory() as out_dir:
        summary = deblur_files(net, [source], out_dir, tile=tile, progress=False)
        return read_image(summary["written"][0]), f"{source.name}: {summary_line(summary, out_dir)}"
