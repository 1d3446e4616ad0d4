"""The motion-blur chapter (SRNDeblur_reds on REDS / GoPro / synthetic camera shake) in a few calls.

    study = prepare_study(profile)                # data found, split, fixed validation patches
    model, result = train_model(study, MODEL)     # patches, resumable training, best weights
    evaluation = evaluate(study, {MODEL: model})  # whole test frames, padded and cropped back
    table = results_table(study, evaluation, {MODEL: result}, name="srndeblur_reds")
    save_results("srndeblur_reds", study, evaluation, results, models)

The same calls, with the same signatures, as ``cifar_study``. The data are whatever
``deblurlab.data.pairs.find_motion_data`` finds (REDS, GoPro, the GoPro sample beside the checkout,
or synthetic camera shake on skimage photographs), and every table, figure and JSON result names
them. Inference is ``deblurlab.inference``, chapter 07's analysis ``deblurlab.patch_analysis``, the
figures ``deblurlab.motion_figures``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd

from . import compute, stats
from . import metrics as M
from .data import patches as P
from .data.pairs import FrameSet, MotionData, find_motion_data
from .inference import centre_crop, deblur_frame, downscale, full_resolution_model
from .models import build_model, get_spec
from .paths import tables_dir
from .profiles import MOTION_FINAL_LR, MotionPlan
from .provenance import footnote, provenance
from .results import BLURRED_INPUT, Evaluation, write_arrays, write_results
from .tables import CI_NOTE, exact_columns, score_cells, write_table
from .train import TrainResult, set_seeds, train

MODEL = "srndeblur_reds"
DECAY_SUFFIX = " + lr decay"
VAL_SEED = 11
TEST_PICK_SEED = 12
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


# --- data --------------------------------------------------------------------------------------


@dataclass
class MotionStudy:
    """The motion data of one profile: the frame sets, the fixed validation patches, the
    test frames used and the provenance of the run."""

    plan: MotionPlan
    data: MotionData
    val: tuple[np.ndarray, np.ndarray]
    test_indices: np.ndarray
    provenance: dict = field(default_factory=dict)

    @property
    def profile(self) -> str:
        """The profile name (``smoke``, ``default`` or ``full``)."""
        return self.plan.profile

    @property
    def eval_description(self) -> str:
        """The test frames (or centre crops) scored, in words."""
        n = len(self.test_indices)
        frames = f"{n} test frame{'s' if n != 1 else ''} of {self.data.label}"
        if self.plan.eval_crop:
            return f"centre {self.plan.eval_crop[1]}x{self.plan.eval_crop[0]} crops of {frames}"
        return f"{n} whole test frame{'s' if n != 1 else ''} of {self.data.label}"

    def describe(self) -> str:
        """One line: the data and the profile."""
        return f"{self.data.source}; profile {self.profile}"


def pick_test_frames(test: FrameSet, n: int | None, seed: int = TEST_PICK_SEED) -> np.ndarray:
    """All test frames when there are at most ``n``, else ``n`` of them drawn with a fixed seed
    (sorted, so a clip's frames stay together)."""
    if n is None or n >= len(test):
        return np.arange(len(test))
    return np.sort(np.random.default_rng(seed).choice(len(test), size=n, replace=False))


def prepare_study(
    profile: str | None = None, data_dir=None, *, plan: MotionPlan | None = None
) -> MotionStudy:
    """Find the data, split it, cut the fixed validation patches and pick the test frames.
    ``plan`` overrides the profile's sizes (tests use tiny ones). Returns a ``MotionStudy``."""
    plan = plan or MotionPlan.for_profile(profile)
    data = find_motion_data(data_dir, synthetic_kernels=plan.synthetic_kernels)
    for note in data.notes:
        print(note)
    val = P.fixed_patches(
        data.val,
        plan.n_val,
        plan.patch_size,
        seed=VAL_SEED,
        patches_per_image=plan.patches_per_image,
    )
    test_indices = pick_test_frames(data.test, plan.n_eval)
    return MotionStudy(plan, data, val, test_indices, provenance(data.source, plan.profile))


# --- training ----------------------------------------------------------------------------------


def label(model_name: str, lr_decay: bool) -> str:
    """The table label of ``model_name``, marked when trained with a decaying learning rate."""
    return model_name + (DECAY_SUFFIX if lr_decay else "")


def run_name(study: MotionStudy, model_name: str = MODEL, *, lr_decay: bool = False) -> str:
    """The training run's folder name under runs/."""
    return f"motion-{study.data.kind}-{model_name}{'-lrdecay' if lr_decay else ''}-{study.profile}"


def exponential_decay(initial: float, final: float, epochs: int):
    """lr(epoch) = initial * (final / initial) ** (epoch / (epochs - 1)): from ``initial`` at the
    first epoch to ``final`` at the last, a constant factor a step."""

    def schedule(epoch, lr=None):
        return float(initial * (final / initial) ** (epoch / max(1, epochs - 1)))

    return schedule


IDENTITY_ZERO = (
    "enc0_res1_b_conv",
    "enc0_res2_b_conv",
    "dec0_res1_b_conv",
    "dec0_res2_b_conv",
    "dec1_up_conv",
)


def identity_init(model: keras.Model, channels: int = 3) -> keras.Model:
    """Start SRNDeblur_reds as the identity: each scale returns its blurred input unchanged.

    The network keeps its architecture; only some initial weights change, in the spirit of
    zero-initialised residual branches (Goyal et al. 2017; Fixup, Zhang et al. 2019):

    - the last convolution of every full-resolution ResBlock (``enc0_*``, ``dec0_*``) and the
      upsampling convolution that feeds the full-resolution skip (``dec1_up``) start at zero, so
      the blocks pass their input through and the deeper path (the ConvLSTM bottleneck included)
      starts silent, as a residual branch does;
    - the first 3 filters of the 3x3 stem copy the blurred RGB channels, and the output convolution
      copies them back (its other weights start at zero).

    Every weight still trains, and after the first step the silent paths receive gradients. From
    Keras's default initialisation the network spends its first hundreds of steps learning to
    reproduce its input, far beyond a CPU budget; the check at the end fails loudly if the layer
    names of ``models/srndeblur.py`` change.
    """

    def layer(name):
        try:
            return model.get_layer(name)
        except ValueError:
            raise ValueError(
                f"identity_init: {model.name} has no layer {name!r}; it expects the "
                "layer names of deblurlab.models.srndeblur (srndeblur_reds)."
            ) from None

    for name in IDENTITY_ZERO:
        kernel, bias = layer(name).get_weights()
        layer(name).set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    for name in ("stem_3x3_conv", "output_conv"):
        kernel, bias = layer(name).get_weights()
        centre = kernel.shape[0] // 2
        if name == "output_conv":
            kernel[:] = 0.0
            bias[:] = 0.0
        else:
            kernel[..., :channels] = 0.0
            bias[:channels] = 0.0
        for c in range(channels):
            kernel[centre, centre, c, c] = 1.0
        layer(name).set_weights([kernel, bias])
    size = tuple(s or 16 for s in model.input_shape[1:3])
    probe = np.random.default_rng(0).random((1, *size, channels)).astype(np.float32)
    outputs = model(probe, training=False)
    fine = np.asarray(
        outputs[-1] if isinstance(outputs, (list, tuple)) else outputs, dtype=np.float32
    )
    tolerance = (
        1e-5 if model.compute_dtype == "float32" else 2e-2
    )  # 16-bit arithmetic under mixed precision
    if not np.allclose(fine, probe, atol=tolerance):
        raise ValueError(
            "identity_init: the network does not reproduce its input after "
            "initialisation; models/srndeblur.py has changed its structure."
        )
    return model


def train_model(
    study: MotionStudy,
    model_name: str = MODEL,
    *,
    lr_decay: bool = False,
    seed: int = 0,
    init: str = "identity",
    epochs: int | None = None,
    callbacks: list | None = None,
) -> tuple[keras.Model, TrainResult]:
    """Train on patches of the training frames (or resume, or load a finished run).

    ``init="identity"`` starts the network as the identity (``identity_init``); ``"default"``
    keeps Keras's initialisation, as the original report did. ``epochs`` overrides the
    profile's epoch limit; ``callbacks`` are added to training's own. Returns (model, result).
    """
    plan = study.plan
    config = plan.train_config(model_name, seed=seed)
    if epochs is not None:
        config.epochs = epochs
    if init not in ("identity", "default"):
        raise ValueError(f"init={init!r}: choose 'identity' or 'default'")

    def make_stream(first_epoch, last_epoch):
        return P.patch_stream(
            study.data.train,
            config.batch_size,
            seed,
            first_epoch,
            last_epoch,
            plan.patch_size,
            plan.patches_per_image,
            plan.images_per_epoch,
        )

    callbacks = list(callbacks or [])
    if lr_decay:
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                exponential_decay(config.learning_rate, MOTION_FINAL_LR, config.epochs)
            )
        )
    name = run_name(
        study, model_name if init == "identity" else model_name + "-defaultinit", lr_decay=lr_decay
    )
    setup = compute.current(model_name)
    with setup.scope():  # precision and, on several GPUs, MirroredStrategy
        set_seeds(seed)
        model = build_model(model_name, input_shape=(plan.patch_size, plan.patch_size, 3))
        if init == "identity":
            identity_init(model)
        result = train(
            model, make_stream, study.val, name, config, callbacks=callbacks, setup=setup
        )
    print(f"{label(model_name, lr_decay)} ({setup.describe()}): {result.summary()}")
    return model, result


