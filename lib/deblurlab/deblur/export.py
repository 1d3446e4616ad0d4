"""Export a model as ONNX, checked against Keras on real images: ``python -m deblurlab.export``.

    python -m deblurlab.export resunet1                     # -> onnx/resunet1.onnx + .json
    python -m deblurlab.export --all --out build/onnx       # every shipped model
    DEBLURLAB_ZOO=zoo/gpu python -m deblurlab.export caessc_d30_f64 --out onnx/gpu
    python -m deblurlab.export srndeblur_reds --weights runs/<run>/best.weights.h5

The network is the one ``python -m deblurlab.deblur`` runs (``deblur_models.load_model``: the zoo's
weights, sha256 checked, or a ``--weights`` file), built for any input size where its weights
allow it, with its finest-scale output only (SRNDeblur returns one image a scale; deblur uses the
last). It is converted on the TensorFlow backend by Keras' own exporter, or by tf2onnx where that
fails (``onnx_convert``), and the file is kept only if its outputs match Keras' within
``TOLERANCE`` on real images: the CIFAR-10 check slice of the zoo blurred by the library's blur,
and a crop of a real motion-blurred frame when the GoPro or REDS sample sits beside the checkout
(``../shared/data``). Beside ``NAME.onnx`` goes ``NAME.json``: the input-shape policy, opset,
sha256, the weights it came from, the exporter and each check's differences.

``python -m deblurlab.deblur ... --engine onnx`` runs the file with ONNX Runtime (``onnx_engine``),
without TensorFlow or Keras.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..core.paths import display_path, file_digest, shared_data_dir
from ..training import onnx_engine, zoo
from ..training.inference import input_size, network_multiple, run_batch
from .networks import DeblurError, load_model, show_path

# How far the ONNX outputs may be from Keras' (images in [0, 1]) on every check set: the largest
# |difference| (a quarter of one 8-bit level) and the mean one. Both engines compute in float32 and
# sum in different orders; in the trained ResUNet3 that noise reaches ~6e-4 on a few values and
# 1.4e-5 on average, and there TensorFlow's float32 output is the one farther from a float64 run of
# the same network (5e-4 against ONNX Runtime's 2e-4). Another model's weights differ by >1e-2.
TOLERANCE = 1e-3
MEAN_TOLERANCE = 1e-4
CHECK_IMAGES = 16  # CIFAR-10 check-slice images compared
FRAME_CROP = (128, 192)  # centre crop of the real frame compared (a multiple of 8)
FRAME_GLOBS = ("gopro-sample/GOPRO_Large/*/*/blur/*.png", "reds-sample/train_blur/*/*.png")


class ExportError(RuntimeError):
    """A model could not be exported or does not match Keras; the message names it and why."""


# ---------------------------------------------------------------------------------- networks


def inference_network(model):
    """The single-input, single-output network that deblur runs: ``model`` itself, or for a
    multi-scale model (SRNDeblur) the same layers with the finest (last) output only."""
    import keras

    if len(model.outputs) == 1:
        return model
    net = keras.Model(model.inputs[0], model.outputs[-1], name=model.name)
    net.required_multiple = network_multiple(model)
    return net


def _weights_source(name: str, weights) -> dict:
    if weights is not None:
        path = Path(weights).expanduser()
        return {"path": display_path(path), "sha256": file_digest(path, "sha256")}
    return {
        "path": show_path(zoo.weights_path(name)),
        "sha256": zoo.read_record(name)["sha256"],
        "zoo_record": show_path(zoo.record_path(name)),
    }


# ------------------------------------------------------------------------------ check images


def real_frame(data_dir=None) -> tuple[str, np.ndarray] | None:
    """(its path as shown, the frame as float32 RGB) for the first blurred frame of the GoPro or
    REDS sample in ``data_dir`` (default ``../shared/data``), or None when there is none."""
    from .cli import read_image

    base = Path(data_dir) if data_dir else shared_data_dir()
    for pattern in FRAME_GLOBS:
        found = sorted(base.glob(pattern))
        if found:
            return display_path(found[0]), read_image(found[0])
    return None


def check_sets(fixed_size, data_dir=None, n_images: int = CHECK_IMAGES, crop=FRAME_CROP):
    """The real images an export is checked on: [(description, (N, H, W, 3) float32 batch)].

    The zoo's CIFAR-10 check slice, blurred by the library's blur (as training sees them), and a
    centre crop of a real motion-blurred frame when one is found; a model with a fixed input size
    gets the crop as tiles of that size."""
    from ..data.blur import blur_in_batches
    from ..training.inference import centre_crop

    sharp, sigmas = zoo.check_images()
    blurred = blur_in_batches(sharp[:n_images], sigmas[:n_images])
    sets = [
        (
            f"{len(blurred)} CIFAR-10 check images ({show_path(zoo.zoo_dir() / zoo.CHECK_IMAGES)}) "
            "blurred by the library's gaussian blur, 32x32",
            np.asarray(blurred, np.float32),
        )
    ]
    frame = real_frame(data_dir)
    if frame is not None:
        where, image = frame
        patch = centre_crop(image, crop)
        h, w = fixed_size if fixed_size != (None, None) else patch.shape[:2]
        tiles = [
            patch[y : y + h, x : x + w]
            for y in range(0, patch.shape[0] - h + 1, h)
            for x in range(0, patch.shape[1] - w + 1, w)
        ]
        what = f"{len(tiles)} tiles {w}x{h} of " if len(tiles) > 1 else ""
        sets.append(
            (f"{what}the centre {patch.shape[1]}x{patch.shape[0]} of {where}", np.stack(tiles))
        )
    return sets


def compare(net, session_model, sets) -> list[dict]:
    """For each check set: the largest and mean |ONNX - Keras| over the network's raw outputs, and
    the range of the Keras output they were compared with."""
    out = []
    for what, batch in sets:
        keras_out = run_batch(net, batch)
        onnx_out = session_model.predict_on_batch(batch)
        if onnx_out.shape != keras_out.shape:
            raise ExportError(
                f"{net.name}: ONNX output {onnx_out.shape} differs from Keras' {keras_out.shape}"
            )
        diff = np.abs(onnx_out.astype(np.float64) - keras_out)
        out.append(
            {
                "images": what,
                "shape": list(batch.shape),
                "max_abs_diff": float(diff.max()),
                "mean_abs_diff": float(diff.mean()),
                "keras_output_range": [float(keras_out.min()), float(keras_out.max())],
            }
        )
    return out


# ---------------------------------------------------------------------------------- export


def _note(name: str) -> str | None:
    from ..models import get_spec

    if get_spec(name).dataset == "cifar10":
        return (
            f"{name} was trained on 32x32 CIFAR-10 thumbnails with gaussian blur, "
            "not on motion blur"
        )
    return None


def export_model(
    name: str, out_dir=None, weights=None, opset: int | None = None, data_dir=None
) -> dict:
    """Export model ``name`` (zoo weights, or the ``weights`` file) to ``out_dir/NAME.onnx`` with
    its record ``NAME.json`` (default folder: ``onnx_engine.export_dir()``), after checking it
    against Keras on real images (``check_sets``). Returns the record; raises ``ExportError``
    (nothing written) when the model cannot be loaded or converted or differs beyond
    ``TOLERANCE``."""
    try:
        model = load_model(name, weights)
    except DeblurError as exc:
        raise ExportError(str(exc)) from None
    out_dir = Path(out_dir) if out_dir else onnx_engine.export_dir()
    target = onnx_engine.onnx_path(name, out_dir)
    record = write_onnx(model, name, target, _weights_source(name, weights), opset, data_dir)
    onnx_engine.record_path(target).write_text(json.dumps(record, indent=1) + "\n")
    return record


def write_onnx(model, name: str, target, weights: dict, opset=None, data_dir=None) -> dict:
    """Convert the Keras ``model`` (registered as ``name``; ``weights``: where its weights came
    from, for the record) to the ONNX file ``target``, checked against Keras on ``check_sets``.
    Returns the record, which the caller writes; raises ``ExportError`` (no file kept)."""
    from ..runtime import provenance
    from ..training.onnx_convert import ConvertError, convert, versions

    start = time.perf_counter()
    net = inference_network(model)
    fixed = input_size(net)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
        path = Path(tmp) / target.name
        try:
            route = convert(net, path, opset)
        except ConvertError as exc:
            raise ExportError(str(exc)) from None
        session = onnx_engine.OnnxModel(path, {"model": name})
        checks = compare(net, session, check_sets(fixed, data_dir))
        worst = max(c["max_abs_diff"] for c in checks)
        mean = max(c["mean_abs_diff"] for c in checks)
        if not (worst <= TOLERANCE and mean <= MEAN_TOLERANCE):
            raise ExportError(
                f"{name}: the ONNX outputs differ from Keras' by up to {worst:.3g} (mean "
                f"{mean:.3g}; tolerance {TOLERANCE:g}, mean {MEAN_TOLERANCE:g}) on "
                f"{'; '.join(c['images'] for c in checks)}: the file was not kept."
            )
        any_size = fixed == (None, None)
        record = {
            "format": onnx_engine.RECORD_FORMAT,
            "model": name,
            "file": target.name,
            "sha256": file_digest(path, "sha256"),
            "bytes": path.stat().st_size,
            "params": int(net.count_params()),
            "required_multiple": network_multiple(net),
            "shape_policy": (
                "batch, height and width dynamic: fully convolutional, any size that is a "
                f"multiple of {network_multiple(net)} (deblur pads by reflection)"
                if any_size
                else f"batch dynamic; height and width fixed at {fixed[0]}x{fixed[1]}, the size "
                "the weights depend on (deblur runs it on tiles of that size)"
            ),
            "outputs": (
                "the only output"
                if len(model.outputs) == 1
                else f"the finest scale only (output {len(model.outputs)} of "
                f"{len(model.outputs)}), as deblur uses"
            ),
            "note": _note(name),
            "weights": weights,
            **route,
            "check": {
                "tolerance": {"max_abs_diff": TOLERANCE, "mean_abs_diff": MEAN_TOLERANCE},
                "max_abs_diff": worst,
                "mean_abs_diff": mean,
                "sets": checks,
            },
            "versions": versions(),
            "keras_backend": "tensorflow",
            "commit": provenance.git_commit(),
            "date": provenance.today(),
            "seconds": round(time.perf_counter() - start, 1),
        }
        os.replace(path, target)
    return record


# ------------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"models to export (shipped here: {', '.join(zoo.available()) or 'none'})",
    )
    parser.add_argument("--all", action="store_true", help="every model shipped in the zoo")
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help=f"output folder (default: ${onnx_engine.ONNX_DIR_ENV}, else onnx/ in the checkout)",
    )
    parser.add_argument(
        "--weights", default=None, metavar="PATH", help="a .weights.h5 file instead of the zoo's"
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (default: tf2onnx's)")
    return parser


def main(argv=None) -> int:
    """The command line; returns the exit status (1 when any model failed)."""
    parser = _parser()
    args = parser.parse_args(argv)
    names = zoo.available() if args.all else args.names
    if not names:
        parser.error("name a model, or pass --all for every shipped model")
    if args.weights and len(names) != 1:
        parser.error("--weights belongs to one model: name exactly one")
    failed = 0
    for name in names:
        try:
            record = export_model(name, args.out, args.weights, args.opset)
        except ExportError as exc:
            print(f"python -m deblurlab.export: error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        where = onnx_engine.onnx_path(name, args.out)
        route = "tf2onnx, Keras' exporter failed" if "fallback_reason" in record else "Keras"
        check = record["check"]
        print(
            f"{name}: {show_path(where)} ({record['bytes'] / 1e6:.1f} MB, opset "
            f"{record['opset']}, {route}); max |ONNX - Keras| {check['max_abs_diff']:.2g} "
            f"(tolerance {TOLERANCE:g}) on {len(check['sets'])} real image set(s); "
            f"{record['seconds']:.0f} s",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
