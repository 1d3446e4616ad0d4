"""The CIFAR-10 gaussian-blur study as a few calls, shared by every CIFAR chapter notebook.

    study = prepare_study(profile)                  # data, splits, fixed blurred val/test sets
    model, result = train_model(study, "resunet1")  # resumable training, best weights loaded
    evaluation = evaluate(study, {"resunet1": model})  # per-image metrics on the held-out test set
    table = results_table(study, evaluation, {"resunet1": result}, name="resunet")
    save_results("resunet", study, evaluation, {"resunet1": result}, {"resunet1": model})

The same calls, with the same signatures, as ``motion_study``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from . import compute, stats, zoo
from . import metrics as M
from .data.blur import TEST_SEED, make_blurred_set, training_stream
from .data.cifar import CifarSplits, load_cifar10, split_cifar10
from .models import build_model, get_spec
from .paths import results_dir, tables_dir
from .profiles import CifarPlan, resolve_profile
from .provenance import footnote, provenance
from .results import (
    BLURRED_INPUT,
    PER_IMAGE_DIR,
    Evaluation,
    read_arrays,
    read_results,
    split_scores,
    write_arrays,
    write_results,
)
from .tables import CI_NOTE, exact_columns, score_cells, write_table
from .train import TrainResult, predict, set_seeds, train

VAL_SEED = TEST_SEED + 1


@dataclass
class CifarStudy:
    """The CIFAR-10 data of one profile: splits, the fixed blurred validation and test sets
    (with the test sigmas) and the provenance of the run."""

    plan: CifarPlan
    splits: CifarSplits
    val_blurred: np.ndarray
    test_blurred: np.ndarray
    test_sigmas: np.ndarray
    provenance: dict = field(default_factory=dict)

    @property
    def profile(self) -> str:
        """The profile name (``smoke``, ``default`` or ``full``)."""
        return self.plan.profile

    def describe(self) -> str:
        """One line: the data, their split and the profile."""
        return f"{self.splits.describe()}; profile {self.profile}"


def prepare_study(profile: str | None = None, data_dir=None, *, seed: int = 0) -> CifarStudy:
    """Load CIFAR-10, split it at the profile's sizes and blur the val/test sets once with fixed
    seeds. Returns a ``CifarStudy``."""
    plan = CifarPlan.for_profile(resolve_profile(profile))
    data = load_cifar10(data_dir)
    splits = split_cifar10(
        data,
        n_train=plan.n_train,
        n_val=plan.n_val,
        n_test=plan.n_test,
        seed=seed,
        min_test=plan.min_test,
    )
    val_blurred, _ = make_blurred_set(splits.val, seed=VAL_SEED)
    test_blurred, test_sigmas = make_blurred_set(splits.test, seed=TEST_SEED)
    return CifarStudy(
        plan,
        splits,
        val_blurred,
        test_blurred,
        test_sigmas,
        provenance(splits.describe(), plan.profile),
    )


def run_name(study: CifarStudy, model_name: str, *, seed: int = 0) -> str:
    """The training run's folder name under runs/."""
    return f"cifar-{model_name}-{study.profile}" + (f"-seed{seed}" if seed else "")


def train_model(
    study: CifarStudy,
    model_name: str,
    *,
    seed: int = 0,
    epochs: int | None = None,
    callbacks: list | None = None,
    weights: str = "train",
    precision: str | None = None,
) -> tuple[keras.Model, TrainResult]:
    """Build ``model_name`` from the registry and train it (or resume, or load a finished run).

    ``weights="zoo"`` skips training and loads the shipped reference weights instead (its result
    comes from the reference run's record); a model without shipped weights trains, and says so.
    ``epochs`` overrides the profile's epoch limit (the reference run's cap); ``callbacks`` are
    added to training's own (e.g. a time limit); ``precision`` (a Keras dtype policy) overrides the
    machine's choice, in a run of its own name."""
    if weights == "zoo":
        if model_name in zoo.available():
            return zoo_model(model_name)
        print(
            f"{model_name}: no shipped reference weights "
            f"({zoo.status([model_name])[model_name]}), so it "
            f"trains at the {study.profile} profile instead"
        )
    elif weights != "train":
        raise ValueError(
            f"weights={weights!r}: use 'train' (train at the profile) or 'zoo' (shipped weights)"
        )
    config = study.plan.train_config(model_name, seed=seed)
    if epochs is not None:
        config.epochs = epochs
    train_images = study.splits.train[
        : study.plan.train_images(model_name)
    ]  # all unless the profile caps

    def make_stream(first_epoch, last_epoch):
        return training_stream(train_images, config.batch_size, seed, first_epoch, last_epoch)

    setup = compute.current(model_name)
    name = run_name(study, model_name, seed=seed)
    if precision is not None and precision != setup.precision:
        setup = compute.replace_precision(setup, precision)
        name += f"-{precision}"
    with setup.scope():  # precision and, on several GPUs, MirroredStrategy
        set_seeds(seed)  # before building, so the initial weights are reproducible
        model = build_model(model_name, input_shape=study.splits.train.shape[1:])
        result = train(
            model,
            make_stream,
            (study.val_blurred, study.splits.val),
            name,
            config,
            setup=setup,
            callbacks=callbacks,
        )
    print(f"{model_name} ({setup.describe()}): {result.summary()}")
    return model, result


def _result_from_record(record: dict) -> TrainResult:
    from pathlib import Path

    history = pd.DataFrame(record["history"])
    return TrainResult(
        history=history,
        epochs_run=record["epochs"],
        best_epoch=record["best_epoch"] - 1,
        train_seconds=record["train_seconds"],
        stopped_early=record["stopped"].startswith("early"),
        resumed_at=None,
        run_dir=Path(zoo.weights_path(record["model"])),
    )


