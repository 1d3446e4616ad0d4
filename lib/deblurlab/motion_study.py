"""The motion-blur chapter (SRNDeblur_reds on REDS / GoPro / synthetic camera shake) in a few calls.

    study = prepare_study(profile)                      # data found, split, fixed validation patches
    model, result = train_model(study)                  # patches, resumable training, best weights
    scores = evaluate(study, {"srndeblur_reds": model}) # whole test frames, padded and cropped back
    table = results_table(study, scores, {"srndeblur_reds": result}, name="srndeblur_reds")
    save_results("srndeblur_reds", study, scores, results, models)

The data are whatever ``deblurlab.data.pairs.find_motion_data`` finds (REDS, GoPro, the GoPro sample
beside the checkout, or synthetic camera shake on skimage photographs), and every table, figure
and JSON result names them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import compute, stats
from . import metrics as M
from .data import patches as P
from .data.pairs import FrameSet, MotionData, find_motion_data
from .models import build_model, get_spec
from .paths import results_dir, tables_dir
from .profiles import MOTION_FINAL_LR, MotionPlan
from .provenance import footnote, provenance
from .tables import CI_NOTE, exact_columns, score_cells, write_table
from .train import TrainResult, set_seeds, train

MODEL = "srndeblur_reds"
BLURRED_INPUT = "blurred input"
DECAY_SUFFIX = " + lr decay"
VAL_SEED = 11
TEST_PICK_SEED = 12
# What the original report and the SRN-DeblurNet paper published (quoted by the report, Table 5).
REPORT_REDS = dict(model="SRNDeblur_reds (original report)", data="REDS: first 24 training clips",
                   frames=500, mse=0.002, psnr=27.23, ssim=0.8105, kind="reds")
PUBLISHED_GOPRO = dict(model="SRN-DeblurNet (Tao et al. 2018, published)", data="GoPro test set",
                       frames=None, mse=None, psnr=30.26, ssim=0.9342, kind="gopro")


# --- data --------------------------------------------------------------------------------------

@dataclass
class MotionStudy:
    plan: MotionPlan
    data: MotionData
    val: tuple[np.ndarray, np.ndarray]
    test_indices: np.ndarray
    provenance: dict = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.plan.profile

    @property
    def eval_description(self) -> str:
        n = len(self.test_indices)
        frames = f"{n} test frame{'s' if n != 1 else ''} of {self.data.label}"
        if self.plan.eval_crop:
            return f"centre {self.plan.eval_crop[1]}x{self.plan.eval_crop[0]} crops of {frames}"
        return f"{n} whole test frame{'s' if n != 1 else ''} of {self.data.label}"

    def describe(self) -> str:
        return f"{self.data.source}; profile {self.profile}"


def pick_test_frames(test: FrameSet, n: int | None, seed: int = TEST_PICK_SEED) -> np.ndarray:
    """All test frames when there are at most ``n``, else ``n`` of them drawn with a fixed seed
    (sorted, so a clip's frames stay together)."""
    if n is None or n >= len(test):
        return np.arange(len(test))
    return np.sort(np.random.default_rng(seed).choice(len(test), size=n, replace=False))


def prepare_study(profile: str | None = None, data_dir=None, plan: MotionPlan | None = None) -> MotionStudy:
    """Find the data, split it, cut the fixed validation patches and pick the test frames.
    ``plan`` overrides the profile's sizes (tests use tiny ones)."""
    plan = plan or MotionPlan.for_profile(profile)
    data = find_motion_data(data_dir, synthetic_kernels=plan.synthetic_kernels)
    for note in data.notes:
        print(note)
    val = P.fixed_patches(data.val, plan.n_val, plan.patch_size, seed=VAL_SEED,
                          patches_per_image=plan.patches_per_image)
    test_indices = pick_test_frames(data.test, plan.n_eval)
    return MotionStudy(plan, data, val, test_indices, provenance(data.source, plan.profile))


# --- training ----------------------------------------------------------------------------------

def label(model_name: str, lr_decay: bool) -> str:
    return model_name + (DECAY_SUFFIX if lr_decay else "")


def run_name(study: MotionStudy, model_name: str = MODEL, lr_decay: bool = False) -> str:
    return f"motion-{study.data.kind}-{model_name}{'-lrdecay' if lr_decay else ''}-{study.profile}"


def exponential_decay(initial: float, final: float, epochs: int):
    """lr(epoch) = initial * (final / initial) ** (epoch / (epochs - 1)): from ``initial`` at the
    first epoch to ``final`` at the last, a constant factor a step."""
    def schedule(epoch, lr=None):
        return float(initial * (final / initial) ** (epoch / max(1, epochs - 1)))

    return schedule


IDENTITY_ZERO = ("enc0_res1_b_conv", "enc0_res2_b_conv", "dec0_res1_b_conv", "dec0_res2_b_conv", "dec1_up_conv")


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
            raise ValueError(f"identity_init: {model.name} has no layer {name!r}; it expects the "
                             "layer names of deblurlab.models.srndeblur (srndeblur_reds).") from None

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
    fine = np.asarray(outputs[-1] if isinstance(outputs, (list, tuple)) else outputs, dtype=np.float32)
    tolerance = 1e-5 if model.compute_dtype == "float32" else 2e-2  # 16-bit arithmetic under mixed precision
    if not np.allclose(fine, probe, atol=tolerance):
        raise ValueError("identity_init: the network does not reproduce its input after "
                         "initialisation; models/srndeblur.py has changed its structure.")
    return model


def train_model(study: MotionStudy, model_name: str = MODEL, lr_decay: bool = False,
                seed: int = 0, init: str = "identity") -> tuple[keras.Model, TrainResult]:
    """Train on patches of the training frames (or resume, or load a finished run).

    ``init="identity"`` starts the network as the identity (``identity_init``); ``"default"``
    keeps Keras's initialisation, as the original report did.
    """
    plan = study.plan
    config = plan.train_config(model_name, seed=seed)
    if init not in ("identity", "default"):
        raise ValueError(f"init={init!r}: choose 'identity' or 'default'")

    def make_stream(first_epoch, last_epoch):
        return P.patch_stream(study.data.train, config.batch_size, seed, first_epoch, last_epoch,
                              plan.patch_size, plan.patches_per_image, plan.images_per_epoch)

    callbacks = []
    if lr_decay:
        callbacks.append(keras.callbacks.LearningRateScheduler(
            exponential_decay(config.learning_rate, MOTION_FINAL_LR, config.epochs)))
    name = run_name(study, model_name, lr_decay) if init == "identity" else \
        run_name(study, model_name + "-defaultinit", lr_decay)
    setup = compute.current(model_name)
    with setup.scope():  # precision and, on several GPUs, MirroredStrategy
        set_seeds(seed)
        model = build_model(model_name, input_shape=(plan.patch_size, plan.patch_size, 3))
        if init == "identity":
            identity_init(model)
        result = train(model, make_stream, study.val, name, config, callbacks=callbacks, setup=setup)
    print(f"{label(model_name, lr_decay)} ({setup.describe()}): {result.summary()}")
    return model, result


def steps_per_epoch(study: MotionStudy) -> int:
    images = study.plan.images_per_epoch or len(study.data.train)
    return images // (study.plan.batch_size // study.plan.patches_per_image)


# --- full-resolution inference ---------------------------------------------------------------

def network_multiple(model: keras.Model, default: int = 8) -> int:
    """The size multiple the network needs (SRNDeblur_reds: 8)."""
    return int(getattr(model, "required_multiple", default))


def full_resolution_model(trained: keras.Model, model_name: str = MODEL) -> keras.Model:
    """The same network built for any input size, holding the trained weights."""
    model = build_model(model_name, input_shape=(None, None, 3))
    model.set_weights(trained.get_weights())
    return model


def pad_to_multiple(image: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an (H, W, C) image at the bottom and right to multiples of ``multiple``."""
    h, w = image.shape[:2]
    ph, pw = -h % multiple, -w % multiple
    mode = "reflect" if ph < h and pw < w else "symmetric"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode), (h, w)


def _run(model: keras.Model, image: np.ndarray) -> np.ndarray:
    out = model(image[None].astype(np.float32), training=False)
    out = out[-1] if isinstance(out, (list, tuple)) else out
    return np.asarray(out[0], dtype=np.float32)


def deblur_frame(model: keras.Model, blurred: np.ndarray, multiple: int | None = None,
                 tile: int | None = None, overlap: int = 32) -> np.ndarray:
    """Restore one whole (H, W, 3) frame: pad to a multiple of the network's stride, run, crop
    back to (H, W), clip to [0, 1]. With ``tile`` (a multiple of the stride), the frame is
    processed in tile x tile pieces overlapping by ``overlap`` pixels, each keeping its centre,
    for when a whole frame does not fit in memory."""
    multiple = multiple or network_multiple(model)
    padded, (h, w) = pad_to_multiple(np.asarray(blurred, np.float32), multiple)
    if tile is None or (padded.shape[0] <= tile and padded.shape[1] <= tile):
        return np.clip(_run(model, padded)[:h, :w], 0.0, 1.0)
    if tile % multiple or tile <= 2 * overlap:
        raise ValueError(f"tile={tile} must be a multiple of {multiple} and larger than 2 x overlap={overlap}")
    out = np.zeros_like(padded)
    step = tile - 2 * overlap
    H, W = padded.shape[:2]
    for top in range(0, H, step):
        for left in range(0, W, step):
            y0, x0 = max(0, min(top - overlap, H - tile)), max(0, min(left - overlap, W - tile))
            piece = _run(model, padded[y0:y0 + tile, x0:x0 + tile])
            y1, x1 = min(top + step, H), min(left + step, W)
            out[top:y1, left:x1] = piece[top - y0:y1 - y0, left - x0:x1 - x0]
    return np.clip(out[:h, :w], 0.0, 1.0)


def centre_crop(image: np.ndarray, size) -> np.ndarray:
    if size is None:
        return image
    h, w = min(size[0], image.shape[0]), min(size[1], image.shape[1])
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    return image[top:top + h, left:left + w]


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Area-average downscaling by an integer factor (a low-resolution view of a frame)."""
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    return image[:h, :w].reshape(h // factor, factor, w // factor, factor, -1).mean(axis=(1, 3)).astype(np.float32)


@dataclass
class Evaluation:
    """Per-frame metrics of every method, and the hardest frame (largest blurred-input MSE) kept
    whole for figures."""

    scores: dict[str, dict[str, np.ndarray]]
    names: list[str]
    hardest: dict[str, np.ndarray]
    hardest_name: str
    seconds_per_frame: float


def evaluate(study: MotionStudy, models: dict[str, keras.Model], tile: int | None = None,
             verbose: bool = True) -> Evaluation:
    """MSE, PSNR and SSIM of whole test frames (cropped only in the smoke profile), the blurred
    input first. ``models`` maps a row label to a trained model of any input size."""
    import time

    nets = {name: full_resolution_model(model, _model_name(model)) for name, model in models.items()}
    per = {name: {"mse": [], "psnr": [], "ssim": []} for name in [BLURRED_INPUT, *nets]}
    names, hardest, hardest_name, worst = [], {}, "", -1.0
    seconds = 0.0
    for k, index in enumerate(study.test_indices):
        blurred, sharp = study.data.test.load(index)
        blurred, sharp = centre_crop(blurred, study.plan.eval_crop), centre_crop(sharp, study.plan.eval_crop)
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
            print(f"[{k + 1}/{len(study.test_indices)}] {names[-1]}: " + ", ".join(
                f"{name} {per[name]['psnr'][-1]:.2f} dB" for name in per), flush=True)
    scores = {name: {m: np.array(v) for m, v in metrics.items()} for name, metrics in per.items()}
    n_runs = max(1, len(study.test_indices) * max(1, len(nets)))
    return Evaluation(scores, names, hardest, hardest_name, seconds / n_runs)


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


def results_table(study: MotionStudy, evaluation: Evaluation, results: dict[str, TrainResult],
                  models: dict[str, keras.Model] | None = None, name: str | None = None) -> pd.DataFrame:
    """Our rows (blurred input, each trained model) beside the report's REDS row and the published
    GoPro row; every row names its dataset, and rows on other data are flagged."""
    ours = f"{study.data.label}, test"
    rows = []
    for label_, per_image in evaluation.scores.items():
        summary = stats.summarize_ci(per_image)
        result = results.get(label_)
        params = models[label_].count_params() if models and label_ in models else None
        rows.append({"model": label_ if label_ == BLURRED_INPUT else f"{label_} (ours)", "data": ours,
                     "frames": len(evaluation.names), "params": f"{params:,}" if params else "–",
                     "epochs": result.epochs_run if result else None,
                     "train s": round(result.train_seconds) if result else None,
                     **score_cells(summary), "comparable": "this run", "_exact": exact_columns(summary)})
    for ref in references():
        rows.append({"model": ref["model"], "data": ref["data"], "frames": ref["frames"], "params": "–",
                     "epochs": ref.get("epochs"), "train s": None, "MSE": _number(ref["mse"], 5),
                     "PSNR": _number(ref["psnr"], 2), "mean-MSE PSNR": "–", "SSIM": _number(ref["ssim"], 4),
                     "comparable": _comparable(ref, study.data),
                     "_exact": {k: ref[k] for k in ("mse", "psnr", "ssim")}})
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "_exact"} for r in rows])
    df = df.astype({"frames": "Int64", "epochs": "Int64", "train s": "Int64"})
    if name:
        write_table(name, df, " ".join([CI_NOTE, stats.METHOD.replace("test images", "test frames"),
                                        footnote(study.provenance), evaluation_note(study)]))
        exact = pd.DataFrame([{"model": r["model"], "data": r["data"], **r["_exact"]} for r in rows])
        exact.to_csv(tables_dir() / f"{name}.csv", index=False)
    return df


