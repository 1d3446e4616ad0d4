"""Does a faster arithmetic keep the motion model's quality? ``python -m deblurlab.perf
--frame-quality``.

``--frame`` times a bfloat16 inference path with seeded random weights, which says nothing about
what it does to a restoration. This check restores whole test frames of the first test group found
(beside the checkout: REDS clip 000, the scene chapter 05 never trains or validates on) with the
shipped ``srndeblur_reds`` under each Keras dtype policy, and reports per policy the mean PSNR, the
paired difference to float32 with its 95% interval (``core.stats.paired_difference``), the largest
absolute output difference and the median seconds a frame (the first call, which traces, left
out). The record goes to ``tuning/<machine key>.frame-quality.json`` beside the speed record.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

MODEL = "srndeblur_reds"
REFERENCE = "float32"
POLICIES = (REFERENCE, "mixed_bfloat16")


def restore_all(model_name: str, policy: str, frames) -> tuple[list[np.ndarray], list[float]]:
    """Every (blurred, sharp) frame restored by the shipped ``model_name`` built under
    ``policy``: the outputs and the seconds of each call."""
    import keras

    from ..deblur.networks import load_model
    from ..training.inference import deblur_image

    previous = keras.mixed_precision.dtype_policy().name
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = load_model(model_name)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    outputs, seconds = [], []
    for blurred, _ in frames:
        start = time.perf_counter()
        outputs.append(deblur_image(model, blurred))
        seconds.append(time.perf_counter() - start)
    return outputs, seconds


def compare(frames, outputs: dict[str, list[np.ndarray]], seconds: dict[str, list[float]]):
    """The record's ``policies``: per policy, PSNR, its paired difference to ``REFERENCE``, the
    largest output difference and the median seconds a frame."""
    from ..core import stats
    from ..core.metrics import psnr_per_image

    sharp = [s for _, s in frames]
    psnr = {
        p: np.array([float(psnr_per_image(o, s)[0]) for o, s in zip(outs, sharp)])
        for p, outs in outputs.items()
    }
    blurred = np.array([float(psnr_per_image(b, s)[0]) for b, s in frames])
    out = {}
    for policy, values in psnr.items():
        diff = stats.paired_difference(values, psnr[REFERENCE])
        timed = seconds[policy][1:] or seconds[policy]
        out[policy] = {
            "psnr": float(values.mean()),
            "gain_over_blurred_db": float((values - blurred).mean()),
            f"minus_{REFERENCE}_db": float(diff["mean"]),
            f"minus_{REFERENCE}_ci": [float(diff["low"]), float(diff["high"])],
            "max_abs_output_diff": float(
                max(np.abs(a - b).max() for a, b in zip(outputs[policy], outputs[REFERENCE]))
            ),
            "median_s": float(statistics.median(timed)),
        }
    return out


def summary(record: dict) -> str:
    """The record in a few lines."""
    lines = [f"{record['model']} on {record['frames']} frames of {record['group']}:"]
    ref = record["policies"][REFERENCE]["median_s"]
    for policy, r in record["policies"].items():
        low, high = r[f"minus_{REFERENCE}_ci"]
        lines.append(
            f"  {policy:15s} PSNR {r['psnr']:.3f} dB (gain {r['gain_over_blurred_db']:+.3f}), "
            f"vs {REFERENCE} {r[f'minus_{REFERENCE}_db']:+.4f} dB [{low:+.4f}, {high:+.4f}], "
            f"max |diff| {r['max_abs_output_diff']:.1e}, {r['median_s']:.2f} s/frame "
            f"(x{ref / r['median_s']:.2f})"
        )
    return "\n".join(lines)


def main(args) -> dict:
    """``--frame-quality``: run the check on this machine and write its record (``--out``)."""
    from ..core.host import cpu_name
    from ..data.sources import find_motion_data
    from ..runtime import compute
    from ..runtime.provenance import git_commit, today

    data = find_motion_data()
    group, members = next(iter(data.groups().items()))
    frames = [data.test.load(i) for i in members]
    outputs, seconds = {}, {}
    for policy in POLICIES:
        outputs[policy], seconds[policy] = restore_all(MODEL, policy, frames)
    record = {
        "kind": "frame quality by dtype policy",
        "model": MODEL,
        "group": group,
        "frames": len(frames),
        "data": data.source,
        "machine": cpu_name(),
        "date": today(),
        "commit": git_commit(),
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "policies": compare(frames, outputs, seconds),
    }
    default = compute.TUNING_DIR / f"{compute.machine_key()}.frame-quality.json"
    out = Path(args.out) if args.out else default
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(summary(record))
    print(f"wrote {out}")
    return record
