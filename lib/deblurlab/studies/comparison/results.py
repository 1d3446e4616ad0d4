"""The comparison chapter's tables and saved results: mean scores per method, scores per σ bin,
and report/results/comparison.json with every number the report's section quotes.

    table = comparison_table(study, scores, kinds, tuned, name="comparison")
    payload = save_results(study, scores, kinds, tuned, cost, peak, verdict_table, sentences, hard)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core import metrics as M
from ...core import stats
from ...core.metrics import SIGMA_BINS, metrics_by_sigma
from ...core.paths import tables_dir
from ...core.results import BLURRED_INPUT
from ...core.tables import CI_NOTE, exact_columns, footnote, score_cells, write_table
from ..cifar.study import CifarStudy
from . import baselines as B

# ------------------------------------------------------------------------------------------ tables


def comparison_table(
    study: CifarStudy,
    scores,
    kinds: dict[str, str],
    tuned: dict[str, B.TuneResult],
    name: str | None = None,
) -> pd.DataFrame:
    """Mean MSE, PSNR and SSIM on the test set, one row a method (input, baselines, models)."""
    rows, exact = [], []
    for method, per_image in scores.items():
        summary = stats.summarize_ci(per_image)
        setting = "–"
        if method in tuned:
            params = tuned[method].params
            setting = (
                ", ".join(f"{k} = {v:g}" for k, v in params.items()) if params else "self-tuned"
            )
        rows.append(
            {
                "method": method,
                "kind": kinds.get(method, "model"),
                "setting": setting,
                **score_cells(summary),
            }
        )
        exact.append({"method": method, **exact_columns(summary)})
    df = pd.DataFrame(rows)
    if name:
        write_table(
            name,
            df,
            f"{CI_NOTE} {stats.METHOD} "
            + footnote(study.provenance)
            + f" Test set: {len(study.splits.test):,} held-out "
            "images blurred once with a fixed seed (σ ~ U(0, 3)). Baselines deconvolve with the "
            "true kernel of each image, which the networks never see; their parameters were tuned "
            f"on the {len(study.splits.val):,} validation images.",
        )
        pd.DataFrame(exact).to_csv(tables_dir() / f"{name}.csv", index=False)
    return df


def sigma_table(
    study: CifarStudy, scores, name: str | None = None, bins=SIGMA_BINS
) -> pd.DataFrame:
    """Mean MSE, PSNR and SSIM per σ bin: one row a (metric, method), one column a bin."""
    long = metrics_by_sigma(study.test_sigmas, scores, bins)
    digits = {"mse": 5, "psnr": 2, "ssim": 4}
    blocks = []
    for metric in ("mse", "psnr", "ssim"):
        wide = long.pivot_table(index="method", columns="σ bin", values=metric, sort=False)
        wide = wide.reindex(list(scores)).map(
            lambda v, d=digits[metric]: "–" if pd.isna(v) else f"{v:.{d}f}"
        )
        wide.insert(0, "metric", metric.upper())
        blocks.append(wide.reset_index())
    df = pd.concat(blocks, ignore_index=True)
    df.columns.name = None
    if name:
        counts = long.drop_duplicates("σ bin").set_index("σ bin")["n"]
        write_table(
            name,
            df,
            footnote(study.provenance)
            + " Test images per σ bin: "
            + ", ".join(f"{b}: {n}" for b, n in counts.items())
            + ".",
        )
    return df


# ------------------------------------------------------------------------------------------ results


def save_results(
    study: CifarStudy,
    scores,
    kinds: dict[str, str],
    tuned: dict[str, B.TuneResult],
    cost: pd.DataFrame,
    peak_gflops: float,
    verdict_table: dict,
    sentences: list[str],
    hard: dict,
    padding: pd.DataFrame | None = None,
    baseline_seconds: dict | None = None,
    chapter: str = "comparison",
) -> dict:
    """Write report/results/<chapter>.json with every number the report's section quotes.
    Returns the payload."""
    from ...core.results import jsonable, write_results

    methods = {}
    cost_rows = cost.set_index("method").to_dict(orient="index")
    for method, per_image in scores.items():
        entry = {"kind": kinds.get(method, "model"), "metrics": M.summarize(per_image)}
        if method in tuned:
            entry["params"] = tuned[method].params
        if method in cost_rows:
            entry["cost"] = {k: (None if pd.isna(v) else v) for k, v in cost_rows[method].items()}
        methods[method] = entry
    baselines = [m for m, k in kinds.items() if k == "baseline"]
    models = [m for m in scores if kinds.get(m, "model") == "model"]
    by_mse = lambda names: min(names, key=lambda n: methods[n]["metrics"]["mse"]) if names else None  # noqa: E731
    best_baseline, best_model = by_mse(baselines), by_mse(models)
    long = metrics_by_sigma(study.test_sigmas, scores)
    by_sigma = {}
    for bin_name, rows in long.groupby("σ bin", sort=False):
        rows = rows.set_index("method")
        entry = {
            "n": int(rows["n"].iloc[0]),
            "metrics": {
                m: {k: jsonable(rows.loc[m, k]) for k in ("mse", "psnr", "ssim")}
                for m in rows.index
            },
        }
        ranked = [
            m
            for m in rows.sort_values("mse").index
            if m != BLURRED_INPUT and np.isfinite(rows.loc[m, "mse"])
        ]
        entry.update(
            best=ranked[0] if ranked else None,
            best_baseline=next((m for m in ranked if m in baselines), None),
            best_model=next((m for m in ranked if m in models), None),
        )
        by_sigma[bin_name] = entry
    hard = dict(hard)
    if "scores" in hard:
        restorers = [m for m in hard["scores"] if m != BLURRED_INPUT]
        hard["best_psnr"] = (
            max(restorers, key=lambda m: hard["scores"][m]["psnr"]) if restorers else None
        )
        hard["best_ssim"] = (
            max(restorers, key=lambda m: hard["scores"][m]["ssim"]) if restorers else None
        )
    beating_all = [m for m in models if all(all(v.values()) for v in verdict_table[m].values())]
    costs = {m: methods[m].get("cost", {}) for m in methods}

    def extreme(names, key, largest=True):
        known = [n for n in names if costs[n].get(key) is not None]
        return (max if largest else min)(known, key=lambda n: costs[n][key]) if known else None

    cost_summary = {
        "fewest_flops": extreme(models, "MFLOP/image", False),
        "most_flops": extreme(models, "MFLOP/image"),
        "fastest_model": extreme(models, "infer img/s"),
        "slowest_model": extreme(models, "infer img/s", False),
        "fastest_baseline": extreme(baselines, "infer img/s"),
        "slowest_baseline": extreme(baselines, "infer img/s", False),
        "best_peak_fraction": extreme(models, "% of fp32 peak"),
    }
    beating_none = [
        m for m in models if not any(any(v.values()) for v in verdict_table[m].values())
    ]
    payload = {
        "chapter": chapter,
        "provenance": study.provenance,
        "data": study.describe(),
        "n_test": len(study.splits.test),
        "n_val": len(study.splits.val),
        "methods": methods,
        "baselines": baselines,
        "models": models,
        "best_baseline": best_baseline,
        "best_model": best_model,
        "best_model_beats_best_baseline": bool(
            best_model and best_baseline and all(verdict_table[best_model][best_baseline].values())
        ),
        "models_beating_best_baseline": [
            m for m in models if best_baseline and all(verdict_table[m][best_baseline].values())
        ],
        "models_beating_all_baselines": beating_all,
        "models_beating_no_baseline": beating_none,
        "verdicts": verdict_table,
        "sentences": sentences,
        "peak_gflops": peak_gflops,
        "hard_image": hard,
        "by_sigma": by_sigma,
        "cost_summary": cost_summary,
        "tuning": {
            m: {"params": r.params, "metric": r.metric, "grid": r.scores.to_dict(orient="list")}
            for m, r in tuned.items()
        },
        "padding": [] if padding is None else padding.to_dict(orient="records"),
        "baseline_seconds": baseline_seconds or {},
        "pad_factor": B.PAD_FACTOR,
    }
    write_results(chapter, payload)
    return payload