def zoo_model(model_name: str) -> tuple[keras.Model, TrainResult]:
    """The shipped reference model and its training as its record tells it (``zoo.ZooError`` if
    none)."""
    model, record = zoo.load(model_name), zoo.read_record(model_name)
    print(
        f"{model_name}: shipped reference weights (zoo/{model_name}.weights.h5): "
        f"{record['epochs']} epochs, "
        f"{record['stopped']}, {record['train_seconds'] / 60:.0f} min on {record['machine']}"
    )
    return model, _result_from_record(record)


def reference_models(model_names: list[str]) -> dict[str, keras.Model]:
    """The shipped reference models among ``model_names``; says which are missing and why."""
    status = zoo.status(model_names)
    for name, state in status.items():
        if state != "finished":
            print(
                f"{name}: no shipped reference run ({state}); "
                f"`python -m deblurlab.reference --models {name}`"
            )
    return {name: zoo.load(name) for name, state in status.items() if state == "finished"}


def reference_records(model_names) -> dict[str, dict]:
    """The zoo's training record of each of ``model_names`` that has shipped weights, by
    name."""
    return {name: zoo.read_record(name) for name in model_names if name in zoo.available()}


def evaluate(
    study: CifarStudy, models: dict[str, keras.Model], *, blurred_input: bool = True
) -> Evaluation:
    """Per-image MSE, PSNR and SSIM on the held-out test set, the blurred input first (unless
    ``blurred_input=False``). Returns an ``Evaluation`` (a mapping: row -> metric -> values)."""
    scores = (
        {BLURRED_INPUT: M.per_image_metrics(study.test_blurred, study.splits.test)}
        if blurred_input
        else {}
    )
    for name, model in models.items():
        scores[name] = M.per_image_metrics(predict(model, study.test_blurred), study.splits.test)
    return Evaluation(scores)


def evaluate_models(study: CifarStudy, models: dict[str, keras.Model]) -> Evaluation:
    """``evaluate`` without the blurred-input row (e.g. the reference models)."""
    return evaluate(study, models, blurred_input=False)


def restorations(
    study: CifarStudy, models: dict[str, keras.Model], indices
) -> dict[str, np.ndarray]:
    """Each model's restoration of the test images ``indices``: name -> float32 images."""
    return {name: predict(model, study.test_blurred[indices]) for name, model in models.items()}


def hardest_examples(
    study: CifarStudy, n: int = 6, min_sigma: float = 1.5, seed: int = 0
) -> np.ndarray:
    """Test indices of strongly blurred images (sigma >= min_sigma), in a fixed random order."""
    pool = np.flatnonzero(study.test_sigmas >= min_sigma)
    pool = pool if len(pool) >= n else np.argsort(-study.test_sigmas)
    return np.random.default_rng(seed).permutation(pool)[:n]


RUNS = ("this run", "reference run", "original report")
TABLE_NOTE = (
    f"{CI_NOTE} The reference run is the shipped zoo model (python -m deblurlab.reference), "
    "scored by this run on the same images."
)
summarize_ci = stats.summarize_ci


def score_rows(
    model_name: str,
    ours: dict | None,
    train: dict | None,
    reference: dict | None,
    reference_train: dict | None,
    params: int | None,
    reference_status: str | None = None,
) -> list[dict]:
    """A model's rows: this run, the reference run (or why there is none), the original report.
    ``ours``/``reference`` are ``summarize_ci`` outputs; ``train``/``reference_train`` hold epochs
    and seconds."""
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
                "run": "reference run",
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
        )
    for make_row in extra_rows:
        rows.append({"_exact": {}, **make_row(list(rows[0]))})
    shown = pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
    if name:
        notes = [
            f"[{n}] reference run: {r['epochs']} epochs ({r['stopped']}), "
            f"{r['data']['n_train']:,} training "
            f"images, {r['arithmetic']}, {r['machine']}, {r['date']}."
            for n, r in records.items()
        ]
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
    """Write report/results/<chapter>.json, from which the report's text takes its numbers (with
    ``extra`` merged in), and the per-image scores (``reference``: the zoo models' on the same
    images, saved as ``"reference:<model>"``). Returns the payload."""
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
        {**scores, **{f"reference:{n}": v for n, v in reference.items()}},
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


def load_per_image(chapter: str) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """(scores as ``evaluate`` returns them, sigmas) saved by ``save_results(chapter, ...)``."""
    saved = read_arrays(chapter)
    if saved is None:
        raise FileNotFoundError(
            f"{results_dir() / PER_IMAGE_DIR / chapter}.npz is missing: run the "
            f"chapter notebook that saves {chapter!r}"
        )
    return split_scores(saved), saved["sigma"]


def summary_table(
    chapters: list[str] | None = None, name: str | None = "cifar_summary"
) -> pd.DataFrame:
    """One row per trained CIFAR-10 model across the chapters' saved results, beside the report.

    Reads report/results/<chapter>.json as written by ``save_results``; chapters default to all
    that hold CIFAR-10 models. Written to report/tables/<name> with each chapter's provenance.
    """
    rows, notes = [], {}
    for path in sorted(results_dir().glob("*.json")):
        payload = read_results(path.stem)
        if not isinstance(payload.get("models"), dict) or (
            chapters and payload.get("chapter") not in chapters
        ):
            continue
        for model_name, entry in payload["models"].items():
            if "epochs" not in entry:
                continue  # the blurred input, or a row that is not a trained model
            if get_spec(model_name).dataset != "cifar10":
                continue
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
