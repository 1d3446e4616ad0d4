"""Whole-frame seconds by engine: ``python -m deblurlab.perf --engines tensorflow,jax,onnx``.

For each model (``--models``, default ``ENGINE_MODELS``) on one 1280x720 frame (the first blurred
frame of the GoPro or REDS sample beside the checkout, else a smooth synthetic frame):

1. a TensorFlow child builds the model (the zoo's weights where shipped, else Keras' seeded
   initialisation: timing does not depend on the values), saves those weights and exports the
   ONNX file with ``deblurlab.deblur.export.write_onnx`` (checked against Keras as any export is);
2. one fresh child per engine loads the same weights (Keras on ``KERAS_BACKEND`` tensorflow or
   jax; onnxruntime without importing Keras), restores the frame once as a warm-up (tracing,
   XLA compilation) and then ``repeats`` times, timed, through ``inference.deblur_image(tile=0)``:
   the same padding and whole-frame call as ``python -m deblurlab.deblur`` (a model whose weights
   fix its input size runs on tiles of that size, as deblur runs it);
3. the record keeps every time, the median, the ratio of each median to Keras-on-TensorFlow's
   (> 1: faster) and the largest difference of each engine's restored frame from TensorFlow's.

All engines of a model are measured in the same run, one after the other. ``--threads N`` pins
every child to N CPUs (Linux) and sets TensorFlow's and onnxruntime's thread counts to N; by
default each engine uses the whole machine its own way. JAX is skipped, and says so, where it is
not importable. Timings on a shared machine are noisy: compare runs made on a quiet one.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ENGINES = ("tensorflow", "jax", "onnx")
ENGINE_MODELS = ("srndeblur_reds", "resunet1")
FRAME_SIZE = (720, 1280)
DEFAULT_REPEATS = 3
TIMEOUT_S = 900.0
LABELS = {"tensorflow": "Keras, TensorFlow", "jax": "Keras, JAX", "onnx": "onnxruntime"}


def frame(size=FRAME_SIZE) -> tuple[str, np.ndarray]:
    """(where it came from, a float32 (H, W, 3) frame of ``size``): the first blurred frame of the
    sample data beside the checkout, centre-cropped, else a smooth seeded synthetic frame."""
    from ..deblur.export import real_frame
    from ..training.inference import centre_crop

    found = real_frame()
    if found is not None and found[1].shape[0] >= size[0] and found[1].shape[1] >= size[1]:
        return found[0], centre_crop(found[1], size).astype(np.float32)
    rng = np.random.default_rng(0)
    coarse = rng.random((size[0] // 40 + 2, size[1] // 40 + 2, 3))
    image = np.kron(coarse, np.ones((40, 40, 1)))[: size[0], : size[1]]
    return "synthetic (no sample frame found)", image.astype(np.float32)


def _pin(threads: int | None) -> None:
    if threads and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:threads]
        os.sched_setaffinity(0, cpus)


def _thread_env(threads: int | None) -> dict:
    if not threads:
        return {}
    n = str(threads)
    return {"TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": n}


# ------------------------------------------------------------------------------------ children


def export_worker(settings: dict) -> dict:
    """Child (TensorFlow): the model with its weights saved to ``settings["weights"]`` and its ONNX
    export at ``settings["onnx"]``. Returns where the weights came from and the export record."""
    import keras

    from ..deblur.export import write_onnx
    from ..deblur.networks import load_model
    from ..models import build_model
    from ..training import zoo

    name = settings["name"]
    if name in zoo.available():
        model = load_model(name)
        source = f"{zoo.weights_path(name).parent.name}/{name}.weights.h5 (shipped)"
    else:
        keras.utils.set_random_seed(0)
        model = build_model(name, input_shape=(None, None, 3))
        source = (
            "Keras' initialisation, seed 0 (no shipped weights; timing does not depend on them)"
        )
    zoo.write_weights(model, Path(settings["weights"]), dtype="float32")
    record = write_onnx(model, name, settings["onnx"], {"path": source})
    return {"weights": source, "export": record}


def frame_worker(settings: dict) -> dict:
    """Child: one engine restores the frame once (warm-up) and ``repeats`` times, timed."""
    from ..training.inference import deblur_image, is_any_size
    from .clock import maxrss_mb
    from .machine import package_version

    _pin(settings.get("threads"))
    engine = settings["engine"]
    image = np.load(settings["frame"])
    start = time.perf_counter()
    if engine == "onnx":
        from ..training import onnx_engine

        model = onnx_engine.load(path=settings["onnx"], threads=settings.get("threads"))
        versions = {"onnxruntime": package_version("onnxruntime")}
    else:
        import keras

        from ..deblur.networks import load_model

        if keras.backend.backend() != engine:
            raise RuntimeError(f"KERAS_BACKEND is {keras.backend.backend()}, expected {engine}")
        model = load_model(settings["name"], settings["weights"])
        versions = {"keras": keras.__version__, engine: package_version(engine)}
    setup = time.perf_counter() - start
    tile = 0 if is_any_size(model) else None  # one call; a fixed-size model: its own tiles
    start = time.perf_counter()
    out = deblur_image(model, image, tile=tile)
    first = time.perf_counter() - start
    seconds = []
    for _ in range(settings["repeats"]):
        start = time.perf_counter()
        out = deblur_image(model, image, tile=tile)
        seconds.append(time.perf_counter() - start)
    np.save(settings["output"], out)
    return {
        "engine": engine,
        "setup_s": setup,
        "first_s": first,
        "seconds": seconds,
        "median_s": statistics.median(seconds),
        "peak_rss_mb": maxrss_mb(),
        "versions": versions,
        "imported": sorted(m for m in ("tensorflow", "keras", "jax") if m in sys.modules),
    }


# -------------------------------------------------------------------------------------- parent


def available(engine: str) -> str | None:
    """None when ``engine`` can run here, else why not."""
    package = {"tensorflow": "tensorflow", "jax": "jax", "onnx": "onnxruntime"}[engine]
    if importlib.util.find_spec(package) is None:
        return f"{package} is not installed"
    return None


def _run(settings: dict, env: dict, timeout_s: float) -> dict:
    from .child import run_model

    return run_model(settings.pop("name"), settings, timeout_s, env=env)


def bench_model(name: str, engines, image_path: Path, repeats: int, threads, tmp: Path) -> dict:
    """One model: the export child, then one timing child per engine. Returns the model's row."""
    weights, onnx = tmp / f"{name}.weights.h5", tmp / f"{name}.onnx"
    tf_env = {"KERAS_BACKEND": "tensorflow"}
    made = _run(
        {"name": name, "mode": "export", "weights": str(weights), "onnx": str(onnx)},
        tf_env,
        TIMEOUT_S,
    )
    row = {"name": name, "engines": {}}
    if "error" in made:
        return {**row, "error": f"export: {made['error']}"}
    export = made["export"]
    row.update(
        weights=made["weights"],
        onnx={k: export.get(k) for k in ("exporter", "fallback_reason", "opset", "shape_policy")},
        onnx_check_max_abs_diff=export["check"]["max_abs_diff"],
    )
    outputs = {}
    for engine in engines:
        print(f"  {name}: {LABELS[engine]} ...", end=" ", flush=True)
        missing = available(engine)
        if missing:
            row["engines"][engine] = {"engine": engine, "skipped": missing}
            print(f"skipped ({missing})", flush=True)
            continue
        output = tmp / f"{name}-{engine}.npy"
        env = {**_thread_env(threads), **({} if engine == "onnx" else {"KERAS_BACKEND": engine})}
        result = _run(
            {
                "name": name,
                "mode": "frame",
                "engine": engine,
                "frame": str(image_path),
                "weights": str(weights),
                "onnx": str(onnx),
                "output": str(output),
                "repeats": repeats,
                "threads": threads,
            },
            env,
            TIMEOUT_S,
        )
        row["engines"][engine] = result
        if "error" in result:
            print(f"FAILED: {result['error']}", flush=True)
            continue
        outputs[engine] = np.load(output)
        print(f"median {result['median_s']:.2f} s of {repeats}", flush=True)
    base = row["engines"].get("tensorflow", {}).get("median_s")
    for engine, result in row["engines"].items():
        if "median_s" in result and base:
            result["speedup_vs_tensorflow"] = base / result["median_s"]
        if engine in outputs and "tensorflow" in outputs:
            result["max_abs_diff_vs_tensorflow"] = float(
                np.abs(outputs[engine] - outputs["tensorflow"]).max()
            )
    return row


