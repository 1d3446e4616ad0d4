"""Benchmark every registered model and the data pipelines: ``python -m deblurlab.perf``.

For each model, at its chapter's input size and the default profile's batch, it measures:

- training and inference images/s: the median over timed windows after a warm-up (``timing``);
- forward FLOPs per image (the analytic count of ``flops``), the FLOP/s achieved (training counts
  3x the forward FLOPs) and their fraction of this machine's fp32 and bf16 matmul peak, which is
  measured in the same run (``machine``);
- the peak resident memory of a fresh process that builds, trains and runs only that model;
- a "bound" column naming what keeps the model from the peak, read off simple evidence (``bounds``).

Each model runs in its own child process (``child``). The data pipelines are timed alone and
compared with the batches/s each model consumes (``pipelines``). Results are printed as a table and
written to ``report/results/bench_<cpu|gpu>.json`` (``--out``). ``--tune`` is a separate pass
(``tuning``), ``--engines`` compares engines on a whole frame (``engines``) and ``--frame`` the
inference paths of the motion model on one (``frame``). Any Keras backend: the record names the
one it ran on (``KERAS_BACKEND``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from .plans import DEFAULT, QUICK, bench_plan, select_models
from .records import PRECISIONS


def parse_args(argv=None) -> argparse.Namespace:
    """The parsed command line of ``python -m deblurlab.perf``."""
    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.perf",
        description=__doc__.split("\n\n")[0].split(":")[0] + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--quick",
        action="store_true",
        help="tiny sizes and few repeats (tests, smoke checks); numbers are rough",
    )
    add(
        "--models", default="", help="comma-separated model names (default: every registered model)"
    )
    add("--out", default=None, help="JSON path (default: report/results/bench_<cpu|gpu>.json)")
    add(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="Keras dtype policy (default: what training uses here, deblurlab.runtime.compute: "
        "float32 on a CPU, mixed precision on a GPU)",
    )
    add("--steps-per-execution", type=int, default=1, help="Keras steps_per_execution")
    add(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA on/off on TensorFlow (default: what training uses for each model, "
        "deblurlab.runtime.compute: this machine's tuning record on a CPU, Keras' auto on a GPU); "
        "JAX always compiles",
    )
    add("--repeats", type=int, default=None, help="timed windows per measurement")
    add("--window", type=float, default=None, help="seconds per timed window")
    add(
        "--budget",
        type=float,
        default=None,
        help="seconds of model timing for the whole run, shared out among the models",
    )
    add(
        "--model-timeout",
        type=float,
        default=None,
        help="seconds before a model's process is killed",
    )
    add(
        "--motion-patch",
        type=int,
        default=None,
        help="patch side for the motion models (default: the patch the device's profile trains at: "
        "profiles.MOTION_SIZES 'default' on a CPU, 'full' (256, the report's) on a GPU)",
    )
    add(
        "--tune",
        action="store_true",
        help="instead of the benchmark, the tuning pass: steps_per_execution=10, mixed precision, "
        "XLA and a 4x batch against the reference, per model (-> tuning/<machine key>.json)",
    )
    add("--skip-pipelines", action="store_true", help="do not time the data pipelines")
    add(
        "--engines",
        default=None,
        metavar="LIST",
        help="instead of the benchmark: whole-frame seconds on a 1280x720 frame through these "
        "engines (tensorflow,jax,onnx: Keras on each backend, onnxruntime), side by side, for "
        "--models (default: srndeblur_reds,resunet1); --repeats, --threads, --out apply",
    )
    add(
        "--threads",
        type=int,
        default=None,
        help="with --engines: pin each engine's process to this many CPUs (default: all)",
    )
    add(
        "--frame",
        action="store_true",
        help="instead of the benchmark: whole-frame seconds of srndeblur_reds on a 1280x720 frame "
        "by inference path (the path before, the default, eager, XLA, tiles, onnxruntime, thread "
        "settings, bfloat16) in interleaved rounds (-> tuning/<machine key>.frame.json); "
        "--repeats (rounds), --variants, --quick, --out apply",
    )
    add(
        "--frame-quality",
        action="store_true",
        help="instead of the benchmark: the shipped srndeblur_reds on the first test group's whole "
        "frames in float32 and mixed_bfloat16, PSNR difference with its paired interval and "
        "seconds (-> tuning/<machine key>.frame-quality.json; see deblurlab.perf.frame_quality)",
    )
    add(
        "--variants",
        default=None,
        metavar="LIST",
        help="with --frame: the variants to time (default: all; see deblurlab.perf.frame)",
    )
    add("--worker", default=None, help=argparse.SUPPRESS)
    add("--frame-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.steps_per_execution < 1:
        parser.error("--steps-per-execution must be >= 1")
    if args.motion_patch is not None and (args.motion_patch < 8 or args.motion_patch % 8):
        parser.error(
            f"--motion-patch {args.motion_patch}: use a multiple of 8 (SRNDeblur halves it 3 times)"
        )
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


def _options(args) -> dict:
    opts = dict(QUICK if args.quick else DEFAULT)
    for key, value in (
        ("repeats", args.repeats),
        ("window_s", args.window),
        ("total_budget_s", args.budget),
        ("model_timeout_s", args.model_timeout),
    ):
        if value is not None:
            opts[key] = value
    return opts


def training_precision(name: str) -> str:
    """The dtype policy training uses for ``name`` on this machine (deblurlab.runtime.compute)."""
    from ..runtime import compute

    return compute.current(name).precision


def training_jit(name: str):
    """XLA as training sets it for ``name`` on this machine: True, False or None (Keras' choice)."""
    from ..runtime import compute

    jit = compute.current(name).jit_compile
    return None if jit == "auto" else bool(jit)


def run_benchmarks(models: list[str], plans: dict, base: dict, opts: dict) -> list[dict]:
    """Every model in its own process, sharing out the run's time budget. Returns: the rows."""
    from .child import run_model

    rows = []
    budget_left = opts["total_budget_s"]
    for i, name in enumerate(models):
        plan = plans[name]
        share = budget_left / (len(models) - i)
        t0 = time.perf_counter()
        print(
            f"[{i + 1}/{len(models)}] {name} {plan['input_shape']} batch {plan['batch_size']} ...",
            end=" ",
            flush=True,
        )
        jit = base["jit"] if base["jit"] is not None else training_jit(name)
        precision = base["precision"] or training_precision(name)
        settings = {
            **base,
            "jit": jit,
            "precision": precision,
            "input_shape": plan["input_shape"],
            "batch_size": plan["batch_size"],
            "budget_s": share,
        }
        row = run_model(name, settings, opts["model_timeout_s"])
        budget_left = max(budget_left - (time.perf_counter() - t0), 0.0)
        row["plan_source"] = plan["source"]
        if "error" in row:
            print(f"FAILED: {row['error']}", flush=True)
        else:
            print(
                f"train {row['train_images_per_s']:.1f} img/s, "
                f"infer {row['infer_images_per_s']:.1f} "
                f"img/s ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        rows.append(row)
    return rows


def _header(args, device: str, opts: dict, precision) -> dict:
    """The record's fields that describe the run: machine, backend, versions, settings."""
    from ..runtime.provenance import git_commit, today
    from ..runtime.provenance import machine as machine_name
    from . import machine
    from .records import METHODS, SCHEMA

    return {
        "schema": SCHEMA,
        "kind": "tuning pass" if args.tune else "benchmark",
        "device": device,
        "backend": machine.backend(),
        "machine": machine_name(),
        "cpu_flags": machine.cpu_flags(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        **machine.versions(),
        "onednn": os.environ.get(
            "TF_ENABLE_ONEDNN_OPTS", "unset (TensorFlow's default: on for x86 CPUs)"
        ),
        "date": today(),
        "commit": git_commit(),
        "settings": {
            "quick": args.quick,
            "precision": precision or "per model (deblurlab.runtime.compute)",
            "steps_per_execution": args.steps_per_execution,
            "jit": "per model (deblurlab.runtime.compute)" if args.jit is None else args.jit,
            **opts,
        },
        "methods": METHODS,
        "notes": ["Timings on a shared machine are noisy; compare runs made on a quiet one."],
    }


def _print_summary(report: dict) -> None:
    from .bounds import TARGETS_SOURCE
    from .tables import format_table, format_tuning

    print()
    if "tuning" in report:
        print("Tuning (median paired ratio to the reference set-up; > 1 = faster):")
        print(format_tuning(report))
        return
    peaks = report["peaks"]
    print(format_table(report["models"]))
    print(
        f"\nfp32 peak {peaks['float32']['flops_per_s'] / 1e9:.1f} GFLOP/s, bf16 peak "
        f"{peaks['bfloat16']['flops_per_s'] / 1e9:.1f} GFLOP/s, bandwidth "
        f"{peaks['bandwidth']['bytes_per_s'] / 1e9:.1f} GB/s.\n"
        "'data x' = batches/s of the chapter's "
        "data pipeline (CIFAR blur stream, REDS patch sampler), timed alone / training batches/s: "
        "below 1 the model waits for data (and the pipeline shares the same cores when both run)."
        "\n'at peak' = training img/s if every FLOP ran at the fp32 matmul peak (3x the forward "
        "FLOPs): a ceiling no setting beats."
    )
    if report["targets"]:
        print("\nTargets (issue 6: " + TARGETS_SOURCE + "):")
        for check in report["targets"]:
            print(f"  {'met ' if check['met'] else 'MISS'}  {check['text']}")


def main(argv=None) -> dict:
    """The command line (see the module docstring). Returns: the record written."""
    args = parse_args(argv)
    if args.worker:
        from .worker import worker

        result = worker(json.loads(args.worker))
        Path(args.out).write_text(json.dumps(result))
        return result
    if args.frame_worker:
        from .frame_worker import worker_loop

        worker_loop(json.loads(args.frame_worker))
        return {}
    if args.frame_quality:
        from .frame_quality import main as quality_main

        return quality_main(args)
    if args.frame:
        from .frame import main as frame_main

        return frame_main(args)
    if args.engines:
        from .engines import main as engines_main

        return engines_main(args)

    t_run = time.perf_counter()
    opts = _options(args)
    models = select_models(args.models)
    from . import bounds, machine, records, tuning
    from .pipelines import bench_pipelines

    device = machine.detect_device()
    if device == "gpu":
        machine.gpu_memory_growth()
    precision = args.precision  # None: per model, as training computes (deblurlab.runtime.compute)
    if precision == "mixed_float16" and device == "cpu":
        print(
            "note: mixed_float16 on a CPU is emulated and slow; mixed_bfloat16 is the CPU's option"
        )
    out = Path(args.out) if args.out else records.default_out(device, tuning=args.tune)
    report = _header(args, device, opts, precision)
    print(
        f"deblurlab.perf {report['kind']} on {device} ({report['machine']}, Keras backend "
        f"{report['backend']}); {len(models)} model(s)"
        f"{' [--quick: tiny sizes, rough numbers]' if args.quick else ''}",
        flush=True,
    )

    print("machine peaks:", flush=True)
    peaks = machine.machine_peaks(device, opts)
    plans = {m: bench_plan(m, args.quick, args.motion_patch, device) for m in models}
    base = dict(
        precision=precision,
        steps_per_execution=args.steps_per_execution,
        jit=args.jit,
        repeats=opts["repeats"],
        window_s=opts["window_s"],
    )
    if args.tune:
        results = tuning.run_tuning(models, plans, device, base, opts)
    else:
        pipelines = {} if args.skip_pipelines else bench_pipelines(models, plans, opts, args.quick)
        rows = run_benchmarks(models, plans, base, opts)

    print("machine peaks, second pass (each peak is the higher of the two passes):", flush=True)
    peaks = machine.machine_peaks(device, opts, earlier=peaks)
    report["peaks"] = peaks
    if args.tune:
        for result in results.values():
            result.update(date=report["date"], commit=report["commit"])
        if args.out is None:  # the tuning file gathers models over runs: each keeps its own date
            results = {**records.earlier_tuning(out, device), **results}
        report["tuning"] = {
            "method": tuning.method_text(),
            "variants": tuning.tuning_variants(device, base),
            "models": results,
            "summary": tuning.summarize_tuning(results),
        }
    else:
        rows = [bounds.derive(row, peaks, pipelines) for row in rows]
        report.update(
            bound_rules=bounds.BOUND_RULES,
            pipelines=pipelines,
            models=rows,
            targets=bounds.target_checks(rows, quick=args.quick),
        )
        report["notes"].append(
            "Each model runs in a fresh process: peak_rss_mb includes the "
            "backend's own resident memory (base_rss_mb); model_rss_mb is the rest."
        )
    report["seconds"] = time.perf_counter() - t_run
    records.write(report, out)
    _print_summary(report)
    if not args.quick and args.out is None:
        from .tables import write_speed_table, write_tuning_table

        (write_tuning_table if args.tune else write_speed_table)(report)
    print(f"\nwrote {out} ({report['seconds']:.0f} s)")
    return report
