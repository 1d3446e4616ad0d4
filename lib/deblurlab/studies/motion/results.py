"""The motion-blur chapter's results: the table beside the report's and the paper's numbers, the
gains over the blurred input, and the JSON and per-frame scores the report reads.

    table = results_table(study, evaluation, {MODEL: result}, name="srndeblur_reds")
    save_results("srndeblur_reds", study, evaluation, results, models)
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from ...core import metrics as M
from ...core import stats
from ...core.paths import tables_dir
from ...core.results import BLURRED_INPUT, Evaluation, write_arrays, write_results
from ...core.tables import CI_NOTE, exact_columns, footnote, score_cells, write_table
from ...data.frames import MotionData
from ...models import get_spec
from ...training.profiles import MOTION_FINAL_LR, MOTION_RECIPES
from ...training.train import TrainResult
from .study import MODEL, REFERENCE_SUFFIX, MotionStudy, steps_per_epoch

# What the original report and the SRN-DeblurNet paper published (quoted by the report, Table 5).
REPORT_REDS = dict(
    model="SRNDeblur_reds (original report)",
    data="REDS: first 24 training clips",
    frames=500,
    mse=0.002,
    psnr=27.23,
    ssim=0.8105,
    kind="reds",
)
PUBLISHED_GOPRO = dict(
    model="SRN-DeblurNet (Tao et al. 2018, published)",
    data="GoPro test set",
    frames=None,
    mse=None,
    psnr=30.26,
    ssim=0.9342,
    kind="gopro",
)


def _comparable(reference: dict, data: MotionData) -> str:
    if reference["kind"] == data.kind:
        return "same dataset (protocol may differ)"
    return "not comparable: different data"


def results_table(
    study: MotionStudy,
    evaluation: Evaluation,
    results: dict[str, TrainResult],
    models: dict[str, keras.Model] | None = None,
    *,
    name: str | None = None,
) -> pd.DataFrame:
    """Our rows (blurred input, each trained model) beside the report's REDS row and the published
    GoPro row; every row names its dataset, and rows on other data are flagged."""
    rows = []
    for group, positions in test_groups(study, evaluation).items():
        gains = gains_over_input(evaluation, positions)
        for label_, per_image in evaluation.scores.items():
            summary = stats.summarize_ci({m: v[positions] for m, v in per_image.items()})
            result = results.get(label_)
            params = models[label_].count_params() if models and label_ in models else None
            gain = gains.get(label_)
            shipped = label_.endswith(REFERENCE_SUFFIX)
            rows.append(
                {
                    "model": label_ if label_ == BLURRED_INPUT or shipped else f"{label_} (ours)",
                    "data": group,
                    "frames": len(positions),
                    "params": f"{params:,}" if params else "–",
                    "epochs": result.epochs_run if result else None,
                    "train s": round(result.train_seconds) if result else None,
                    **score_cells(summary),
                    "PSNR gain": "–" if gain is None else _gain_cell(gain),
                    "comparable": "shipped weights, these frames" if shipped else "this run",
                    "_exact": exact_columns(summary),
                }
            )
    for ref in references():
        rows.append(
            {
                "model": ref["model"],
                "data": ref["data"],
                "frames": ref["frames"],
                "params": "–",
                "epochs": ref.get("epochs"),
                "train s": None,
                "MSE": _number(ref["mse"], 5),
                "PSNR": _number(ref["psnr"], 2),
                "mean-MSE PSNR": "–",
                "SSIM": _number(ref["ssim"], 4),
                "PSNR gain": "–",
                "comparable": _comparable(ref, study.data),
                "_exact": {k: ref[k] for k in ("mse", "psnr", "ssim")},
            }
        )
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
    df = df.astype({"frames": "Int64", "epochs": "Int64", "train s": "Int64"})
    if name:
        write_table(
            name,
            df,
            " ".join(
                [
                    CI_NOTE,
                    stats.METHOD.replace("test images", "test frames"),
                    footnote(study.provenance),
                    evaluation_note(study),
                ]
            ),
        )
        exact = pd.DataFrame(
            [{"model": r["model"], "data": r["data"], **r["_exact"]} for r in rows]
        )
        exact.to_csv(tables_dir() / f"{name}.csv", index=False)
    return df


def _number(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def references() -> list[dict]:
    """The rows the motion table compares with: the original report's REDS result and the
    SRN-DeblurNet paper's GoPro result."""
    report = dict(REPORT_REDS, epochs=150)
    spec_ref = get_spec(MODEL).reference
    report.update({k: spec_ref[k] for k in ("mse", "psnr", "ssim") if k in spec_ref})
    return [report, dict(PUBLISHED_GOPRO, epochs=2000)]


def evaluation_note(study: MotionStudy) -> str:
    """The table note saying how the test frames were scored and what the other rows are."""
    how = (
        "each frame deblurred whole"
        if study.plan.eval_crop is None
        else "each crop deblurred whole"
    ) + ", reflect-padded to a multiple of the network's stride and cropped back"
    return (
        f"Ours: {study.eval_description}, {how}. The original report averaged 500 whole REDS test "
        "frames; SRN-DeblurNet's numbers are from its paper on the GoPro test set. A row marked "
        "'not comparable' was measured on other data."
    )


def _gain_cell(gain: dict) -> str:
    low, high = gain["PSNR gain interval"]
    if not (np.isfinite(low) and np.isfinite(high)):  # one frame: no interval to draw
        return f"{gain['PSNR gain dB']:+.2f} (no interval)"
    return f"{gain['PSNR gain dB']:+.2f} [{low:+.2f}, {high:+.2f}]"