def run_engines(
    models, engines, repeats: int = DEFAULT_REPEATS, threads=None, size=FRAME_SIZE
) -> dict:
    """Every model through every engine on a frame of ``size`` (see the module docstring).
    Returns the record."""
    from ..core.host import cpu_features, cpu_name
    from ..runtime.provenance import git_commit, today

    where, image = frame(size)
    record = {
        "kind": "engines",
        "date": today(),
        "commit": git_commit(),
        "machine": f"{cpu_name()} ({cpu_features()})",
        "cores": os.cpu_count(),
        "onnxruntime_provider": "CPUExecutionProvider (Keras runs on the backend's device)",
        "frame": {"source": where, "shape": list(image.shape)},
        "repeats": repeats,
        "threads": threads or "each engine's default (the whole machine)",
        "method": (
            "one fresh process per engine and model; inference.deblur_image(tile=0) on the whole "
            "frame (reflection padding to the network's multiple, one call, crop, clip), once as a "
            "warm-up (first_s: tracing, XLA compilation) and then `repeats` times; median_s is the "
            "median of those; speedup_vs_tensorflow = TensorFlow's median / this engine's"
        ),
        "models": [],
        "notes": ["Timings on a shared machine are noisy; compare runs made on a quiet one."],
    }
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="deblurlab-engines-") as tmp:
        image_path = Path(tmp) / "frame.npy"
        np.save(image_path, image)
        for name in models:
            record["models"].append(
                bench_model(name, engines, image_path, repeats, threads, Path(tmp))
            )
    record["seconds"] = time.perf_counter() - start
    return record


