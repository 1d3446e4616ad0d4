"""The benchmark's tables: the console table, and the report's speed, tuning and precision tables.

Imports no Keras or TensorFlow (the runner writes these tables before the report is built, and
the report builder imports neither).
"""

from __future__ import annotations

import json
import math

from .records import default_out, read, record_backend

_PRECISION_SHORT = {"mixed_bfloat16": "bf16", "mixed_float16": "fp16"}


def _fmt(value, scale=1.0, digits=1, pct=False):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value * 100:.{digits}f}%" if pct else f"{value / scale:,.{digits}f}"


def format_table(rows: list[dict]) -> str:
    """The console table of benchmark rows (one line a model)."""
    header = [
        "model",
        "input",
        "batch",
        "xla",
        "MFLOP/img",
        "train img/s",
        "at peak",
        "infer img/s",
        "train GFLOP/s",
        "fp32 pk",
        "bf16 pk",
        "RSS MB",
        "data x",
        "bound",
    ]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["name"], *["-"] * 12, "ERROR: " + r["error"][:80]])
            continue
        shape = "x".join(str(v) for v in r["input_shape"][:2])
        mem = r.get("peak_gpu_mb") or r["model_rss_mb"]
        lines.append(
            [
                r["name"],
                shape,
                str(r["batch_size"]),
                "yes" if r.get("jit_compile") else "no",
                _fmt(r["forward_flops_per_image"], 1e6),
                _fmt(r["train_images_per_s"]),
                _fmt(r.get("train_ceiling_images_per_s")),
                _fmt(r["infer_images_per_s"]),
                _fmt(r["train_flops_per_s"], 1e9, 2),
                _fmt(r.get("train_frac_fp32_peak"), pct=True),
                _fmt(r.get("train_frac_bf16_peak"), pct=True),
                _fmt(mem, digits=0),
                _fmt(r.get("pipeline_headroom"), digits=1),
                r["bound"],
            ]
        )
    widths = [
        max(len(h), *(len(line[i]) for line in lines)) if lines else len(h)
        for i, h in enumerate(header)
    ]

    def row(cells):
        return "  ".join(
            c.ljust(w) if i in (0, 13) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([row(header), row(["-" * w for w in widths]), *(row(line) for line in lines)])


def format_tuning(report: dict) -> str:
    """The console lines of a tuning report: each change's paired ratio, per model."""
    lines = []
    for name, result in report["tuning"]["models"].items():
        if "error" in result:
            lines.append(f"  {name}: FAILED: {result['error']}")
            continue
        ref = result["variants"][result["reference"]]
        cells = [
            f"reference {ref['train_images_per_s']:.1f} train / "
            f"{ref['infer_images_per_s']:.1f} infer img/s"
        ]
        cells += [
            f"{label}: FAILED ({v['error']})"
            if "error" in v
            else f"{label}: train x{v['train_ratio']:.2f}, infer x{v['infer_ratio']:.2f}"
            for label, v in result["variants"].items()
            if label != result["reference"]
        ]
        lines.append(f"  {name}: " + "; ".join(cells))
    return "\n".join(lines)


def speed_table(report: dict):
    """One row per model of a benchmark report, for the written report (a DataFrame)."""
    import pandas as pd

    rows = []
    for r in report["models"]:
        if "error" in r:
            continue
        own = r.get("train_frac_own_peak", r.get("train_frac_fp32_peak", 0.0))
        rows.append(
            {
                "model": r["name"],
                "input": "×".join(map(str, r["input_shape"][:2])),
                "batch": r["batch_size"],
                "precision": _PRECISION_SHORT.get(r.get("precision"), "fp32"),
                "XLA": "yes" if r.get("jit_compile") else "no",
                "MFLOP/img": r["forward_flops_per_image"] / 1e6,
                "train img/s": r["train_images_per_s"],
                "at fp32 peak": r.get("train_ceiling_images_per_s"),
                "infer img/s": r["infer_images_per_s"],
                "fp32 peak share": f"{100 * r.get('train_frac_fp32_peak', 0.0):.0f}%",
                "own peak share": f"{100 * own:.0f}%",
                "bound": r["bound"],
            }
        )
    return pd.DataFrame(rows)


def write_speed_table(report: dict) -> str:
    """report/tables/speed_<device>.md from a benchmark report, with its provenance.

    Returns: the markdown written.
    """
    from ..core.tables import write_table

    peaks, settings = report["peaks"], report["settings"]
    note = (
        f"Benchmark: python -m deblurlab.perf ({settings['precision']}, steps_per_execution "
        f"{settings['steps_per_execution']}, XLA as training uses it for each model; Keras backend "
        f"{record_backend(report)}); medians of timed windows after a warm-up; FLOPs counted "
        f"analytically (training = 3x forward). Measured peaks: fp32 matmul "
        f"{peaks['float32']['flops_per_s'] / 1e9:.1f} GFLOP/s, bf16 "
        f"{peaks['bfloat16']['flops_per_s'] / 1e9:.1f} GFLOP/s, memory "
        f"{peaks['bandwidth']['bytes_per_s'] / 1e9:.1f} GB/s. 'at fp32 peak' is the training "
        f"img/s that the fp32 peak would allow. Run {report['date']}, commit {report['commit']}, "
        f"on {report['machine']}."
    )
    return write_table(
        f"speed_{report['device']}", speed_table(report), note, digits=1, convention=""
    )


def tuning_table(report: dict):
    """One row per model of a tuning report: the reference's training img/s and each change's
    ratio (a DataFrame)."""
    import pandas as pd

    rows = []
    for name, result in report["tuning"]["models"].items():
        if "error" in result:
            continue
        ref = result["variants"][result["reference"]]
        row = {
            "model": name,
            "batch": result["batch_size"],
            "reference img/s": ref["train_images_per_s"],
        }
        for label, v in result["variants"].items():
            if label != result["reference"]:
                row[f"{label} ×"] = "fails" if "error" in v else v["train_ratio"]
        rows.append(row)
    return pd.DataFrame(rows)


def tuning_reference(report: dict) -> dict:
    """The reference set-up of a tuning report (float32, no XLA, one step: older records)."""
    variants = report["tuning"].get("variants") or {}
    return variants.get(
        "reference", {"precision": "float32", "steps_per_execution": 1, "jit": False}
    )


def describe_setup(settings: dict) -> str:
    """A set-up in words, e.g. "float32, no XLA, one step per call"."""
    spe = settings.get("steps_per_execution", 1)
    return (
        f"{settings.get('precision', 'float32')}, {'XLA' if settings.get('jit') else 'no XLA'}, "
        f"{'one step' if spe == 1 else f'{spe} steps'} per call"
    )


def tuning_note(report: dict) -> str:
    """The footnote of a ``--tune`` report: method, reference set-up, dates and machine."""
    tuning = report["tuning"]
    rounds = next((r["rounds"] for r in tuning["models"].values() if "rounds" in r), "?")
    runs = sorted(
        {
            (r.get("date", report["date"]), r.get("commit", report["commit"]))
            for r in tuning["models"].values()
            if "error" not in r
        }
    )
    when = "; ".join(f"{date}, commit {commit}" for date, commit in runs)
    return (
        f"Benchmark: python -m deblurlab.perf --tune (Keras backend {record_backend(report)}). "
        f"Each model's set-ups were built in one process and timed round by round ({rounds} "
        f"rounds, rotating order); each ratio is the median over rounds of training img/s "
        f"against the reference of the same round ({describe_setup(tuning_reference(report))}); "
        f"above 1 is faster; 'fails' marks a set-up that did not compile. 'batch x4' compares "
        f"throughput only (a larger batch also changes the optimisation). Inference ratios are "
        f"in the record (lib/deblurlab/tuning/). Run {when}, on {report['machine']}."
    )


def write_tuning_table(report: dict) -> str:
    """report/tables/tuning_<device>.md from a ``--tune`` report, with its provenance."""
    from ..core.tables import write_table

    return write_table(
        f"tuning_{report['device']}",
        tuning_table(report),
        tuning_note(report),
        digits=2,
        convention="",
    )


# --- the report's speed chapter (called by the runner before the report is built)


def tuning_records() -> list[dict]:
    """The kept CPU tuning records (one per machine kind, deblurlab/tuning/), --quick ones out."""
    from ..runtime import compute

    return [
        {**record, "key": key}
        for key, record in compute.tuning_records().items()
        if not record.get("settings", {}).get("quick") and "tuning" in record
    ]


def precision_check_table() -> None:
    """``precision_check`` table and result from the kept seed/precision records (seeds.py)."""
    from ..core.paths import results_dir
    from ..core.tables import write_table
    from ..runtime import compute

    out = results_dir() / "precision_check.json"
    out.unlink(missing_ok=True)
    records = compute.seed_records()
    if not records:
        return
    import pandas as pd

    rows, notes = [], []
    for (key, model), record in records.items():
        for run in record["runs"]:
            t = run["test"]
            rows.append(
                {
                    "machine": key,
                    "model": model,
                    "precision": run["precision"],
                    "seed": run["seed"],
                    "epochs": run["epochs"],
                    "train s": round(run["train_seconds"]),
                    "MSE": t["mse"],
                    "mean-MSE PSNR": t["psnr_mean_mse"],
                    "SSIM": t["ssim"],
                }
            )
        notes.append(
            f"[{key}] {record['model']}, profile {record['profile']}, {record['n_test']} test "
            f"images; {record['data']}; run {record['date']}, commit {record['commit']}, "
            f"on {record['machine']}."
        )
    write_table("precision_check", pd.DataFrame(rows), " ".join(notes))
    fields = ("model", "profile", "machine", "date")
    machines = [
        {
            "key": k,
            **{f: r[f] for f in fields},
            "spread": r["spread"],
            "check": r.get("precision_check", {}),
        }
        for (k, _), r in records.items()
    ]
    out.write_text(json.dumps({"machines": machines}, indent=1))


def speed_tables() -> None:
    """The speed chapter's tables and its ``results.tuning_cpu``, from whichever records exist:
    ``make bench`` writes report/results/bench_<device>.json; the tuning records (an hour of CPU
    time each) are kept in git, one per machine kind, and are shown side by side."""
    from ..core.paths import results_dir
    from ..core.tables import write_table
    from ..runtime import compute

    for device in ("cpu", "gpu"):
        record = read(default_out(device))
        if record and not record.get("settings", {}).get("quick"):  # --quick: a smoke check
            write_speed_table(record)
    precision_check_table()
    records = tuning_records()
    summary = results_dir() / "tuning_cpu.json"
    summary.unlink(missing_ok=True)
    if not records:
        return
    import pandas as pd

    here = compute.machine_key()
    frames, notes = [], []
    for record in records:
        table = tuning_table(record)
        table.insert(0, "machine", record["key"])
        frames.append(table)
        notes.append(tuning_note(record))
    write_table(
        "tuning_cpu",
        pd.concat(frames, ignore_index=True),
        " ".join(f"[{r['key']}] {n}" for r, n in zip(records, notes)),
        digits=2,
        convention="",
    )
    machines = [
        {
            "key": r["key"],
            "machine": r["machine"],
            "date": r["date"],
            "this_machine": r["key"] == here,
            "summary": r["tuning"]["summary"],
        }
        for r in records
    ]
    summary.write_text(
        json.dumps(
            {
                "this_machine": here,
                "has_record": any(m["this_machine"] for m in machines),
                "machines": machines,
            },
            indent=1,
        )
    )