def steps_per_epoch(study: MotionStudy) -> int:
    """The training steps of one epoch at the study's profile."""
    images = study.plan.images_per_epoch or len(study.data.train)
    return images // (study.plan.batch_size // study.plan.patches_per_image)


def training_patches_per_s(study: MotionStudy, result: TrainResult) -> float:
    """Training patches consumed a second over ``result``'s epochs."""
    patches = study.plan.batch_size * steps_per_epoch(study) * result.epochs_run
    return patches / max(result.train_seconds, 1e-9)


# --- evaluation -------------------------------------------------------------------------------


def evaluate(
    study: MotionStudy,
    models: dict[str, keras.Model],
    *,
    tile: int | None = None,
    verbose: bool = True,
) -> Evaluation:
    """MSE, PSNR and SSIM of whole test frames (cropped only in the smoke profile), the blurred
    input first. ``models`` maps a row label to a trained model of any input size; ``tile`` runs
    frames larger than it in tiles. Returns an ``Evaluation`` with the frames' names and the
    hardest frame (largest blurred-input MSE) kept whole for figures."""
    nets = {
        name: full_resolution_model(model, _model_name(model)) for name, model in models.items()
    }
    per = {name: {"mse": [], "psnr": [], "ssim": []} for name in [BLURRED_INPUT, *nets]}
    names, hardest, hardest_name, worst = [], {}, "", -1.0
    seconds = 0.0
    for k, index in enumerate(study.test_indices):
        blurred, sharp = study.data.test.load(index)
        crop = study.plan.eval_crop
        blurred, sharp = centre_crop(blurred, crop), centre_crop(sharp, crop)
        outputs = {BLURRED_INPUT: blurred}
        start = time.perf_counter()
        for name, net in nets.items():
            outputs[name] = deblur_frame(net, blurred, tile=tile)
        seconds += time.perf_counter() - start
        for name, image in outputs.items():
            for metric, values in M.per_image_metrics(image, sharp).items():
                per[name][metric].append(float(values[0]))
        names.append(study.data.test.names[index])
        if per[BLURRED_INPUT]["mse"][-1] > worst:
            worst, hardest_name = per[BLURRED_INPUT]["mse"][-1], names[-1]
            hardest = {**outputs, "sharp": sharp}
        if verbose:
            print(
                f"[{k + 1}/{len(study.test_indices)}] {names[-1]}: "
                + ", ".join(f"{name} {per[name]['psnr'][-1]:.2f} dB" for name in per),
                flush=True,
            )
    scores = {name: {m: np.array(v) for m, v in metrics.items()} for name, metrics in per.items()}
    n_runs = max(1, len(study.test_indices) * max(1, len(nets)))
    return Evaluation(scores, names, hardest, hardest_name, seconds / n_runs)


