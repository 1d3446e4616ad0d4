"""The motion-blur chapter (SRNDeblur_reds on REDS / GoPro / synthetic camera shake): the study's
data, training and evaluation; its tables and results JSON are ``deblurlab.studies.motion.results``.

    study = prepare_study(profile)                # data found, split, fixed validation patches
    model, result = train_model(study, MODEL)     # patches, resumable training, best weights
    evaluation = evaluate(study, {MODEL: model})  # whole test frames, padded and cropped back

The same calls, with the same signatures, as ``cifar_study``. The data are whatever
``deblurlab.data.sources.find_motion_data`` finds (every REDS and GoPro folder beside the checkout,
combined, or synthetic camera shake on skimage photographs), and every table, figure and JSON
result names them; each source's test frames are scored as a group of their own. Inference is
``deblurlab.training.inference``, chapter 07's analysis
``deblurlab.studies.motion.patch_analysis``, the figures ``deblurlab.studies.motion.figures``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import keras
import numpy as np

from ...core import metrics as M
from ...core.results import BLURRED_INPUT, REFERENCE_SUFFIX, Evaluation
from ...data import patches as P
from ...data.frames import FrameSet, MotionData
from ...data.sources import find_motion_data
from ...models import build_model
from ...runtime import compute
from ...runtime.provenance import provenance
from ...training.checkpoints import resumed_setup
from ...training.inference import centre_crop, deblur_frame, downscale, full_resolution_model
from ...training.profiles import MOTION_FINAL_LR, MOTION_RECIPE, MOTION_RECIPES, MotionPlan
from ...training.train import TrainResult, local_copy, run_directory, set_seeds, train

MODEL = "srndeblur_reds"
DECAY_SUFFIX = " + lr decay"
VAL_SEED = 11
TEST_PICK_SEED = 12


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
    # Each test group's frames, as positions in ``test_indices`` (so in an evaluation's order).
    test_groups: dict[str, np.ndarray] = field(default_factory=dict)

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


def pick_grouped_test_frames(
    data: MotionData, n: int | None, seed: int = TEST_PICK_SEED
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Up to ``n`` frames of every test group (``pick_test_frames`` within each): the frame
    indices, and each group's positions among them."""
    indices, groups = [], {}
    for name, members in data.groups().items():
        members = np.asarray(members, np.int64)
        chosen = members[pick_test_frames(members, n, seed)]
        groups[name] = np.arange(len(indices), len(indices) + len(chosen))
        indices += chosen.tolist()
    return np.asarray(indices, np.int64), groups


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
    test_indices, groups = pick_grouped_test_frames(data, plan.n_eval)
    return MotionStudy(plan, data, val, test_indices, provenance(data.source, plan.profile), groups)


# --- training ----------------------------------------------------------------------------------


def label(model_name: str, lr_decay: bool = False, recipe: str = MOTION_RECIPE) -> str:
    """The table label of ``model_name``, marked when trained with another recipe than the
    chapter's own or with a decaying learning rate."""
    other = "" if recipe == MOTION_RECIPE else f", {recipe} recipe"
    return model_name + other + (DECAY_SUFFIX if lr_decay else "")