def gain_lines(study: MotionStudy, evaluation: Evaluation) -> list[str]:
    """Per test group, one line a model: does it improve on the blurred input (its paired PSNR
    interval above zero), fall below it, or not tell apart; with the SSIM gain and frames."""
    lines = []
    for group, positions in test_groups(study, evaluation).items():
        lines.append(group)
        for name, g in gains_over_input(evaluation, positions).items():
            low, high = g["PSNR gain interval"]
            verdict = (
                "improves on"
                if low > 0
                else "does NOT improve on"
                if high < 0
                else "cannot be told apart from"
            )
            lines.append(
                f"  {name} {verdict} the blurred input: PSNR {g['PSNR gain dB']:+.3f} dB "
                f"[{low:+.3f}, {high:+.3f}], SSIM {g['SSIM gain']:+.4f}; "
                f"better PSNR on {g['frames improved']} of {g['frames']} frames."
            )
    return lines


def test_groups(study: MotionStudy, evaluation: Evaluation) -> dict[str, np.ndarray]:
    """The evaluation's frames by test group (positions), or one group of them all."""
    groups = study.test_groups or {}
    if sum(len(p) for p in groups.values()) != len(evaluation.names):
        groups = {}
    return {k: np.asarray(v) for k, v in groups.items()} or {
        f"{study.data.label}, test": np.arange(len(evaluation.names))
    }


def gains_over_input(evaluation: Evaluation, positions=None) -> dict[str, dict]:
    """For each model, its gains over the blurred input (MSE reduction, PSNR and SSIM
    gains with the PSNR gain's paired interval, frames improved) on the frames ``positions``
    (default: all): name -> dict."""
    every = np.arange(len(next(iter(evaluation.scores.values()))["psnr"]))
    at = every if positions is None else np.asarray(positions)
    base_scores = {m: v[at] for m, v in evaluation.scores[BLURRED_INPUT].items()}
    base = M.summarize(base_scores)
    out = {}
    for name, per_image in evaluation.scores.items():
        if name == BLURRED_INPUT:
            continue
        per_image = {m: v[at] for m, v in per_image.items()}
        ours = M.summarize(per_image)
        psnr_gain = per_image["psnr"] - base_scores["psnr"]
        interval = stats.paired_difference(per_image["psnr"], base_scores["psnr"])
        out[name] = {
            "PSNR gain interval": [interval["low"], interval["high"]],
            "MSE reduction %": 100 * (1 - ours["mse"] / base["mse"]),
            "PSNR gain dB": ours["psnr"] - base["psnr"],
            "SSIM gain": ours["ssim"] - base["ssim"],
            "frames improved": int(np.sum(psnr_gain > 0)),
            "frames": int(len(psnr_gain)),
            "beats input": bool(ours["psnr"] > base["psnr"]),
        }
    return out


def save_results(
    chapter: str,
    study: MotionStudy,
    evaluation: Evaluation,
    results: dict[str, TrainResult],
    models: dict[str, keras.Model] | None = None,
    *,
    extra: dict | None = None,
) -> dict:
    """Write report/results/<chapter>.json, from which the report's text takes its numbers (with
    ``extra`` merged in), and the per-frame scores. Returns the payload."""
    plan = study.plan
    gains = gains_over_input(evaluation)
    groups = test_groups(study, evaluation)
    payload = {
        "chapter": chapter,
        "provenance": study.provenance,
        "data": study.data.source,
        "data_label": study.data.label,
        "data_kind": study.data.kind,
        "data_is_real": study.data.is_real,
        "protocol": study.data.protocol,
        "n_train_frames": len(study.data.train),
        "n_val_frames": len(study.data.val),
        "n_test_frames": len(study.data.test),
        "n_eval": len(evaluation.names),
        "eval": study.eval_description,
        "eval_note": evaluation_note(study),
        "eval_seconds_per_frame": evaluation.seconds_per_frame,
        "hardest_frame": evaluation.hardest_name,
        "plan": {
            "patch_size": plan.patch_size,
            "batch_size": plan.batch_size,
            "patches_per_image": plan.patches_per_image,
            "steps_per_epoch": steps_per_epoch(study),
            "epochs": plan.epochs,
            "n_val_patches": int(len(study.val[0])),
            "runs": [list(run) for run in plan.runs],
            "recipes": {r: MOTION_RECIPES[r] for r, _ in plan.runs},
            "learning_rate": get_spec(MODEL).training.get("learning_rate", 1e-4),
            "final_learning_rate_with_decay": MOTION_FINAL_LR,
        },
        "test_groups": {
            name: {
                "frames": [evaluation.names[i] for i in positions],
                "gains": gains_over_input(evaluation, positions),
            }
            for name, positions in groups.items()
        },
        "references": references(),
        "models": {},
    }
    if evaluation.hardest_name:
        at = evaluation.names.index(evaluation.hardest_name)
        payload["hardest_frame_metrics"] = {
            name: {m: float(v[at]) for m, v in per.items()}
            for name, per in evaluation.scores.items()
        }
    for name, per_image in evaluation.scores.items():
        entry = {"metrics": M.summarize(per_image)}
        if name in results:
            r = results[name]
            entry.update(
                epochs=r.epochs_run,
                train_seconds=r.train_seconds,
                best_epoch=r.best_epoch + 1,
                seconds_per_epoch=r.train_seconds / max(1, r.epochs_run),
                gains=gains.get(name),
                final_loss=float(r.history["loss"].iloc[-1]) if len(r.history) else None,
                final_val_loss=(
                    float(r.history["val_loss"].iloc[-1]) if "val_loss" in r.history else None
                ),
            )
        if models and name in models:
            entry["params"] = int(models[name].count_params())
        payload["models"][name] = entry
    payload.update(extra or {})
    write_results(chapter, payload)
    write_arrays(
        chapter, {**evaluation.score_arrays(), "names": np.array(evaluation.names, dtype=str)}
    )
    return payload