def lowres_comparison(
    evaluation: Evaluation, model: keras.Model, name: str, factor: int = 4
) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The hardest frame reduced ``factor`` times (area average) and restored by ``model``.
    Returns (images: blurred input, ``name``, sharp; metrics of the blurred input and ``name``)."""
    hard = evaluation.hardest
    small = {k: downscale(hard[k], factor) for k in (BLURRED_INPUT, "sharp")}
    restored = deblur_frame(full_resolution_model(model, _model_name(model)), small[BLURRED_INPUT])
    metrics = {
        BLURRED_INPUT: M.image_metrics(small[BLURRED_INPUT], small["sharp"]),
        name: M.image_metrics(restored, small["sharp"]),
    }
    return {BLURRED_INPUT: small[BLURRED_INPUT], name: restored, "sharp": small["sharp"]}, metrics


def _model_name(model: keras.Model) -> str:
    return model.name if model.name in _registered() else MODEL


def _registered() -> set[str]:
    from .models import list_models

    return set(list_models())


# --- tables and results ----------------------------------------------------------------------


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
    ours = f"{study.data.label}, test"
    rows = []
    for label_, per_image in evaluation.scores.items():
        summary = stats.summarize_ci(per_image)
        result = results.get(label_)
        params = models[label_].count_params() if models and label_ in models else None
        rows.append(
            {
                "model": label_ if label_ == BLURRED_INPUT else f"{label_} (ours)",
                "data": ours,
                "frames": len(evaluation.names),
                "params": f"{params:,}" if params else "–",
                "epochs": result.epochs_run if result else None,
                "train s": round(result.train_seconds) if result else None,
                **score_cells(summary),
                "comparable": "this run",
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


def gains_over_input(evaluation: Evaluation) -> dict[str, dict]:
    """For each model, its gains over the blurred input (MSE reduction, PSNR and SSIM
    gains, frames improved): name -> dict."""
    base = M.summarize(evaluation.scores[BLURRED_INPUT])
    out = {}
    for name, per_image in evaluation.scores.items():
        if name == BLURRED_INPUT:
            continue
        ours = M.summarize(per_image)
        psnr_gain = per_image["psnr"] - evaluation.scores[BLURRED_INPUT]["psnr"]
        out[name] = {
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
            "learning_rate": get_spec(MODEL).training.get("learning_rate", 1e-4),
            "final_learning_rate_with_decay": MOTION_FINAL_LR,
            "lr_decay_runs": list(plan.lr_decay),
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