def run_name(
    study: MotionStudy,
    model_name: str = MODEL,
    *,
    lr_decay: bool = False,
    recipe: str = MOTION_RECIPE,
    extra: str = "",
) -> str:
    """The training run's folder name under runs/ (``extra``, e.g. ``"-e35"``, marks a run whose
    length differs from the profile's)."""
    suffix = ("-lrdecay" if lr_decay else "") + ("" if recipe == "report" else f"-{recipe}")
    return f"motion-{study.data.kind}-{model_name}{suffix}{extra}-{study.profile}"


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
    names of ``models/srndeblur.py`` change. A model built as the identity already (it says so
    with ``model.identity_at_init``: NAFNet) is returned as it is.
    """
    if getattr(model, "identity_at_init", False):
        return model

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
    recipe: str = MOTION_RECIPE,
    seed: int = 0,
    init: str = "identity",
    epochs: int | None = None,
    callbacks: list | None = None,
    continue_from=None,
    run_extra: str = "",
) -> tuple[keras.Model, TrainResult]:
    """Train on patches of the training frames (or resume, or load a finished run).

    ``init="identity"`` starts the network as the identity (``identity_init``); ``"default"``
    keeps Keras's initialisation, as the original report did. ``epochs`` overrides the
    profile's epoch limit (a cosine schedule then spans the new length: give such a run its own
    ``run_extra``, see ``run_name``); ``callbacks`` are added to training's own. Returns (model,
    result).
    """
    plan = study.plan
    config = plan.train_config(model_name, seed=seed, recipe=recipe)
    if epochs is not None:  # still a fixed number of epochs: no early stopping
        config.epochs, config.patience = epochs, max(config.patience, epochs)
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
            augment=MOTION_RECIPES[recipe]["augment"],
        )

    callbacks = list(callbacks or [])
    if lr_decay:
        if config.lr_schedule != "constant":
            raise ValueError(f"lr_decay=True needs a constant-rate recipe, not {recipe!r}")
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                exponential_decay(config.learning_rate, MOTION_FINAL_LR, config.epochs)
            )
        )
    name = run_name(
        study,
        model_name if init == "identity" else model_name + "-defaultinit",
        lr_decay=lr_decay,
        recipe=recipe,
        extra=run_extra,
    )
    setup = resumed_setup(  # a resumed or continued run keeps its precision
        compute.current(model_name), run_directory(name), continuing=continue_from
    )
    with setup.scope():  # precision and, on several GPUs or workers, the distribution
        set_seeds(seed)
        model = build_model(model_name, input_shape=(plan.patch_size, plan.patch_size, 3))
        if init == "identity":
            identity_init(model)
        result = train(
            model,
            make_stream,
            study.val,
            name,
            config,
            callbacks=callbacks,
            setup=setup,
            continue_from=continue_from,
        )
    shape = (plan.patch_size, plan.patch_size, 3)
    model = local_copy(model, lambda: build_model(model_name, input_shape=shape), setup)
    print(f"{label(model_name, lr_decay, recipe)} ({setup.describe()}): {result.summary()}")
    return model, result


def reference_models(model_names) -> dict[str, keras.Model]:
    """The shipped reference runs (``zoo/<name>.weights.h5``, ``python -m deblurlab.reference``)
    among ``model_names``, each labelled ``<name> (reference run)``; none when none is shipped."""
    from ...training import zoo

    shipped = zoo.available()
    return {name + REFERENCE_SUFFIX: zoo.load(name) for name in model_names if name in shipped}


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
    frames larger than it in tiles. Returns an ``Evaluation`` with the frames' names and sizes,
    every model's seconds a frame (``call_seconds``: padding, network and crop, as a user pays)
    and the hardest frame (largest blurred-input MSE) kept whole for figures."""
    nets = {
        name: full_resolution_model(model, _model_name(model)) for name, model in models.items()
    }
    per = {name: {"mse": [], "psnr": [], "ssim": []} for name in [BLURRED_INPUT, *nets]}
    names, hardest, hardest_name, worst = [], {}, "", -1.0
    seconds, calls, sizes = 0.0, {name: [] for name in nets}, []
    for k, index in enumerate(study.test_indices):
        blurred, sharp = study.data.test.load(index)
        crop = study.plan.eval_crop
        blurred, sharp = centre_crop(blurred, crop), centre_crop(sharp, crop)
        outputs = {BLURRED_INPUT: blurred}
        sizes.append(tuple(int(s) for s in blurred.shape[:2]))
        for name, net in nets.items():
            start = time.perf_counter()
            outputs[name] = deblur_frame(net, blurred, tile=tile)
            calls[name].append(time.perf_counter() - start)
            seconds += calls[name][-1]
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
    return Evaluation(scores, names, hardest, hardest_name, seconds / n_runs, calls, sizes)


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
    from ...models import list_models

    return set(list_models())