def format_engines(record: dict) -> str:
    """The record as a plain-text table: one line per model and engine."""
    h, w = record["frame"]["shape"][:2]
    lines = [
        f"Whole-frame seconds on one {w}x{h} frame ({record['frame']['source']}); median of "
        f"{record['repeats']} after a warm-up; threads: {record['threads']}",
        f"{'model':<22}{'engine':<20}{'median s':>10}{'min s':>9}{'first s':>9}"
        f"{'x vs TF':>9}{'max |diff| vs TF':>18}",
    ]
    for row in record["models"]:
        if "error" in row:
            lines.append(f"{row['name']:<22}FAILED: {row['error']}")
            continue
        for engine, result in row["engines"].items():
            label = LABELS[engine]
            if "median_s" not in result:
                why = result.get("skipped") or result.get("error")
                lines.append(f"{row['name']:<22}{label:<20}  {why}")
                continue
            ratio = result.get("speedup_vs_tensorflow")
            diff = result.get("max_abs_diff_vs_tensorflow")
            ratio = f"{ratio:.2f}" if ratio else "-"
            diff = f"{diff:.1e}" if diff is not None else "-"
            lines.append(
                f"{row['name']:<22}{label:<20}{result['median_s']:>10.2f}"
                f"{min(result['seconds']):>9.2f}{result['first_s']:>9.2f}{ratio:>9}{diff:>18}"
            )
        lines.append(f"{'':<22}weights: {row['weights']}; onnx: {row['onnx']['exporter']}")
    lines.append("x vs TF: Keras-on-TensorFlow's median / this engine's (> 1: faster).")
    return "\n".join(lines)


def default_out() -> Path:
    """Where the engines record goes: ``report/results/bench_engines.json``."""
    from ..core.paths import results_dir

    return results_dir() / "bench_engines.json"


def main(args) -> dict:
    """``python -m deblurlab.perf --engines ...`` (parsed ``args``): run, print, write."""
    from . import records
    from .plans import select_models

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise SystemExit(f"--engines {args.engines}: choose among {', '.join(ENGINES)}")
    models = select_models(args.models) if args.models else list(ENGINE_MODELS)
    repeats = args.repeats or DEFAULT_REPEATS
    print(
        f"deblurlab.perf --engines: {', '.join(LABELS[e] for e in engines)} on "
        f"{', '.join(models)}, {repeats} repeats",
        flush=True,
    )
    record = run_engines(models, engines, repeats, args.threads, size=FRAME_SIZE)
    out = Path(args.out) if args.out else default_out()
    records.write(record, out)
    print()
    print(format_engines(record))
    print(f"\nwrote {out} ({record['seconds']:.0f} s)")
    return record
