"""The CIFAR-10 study's results: the score tables (this run, the reference run, the original
report), the gains over the blurred input and the saved results and per-image scores.

    table = results_table(study, evaluation, {"resunet1": result}, name="resunet")
    save_results("resunet", study, evaluation, {"resunet1": result}, {"resunet1": model})
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ...core import metrics as M
from ...core import stats
from ...core.paths import results_dir, tables_dir
from ...core.results import BLURRED_INPUT, Evaluation, read_results, write_arrays, write_results
from ...core.tables import CI_NOTE, exact_columns, footnote, score_cells, write_table
from ...models import get_spec, list_models
from ...training import zoo
from ...training.train import TrainResult
from .study import CifarStudy, gpu_reference_runs

RUNS = ("this run", "reference run", "original report")
TABLE_NOTE = (
    f"{CI_NOTE} The reference run is the shipped zoo model (python -m deblurlab.reference), "
    "scored by this run on the same images."
)
summarize_ci = stats.summarize_ci


def reference_records(model_names) -> dict[str, dict]:
    """The zoo's training record of each of ``model_names`` that has shipped weights, by
    name."""
    return {name: zoo.read_record(name) for name in model_names if name in zoo.available()}


def _finished(record: dict) -> bool:
    return not zoo.in_progress(record)


def _run_note(label: str, name: str, r: dict) -> str:
    return (
        f"[{name}] {label}: {r['epochs']} epochs ({r['stopped']}), {r['data']['n_train']:,} "
        f"training images, {zoo.arithmetic_story(r)}, {r.get('backend', 'tensorflow')}, "
        f"{r['machine']}, {r['date']}"
        + (", weights stored with int8 kernels" if r.get("dtype") == "int8" else "")
        + "."
    )


def score_rows(
    model_name: str,
    ours: dict | None,
    train: dict | None,
    reference: dict | None,
    reference_train: dict | None,
    params: int | None,
    reference_status: str | None = None,
    gpu: tuple[dict, dict] | None = None,
) -> list[dict]:
    """A model's rows: this run, the reference run (or why not), the GPU reference run (``gpu``:
    summary, record), the report. ``train``/``reference_train``: epochs and seconds."""
    rows = []
    if ours is not None:
        rows.append(
            {
                "model": model_name,
                "run": "this run",
                "params": f"{params:,}" if params else "–",
                "epochs": (train or {}).get("epochs"),
                "train s": (train or {}).get("seconds"),
                **score_cells(ours),
                "_exact": exact_columns(ours),
            }
        )
    if model_name == BLURRED_INPUT:
        return rows
    if reference is not None:
        rows.append(
            {
                "model": model_name,
                "run": "reference run"
                + (": in progress" if reference_train.get("in_progress") else ""),
                "params": "",
                "epochs": reference_train["epochs"],
                "train s": reference_train["seconds"],
                **score_cells(reference),
                "_exact": exact_columns(reference),
            }
        )
    else:
        status = reference_status or zoo.status([model_name])[model_name]
        rows.append(
            {
                "model": model_name,
                "run": f"reference run: {status}",
                "params": "",
                "epochs": None,
                "train s": None,
                "MSE": "–",
                "PSNR": "–",
                "mean-MSE PSNR": "–",
                "SSIM": "–",
                "_exact": {},
            }
        )
    if gpu is not None:
        summary, record = gpu
        rows.append(
            {
                "model": model_name,
                "run": f"GPU reference run{'' if _finished(record) else ': in progress'}",
                "params": "",
                "epochs": record["epochs"],
                "train s": round(record["train_seconds"]),
                **score_cells(summary),
                "_exact": exact_columns(summary),
            }
        )
    report = get_spec(model_name).reference
    if report:
        rows.append(
            {
                "model": model_name,
                "run": "original report",
                "params": "",
                "epochs": None,
                "train s": None,
                "MSE": f"{report['mse']:.5f}",
                "PSNR": f"{report['psnr']:.2f}",
                "mean-MSE PSNR": "–",
                "SSIM": f"{report['ssim']:.4f}",
                "_exact": {k: report[k] for k in ("mse", "psnr", "ssim")},
            }
        )
    return rows


def _write_rows(name: str, rows: list[dict], note: str) -> pd.DataFrame:
    shown = pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
    shown = shown.astype({"epochs": "Int64", "train s": "Int64"})
    write_table(name, shown, note)
    exact = pd.DataFrame(
        [
            {
                "model": r["model"],
                "run": r["run"],
                "epochs": r["epochs"],
                "train s": r["train s"],
                **r["_exact"],
            }
            for r in rows
        ]
    )
    exact.to_csv(tables_dir() / f"{name}.csv", index=False)
    return shown


def results_table(
    study: CifarStudy,
    evaluation: Evaluation,
    results: dict[str, TrainResult],
    models: dict[str, keras.Model] | None = None,
    *,
    name: str | None = None,
    reference: dict[str, dict[str, np.ndarray]] | None = None,
    extra_rows=(),
    note: str = "",
) -> pd.DataFrame:
    """Per model: this run's scores, the reference run's (``reference``: per-image scores of the zoo
    models on the same test images), the original report's; each mean with its 95% interval.
    Written to report/tables/<name> (.md shown, .csv with the intervals' ends) if named, with
    ``extra_rows(columns)`` (a function returning rows, e.g. a quoted paper's) and ``note``
    appended."""
    reference = reference or {}
    records = reference_records(reference)
    gpu_runs = gpu_reference_runs(study, list(evaluation))
    rows = []
    for model_name, per_image in evaluation.items():
        result = results.get(model_name)
        train = (
            {"epochs": result.epochs_run, "seconds": round(result.train_seconds)}
            if result
            else None
        )
        params = models[model_name].count_params() if models and model_name in models else None
        ref = reference.get(model_name)
        ref_train = (
            {
                "epochs": records[model_name]["epochs"],
                "seconds": round(records[model_name]["train_seconds"]),
                "in_progress": not _finished(records[model_name]),
            }
            if model_name in records
            else None
        )
        rows += score_rows(
            model_name,
            summarize_ci(per_image),
            train,
            summarize_ci(ref) if ref else None,
            ref_train,
            params,
            gpu=(summarize_ci(gpu_runs[model_name][0]), gpu_runs[model_name][1])
            if model_name in gpu_runs
            else None,
        )
    for make_row in extra_rows:
        rows.append({"_exact": {}, **make_row(list(rows[0]))})
    shown = pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
    if name:
        notes = [_run_note("reference run", n, r) for n, r in records.items()]
        notes += [_run_note("GPU reference run", n, r) for n, (_, r) in gpu_runs.items()]
        _write_rows(
            name,
            rows,
            " ".join(
                [
                    TABLE_NOTE,
                    stats.METHOD,
                    *notes,
                    footnote(study.provenance),
                    f"Test set: {len(study.splits.test):,} held-out images, each blurred "
                    "once with a fixed seed (σ ~ U(0, 3)).",
                    note,
                ]
            ).strip(),
        )
    return shown.astype({"epochs": "Int64", "train s": "Int64"})


def gains_over_input(scores: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """How much each model improves on the blurred input: MSE ratio, PSNR and SSIM differences."""
    base = M.summarize(scores[BLURRED_INPUT])
    rows = []
    for name, per_image in scores.items():
        if name == BLURRED_INPUT:
            continue
        ours = M.summarize(per_image)
        rows.append(
            {
                "model": name,
                "MSE reduction %": 100 * (1 - ours["mse"] / base["mse"]),
                "PSNR gain dB": ours["psnr"] - base["psnr"],
                "SSIM gain": ours["ssim"] - base["ssim"],
                "beats input": bool(ours["mse"] < base["mse"] and ours["ssim"] > base["ssim"]),
            }
        )
    return pd.DataFrame(rows)


def save_results(
    chapter: str,
    study: CifarStudy,
    evaluation: Evaluation,
    results: dict[str, TrainResult],
    models: dict[str, keras.Model] | None = None,
    *,
    reference: dict[str, dict[str, np.ndarray]] | None = None,
    extra: dict | None = None,
) -> dict:
    """Write report/results/<chapter>.json (the report's numbers, ``extra`` merged in) and the
    per-image scores, the zoo models' (``reference``) as ``"reference:<model>"``. Returns it."""
    scores = evaluation
    gains = gains_over_input(scores).set_index("model").to_dict(orient="index")
    payload = {
        "chapter": chapter,
        "provenance": study.provenance,
        "data": study.describe(),
        "n_test": len(study.splits.test),
        "n_train": len(study.splits.train),
        "models": {},
    }
    reference = reference or {}
    records = reference_records(reference)
    gpu_runs = gpu_reference_runs(study, list(scores))
    for name, per_image in scores.items():
        entry = {"metrics": summarize_ci(per_image)}
        if name in reference:
            r = records[name]
            entry["reference_run"] = {
                "metrics": summarize_ci(reference[name]),
                "epochs": r["epochs"],
                "train_seconds": r["train_seconds"],
                "stopped": r["stopped"],
                "n_train": r["data"]["n_train"],
                "machine": r["machine"],
                "arithmetic": r["arithmetic"],
                "date": r["date"],
            }
        elif name != BLURRED_INPUT:
            entry["reference_run"] = {"status": zoo.status([name])[name]}
        if name in gpu_runs:
            per, r = gpu_runs[name]
            entry["gpu_reference_run"] = {
                "metrics": summarize_ci(per),
                "epochs": r["epochs"],
                "best_epoch": r.get("best_epoch"),
                "train_seconds": r["train_seconds"],
                "stopped": r["stopped"],
                "finished": _finished(r),
                "machine": r["machine"],
                "backend": r.get("backend"),
                "arithmetic": r["arithmetic"],
                "date": r["date"],
            }
        if name in results:
            r = results[name]
            entry.update(
                epochs=r.epochs_run,
                train_seconds=r.train_seconds,
                stopped_early=r.stopped_early,
                train_images=len(study.splits.train[: study.plan.train_images(name)]),
                reference=get_spec(name).reference,
                gains=gains.get(name),
            )
        if models and name in models:
            entry["params"] = int(models[name].count_params())
        payload["models"][name] = entry
    payload.update(extra or {})
    write_results(chapter, payload)
    save_per_image(
        chapter,
        {
            **scores,
            **{f"reference:{n}": v for n, v in reference.items()},
            **{f"gpu-reference:{n}": v for n, (v, _) in gpu_runs.items()},
        },
        study.test_sigmas,
    )
    return payload


def save_per_image(
    chapter: str, scores: dict[str, dict[str, np.ndarray]], sigmas: np.ndarray
) -> None:
    """Each model's per-image MSE, PSNR and SSIM (keys ``"<model>|<metric>"``) and the test images'
    sigmas, so that later chapters compare models image by image (paired intervals)."""
    write_arrays(
        chapter,
        {"sigma": np.asarray(sigmas, np.float64), **Evaluation(dict(scores)).score_arrays()},
    )


def summary_table(
    chapters: list[str] | None = None, name: str | None = "cifar_summary"
) -> pd.DataFrame:
    """One row per trained CIFAR-10 model across the chapters' saved results, beside the report.

    Reads report/results/<chapter>.json as written by ``save_results``; chapters default to all
    that hold CIFAR-10 models. Written to report/tables/<name> with each chapter's provenance.
    """
    rows, notes = [], {}
    cifar_models = set(list_models(dataset="cifar10"))
    for path in sorted(results_dir().glob("*.json")):
        payload = read_results(path.stem)
        if not isinstance(payload.get("models"), dict) or (
            chapters and payload.get("chapter") not in chapters
        ):
            continue
        for model_name, entry in payload["models"].items():
            if "epochs" not in entry:
                continue  # the blurred input, or a row that is not a trained model
            if model_name not in cifar_models:
                continue  # a motion model, or a labelled row such as "nafnet_small, same steps"
            ref_run = entry.get("reference_run", {})
            ref_metrics = ref_run.get("metrics")
            ref_train = (
                {"epochs": ref_run["epochs"], "seconds": round(ref_run["train_seconds"])}
                if ref_metrics
                else None
            )
            chapter_rows = score_rows(
                model_name,
                entry["metrics"],
                {"epochs": entry["epochs"], "seconds": round(entry["train_seconds"])},
                ref_metrics,
                ref_train,
                entry.get("params"),
                ref_run.get("status", "not scored by this run"),
            )
            rows += [{**row, "chapter": payload["chapter"]} for row in chapter_rows]
            notes[payload["chapter"]] = footnote(payload["provenance"])
    if not rows:
        raise FileNotFoundError(
            f"no CIFAR-10 chapter results in {results_dir()}: run the chapter notebooks first"
        )
    if name:
        distinct = sorted(set(notes.values()))
        text = (
            distinct[0]
            if len(distinct) == 1
            else " ".join(f"[{c}] {n}" for c, n in sorted(notes.items()))
        )
        return _write_rows(name, rows, " ".join([TABLE_NOTE, stats.METHOD, text]))
    return pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