def _number(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def references() -> list[dict]:
    report = dict(REPORT_REDS, epochs=150)
    spec_ref = get_spec(MODEL).reference
    report.update({k: spec_ref[k] for k in ("mse", "psnr", "ssim") if k in spec_ref})
    return [report, dict(PUBLISHED_GOPRO, epochs=2000)]


def evaluation_note(study: MotionStudy) -> str:
    how = ("each frame deblurred whole" if study.plan.eval_crop is None else "each crop deblurred whole") + \
        ", reflect-padded to a multiple of the network's stride and cropped back"
    return (f"Ours: {study.eval_description}, {how}. The original report averaged 500 whole REDS test "
            "frames; SRN-DeblurNet's numbers are from its paper on the GoPro test set. A row marked "
            "'not comparable' was measured on other data.")


def gains_over_input(evaluation: Evaluation) -> dict[str, dict]:
    base = M.summarize(evaluation.scores[BLURRED_INPUT])
    out = {}
    for name, per_image in evaluation.scores.items():
        if name == BLURRED_INPUT:
            continue
        ours = M.summarize(per_image)
        psnr_gain = per_image["psnr"] - evaluation.scores[BLURRED_INPUT]["psnr"]
        out[name] = {"MSE reduction %": 100 * (1 - ours["mse"] / base["mse"]),
                     "PSNR gain dB": ours["psnr"] - base["psnr"], "SSIM gain": ours["ssim"] - base["ssim"],
                     "frames improved": int(np.sum(psnr_gain > 0)), "frames": int(len(psnr_gain)),
                     "beats input": bool(ours["psnr"] > base["psnr"])}
    return out


def save_results(chapter: str, study: MotionStudy, evaluation: Evaluation, results: dict[str, TrainResult],
                 models: dict[str, keras.Model] | None = None, extra: dict | None = None) -> dict:
    """Write report/results/<chapter>.json, from which the report's text takes its numbers."""
    plan = study.plan
    gains = gains_over_input(evaluation)
    payload = {
        "chapter": chapter, "provenance": study.provenance, "data": study.data.source,
        "data_label": study.data.label, "data_kind": study.data.kind, "data_is_real": study.data.is_real,
        "protocol": study.data.protocol, "n_train_frames": len(study.data.train),
        "n_val_frames": len(study.data.val), "n_test_frames": len(study.data.test),
        "n_eval": len(evaluation.names), "eval": study.eval_description, "eval_note": evaluation_note(study),
        "eval_seconds_per_frame": evaluation.seconds_per_frame, "hardest_frame": evaluation.hardest_name,
        "plan": {"patch_size": plan.patch_size, "batch_size": plan.batch_size,
                 "patches_per_image": plan.patches_per_image, "steps_per_epoch": steps_per_epoch(study),
                 "epochs": plan.epochs, "n_val_patches": int(len(study.val[0])),
                 "learning_rate": get_spec(MODEL).training.get("learning_rate", 1e-4),
                 "final_learning_rate_with_decay": MOTION_FINAL_LR, "lr_decay_runs": list(plan.lr_decay)},
        "references": references(), "models": {},
    }
    if evaluation.hardest_name:
        at = evaluation.names.index(evaluation.hardest_name)
        payload["hardest_frame_metrics"] = {name: {m: float(v[at]) for m, v in per.items()}
                                            for name, per in evaluation.scores.items()}
    for name, per_image in evaluation.scores.items():
        entry = {"metrics": M.summarize(per_image)}
        if name in results:
            r = results[name]
            entry.update(epochs=r.epochs_run, train_seconds=r.train_seconds, best_epoch=r.best_epoch + 1,
                         seconds_per_epoch=r.train_seconds / max(1, r.epochs_run), gains=gains.get(name),
                         final_loss=float(r.history["loss"].iloc[-1]) if len(r.history) else None,
                         final_val_loss=(float(r.history["val_loss"].iloc[-1])
                                         if "val_loss" in r.history else None))
        if models and name in models:
            entry["params"] = int(models[name].count_params())
        payload["models"][name] = entry
    payload.update(extra or {})
    (results_dir() / f"{chapter}.json").write_text(json.dumps(payload, indent=1, default=_jsonable))
    _save_per_image(chapter, {f"{name}|{metric}": values for name, per_image in evaluation.scores.items()
                              for metric, values in per_image.items()}, names=np.array(evaluation.names, dtype=str))
    return payload


PER_IMAGE_DIR = "per_image"  # report/results/per_image/<chapter>.npz, as cifar_study writes them


def _save_per_image(chapter: str, arrays: dict, **extra) -> None:
    """Per-frame (or per-patch) arrays for the findings chapter's intervals (deblurlab.findings)."""
    folder = results_dir() / PER_IMAGE_DIR
    folder.mkdir(exist_ok=True)
    np.savez(folder / f"{chapter}.npz", **{k: np.asarray(v) for k, v in {**arrays, **extra}.items()})


def _jsonable(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return str(value)


# --- the data chapter: patch-SSIM analysis ---------------------------------------------------

@dataclass
class PatchAnalysis:
    data: MotionData
    plan: MotionPlan
    random_ssim: np.ndarray
    kept_ssim: np.ndarray
    fallback_fraction: float
    too_perfect: dict
    frames_used: int
    provenance: dict
    benchmark: dict | None = None


REPORT_TOO_PERFECT = 0.29  # the report's estimate of P(SSIM >= 0.9) for a random REDS patch


def analysis_frames(data: MotionData, limit: int | None, seed: int = 5) -> FrameSet:
    if limit is None or limit >= len(data.train):
        return data.train
    return data.train.subset(np.sort(np.random.default_rng(seed).choice(len(data.train), limit, replace=False)))


def patch_analysis(profile: str | None = None, data_dir=None, data: MotionData | None = None) -> PatchAnalysis:
    """SSIM of random 256x256 patches (the report's size) over the training frames used, the
    probability that a patch is 'too perfect', and one pass of the thresholded sampler."""
    plan = MotionPlan.for_profile(profile)
    data = data or find_motion_data(data_dir, synthetic_kernels=plan.synthetic_kernels)
    frames = analysis_frames(data, plan.analysis_frames)
    size = min(P.PATCH_SIZE, *[min(s) for s in frames.sizes()])
    random_ssim = P.random_patch_ssim(frames, plan.analysis_patches_per_image, size)
    kept = P.sampler_statistics(frames, size, P.PATCHES_PER_IMAGE)
    return PatchAnalysis(data, plan, random_ssim, kept["ssim"], kept["fallback_fraction"],
                         P.too_perfect_probability(random_ssim), len(frames),
                         provenance(data.source, plan.profile))


def save_data_results(chapter: str, analysis: PatchAnalysis, extra: dict | None = None) -> dict:
    data = analysis.data
    payload = {
        "chapter": chapter, "provenance": analysis.provenance, "data": data.source, "data_label": data.label,
        "data_kind": data.kind, "data_is_real": data.is_real, "protocol": data.protocol,
        "n_train_frames": len(data.train), "n_val_frames": len(data.val), "n_test_frames": len(data.test),
        "frames_analysed": analysis.frames_used, "patches_per_frame": analysis.plan.analysis_patches_per_image,
        "patch_size": P.PATCH_SIZE, "threshold": P.SSIM_THRESHOLD, "tries": P.TRIES,
        "too_perfect": analysis.too_perfect, "report_too_perfect": REPORT_TOO_PERFECT,
        "random_ssim": {"mean": float(np.mean(analysis.random_ssim)), "median": float(np.median(analysis.random_ssim)),
                        "min": float(np.min(analysis.random_ssim)), "max": float(np.max(analysis.random_ssim))},
        "kept_ssim_mean": float(np.mean(analysis.kept_ssim)), "fallback_fraction": analysis.fallback_fraction,
        "benchmark": analysis.benchmark,
    }
    payload.update(extra or {})
    (results_dir() / f"{chapter}.json").write_text(json.dumps(payload, indent=1, default=_jsonable))
    # random_patch_ssim yields the frames' patches in frame order, patches_per_frame each
    per_frame = analysis.plan.analysis_patches_per_image
    n = len(analysis.random_ssim)
    frame = np.repeat(np.arange(analysis.frames_used), per_frame) if n == analysis.frames_used * per_frame \
        else np.arange(n)
    _save_per_image(chapter, {"random_ssim": np.asarray(analysis.random_ssim, np.float64), "frame": frame})
    return payload


# --- figures -----------------------------------------------------------------------------------

def detail_box(blurred: np.ndarray, sharp: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the ``size`` window where blur destroyed most (largest
    blurred-vs-sharp error, summed by an integral image)."""
    size = min(size, blurred.shape[0], blurred.shape[1])
    error = np.mean((blurred - sharp) ** 2, axis=-1)
    total = np.pad(error.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = total[size:, size:] - total[:-size, size:] - total[size:, :-size] + total[:-size, :-size]
    top, left = np.unravel_index(np.argmax(sums), sums.shape)
    return int(top), int(left), size, size


def plot_frame_comparison(images: dict[str, np.ndarray], box, title: str | None = None):
    """Top row: each whole image (e.g. blurred / restored / sharp) with the zoom box drawn;
    bottom row: the boxed region enlarged, so fine detail can be compared."""
    from matplotlib.patches import Rectangle

    top, left, h, w = box
    fig, axes = plt.subplots(2, len(images), figsize=(4.2 * len(images), 5.6), squeeze=False,
                             gridspec_kw={"height_ratios": [images[next(iter(images))].shape[0]
                                                            / images[next(iter(images))].shape[1] * 1.6, 1]})
    for col, (name, image) in enumerate(images.items()):
        ax = axes[0, col]
        ax.imshow(np.clip(image, 0, 1))
        ax.add_patch(Rectangle((left, top), w, h, fill=False, edgecolor="yellow", linewidth=1.5))
        ax.set_title(name, fontsize=9)
        zoom = axes[1, col]
        zoom.imshow(np.clip(image[top:top + h, left:left + w], 0, 1), interpolation="nearest")
        for ax_ in (ax, zoom):
            ax_.set_xticks([])
            ax_.set_yticks([])
    axes[1, 0].set_ylabel("zoom", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_patch_examples(frames: FrameSet, n: int = 4, patch_size: int = P.PATCH_SIZE, seed: int = 7):
    """``n`` random (unfiltered) patches, blurred over sharp, each titled with its SSIM."""
    n_frames = min(n, len(frames))
    rng = np.random.default_rng(seed)
    indices = rng.choice(len(frames), n_frames, replace=False)
    seeds = rng.integers(0, 2**31 - 1, size=(n_frames, 2))
    size = min(patch_size, *[min(frames.sizes()[i]) for i in indices])
    ds = P.patch_dataset(frames, indices, seeds, size, 1, threshold=None, with_ssim=True)
    fig, axes = plt.subplots(2, n_frames, figsize=(2.4 * n_frames, 5.0), squeeze=False)
    for col, (blurred, sharp, ssim, _) in enumerate(ds):
        for row, image in enumerate((blurred, sharp)):
            ax = axes[row, col]
            ax.imshow(np.clip(image.numpy(), 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, col].set_title(f"SSIM {float(ssim):.3f}" + (" (too perfect)" if ssim >= P.SSIM_THRESHOLD else ""),
                               fontsize=8)
    axes[0, 0].set_ylabel("blurred", fontsize=9)
    axes[1, 0].set_ylabel("sharp", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ssim_distribution(analysis: PatchAnalysis):
    """Histogram of random-patch SSIM and its gaussian KDE (seaborn), the threshold, and the
    area above it."""
    import seaborn as sns
    from scipy.stats import gaussian_kde

    ssim = analysis.random_ssim
    fig, (ax_hist, ax_kde) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_hist.hist(ssim, bins=30, range=(max(0.0, ssim.min() - 0.02), 1.0), color="tab:blue", edgecolor="white")
    ax_hist.axvline(P.SSIM_THRESHOLD, color="tab:red", ls="--", label=f"threshold {P.SSIM_THRESHOLD}")
    ax_hist.set(xlabel="SSIM (blurred vs sharp patch)", ylabel="patches",
                title=f"Histogram: {len(ssim):,} random {P.PATCH_SIZE}×{P.PATCH_SIZE} patches")
    ax_hist.legend(fontsize=8)
    sns.kdeplot(x=ssim, ax=ax_kde, color="tab:blue", bw_method="scott")
    kde = gaussian_kde(ssim)
    # The estimate integrates the density from the threshold upwards, past 1 where the kernels spill.
    grid = np.linspace(P.SSIM_THRESHOLD, max(1.0, ssim.max()) + 4 * analysis.too_perfect["bandwidth"], 200)
    ax_kde.fill_between(grid, kde(grid), color="tab:red", alpha=0.35,
                        label=f"P(SSIM ≥ {P.SSIM_THRESHOLD}) = {analysis.too_perfect['kde']:.1%} (KDE)")
    ax_kde.axvline(P.SSIM_THRESHOLD, color="tab:red", ls="--")
    ax_kde.set(xlabel="SSIM", ylabel="density", title="Kernel density estimate (scipy, Scott's bandwidth)")
    ax_kde.legend(fontsize=8)
    fig.suptitle(analysis.data.label, fontsize=10)
    fig.tight_layout()
    return fig


def plot_kernels(n: int = 8, seed: int = 0):
    """Synthetic camera-shake kernels (Boracchi & Foi trajectories), brightest = most weight."""
    from .data.motion import random_kernels

    kernels = random_kernels(n, seed)
    fig, axes = plt.subplots(1, n, figsize=(1.3 * n, 1.5))
    for ax, kernel in zip(np.atleast_1d(axes), kernels):
        ax.imshow(kernel, cmap="inferno", interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_training_histories(results: dict[str, TrainResult]):
    from .figures import plot_training_curves

    return plot_training_curves({name: r.history for name, r in results.items()},
                                title="SRNDeblur_reds training (loss = MSE summed over both scales)")
