import sys

sys.path.insert(0, "tools")
from nbbuild import PARAMETERS, build

cells = [
    (
        "md",
        """
# Chapter 1: ResUNet, a U-Net built from residual blocks

The first family of the study is a U-Net [Ronneberger et al. 2015] whose every level holds
residual blocks [He et al. 2015]. The network sees an image blurred by a gaussian of unknown
strength and must return the sharp image. We train two variants, **ResUNet1** (one ResBlock a
level) and **ResUNet3** (three), on CIFAR-10 with progressive blur, and compare them with the
numbers of the original report.

The notebook is narrative only: data handling, models, training and metrics live in the
`deblurlab` package, and every figure and table is written to `figures/` and `report/tables/`
under a stable name, so the report picks them up without edits.
""",
    ),
    ("parameters", PARAMETERS),
    (
        "code",
        """
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from deblurlab.core.tables import to_markdown
from deblurlab.models import build_model
from deblurlab.outputs.figures import plot_restorations, plot_training_curves, save_fig
from deblurlab.studies.cifar import results as cr
from deblurlab.studies.cifar import study as cs

study = cs.prepare_study(profile, data_dir)
print(study.describe())
""",
    ),
    (
        "md",
        """
## Data

`prepare_study` finds CIFAR-10 (a folder given as `data_dir`, `$DEBLURLAB_CIFAR10`, the Keras
cache, the shared subset beside the checkout, a download, or last the embedded sample), splits it
reproducibly into train, validation and held-out test images, and blurs the validation and test
images **once**, with fixed seeds: every model of every chapter is scored on identical inputs.
The training images are blurred afresh each epoch, with a new σ ~ U(0, 3) per image.
""",
    ),
    (
        "md",
        """
## Architecture

Each level of the U-Net applies Conv2D(3×3) → BatchNorm → ReLU. The descending path halves the
resolution with a strided convolution and the ascending path doubles it with a transposed
convolution, so both resamplings are learned rather than fixed (no pooling, no upsampling layer).
A ResBlock is two such convolutions whose output is **concatenated** with the block's input, as
the original report describes, so the channel count grows through a level. The descending features
of each level are concatenated with the upsampled ascending input. A 1×1 convolution with a sigmoid
maps the last features back to RGB in [0, 1].

The parameter counts are deterministic, so nbval checks this cell's output.
""",
    ),
    (
        "code",
        """
# NBVAL_CHECK_OUTPUT
for name in ["resunet1", "resunet3"]:
    print(f"{name}: {build_model(name).count_params():,} parameters")
""",
    ),
    (
        "md",
        """
## Training

Adam with its default settings minimises the MSE between restored and sharp images. Early
stopping watches the validation loss with a patience of 7 epochs and the best weights are kept.
A checkpoint is written after every epoch: if the kernel dies, running the notebook again resumes
at the next epoch, and a finished run is simply loaded. The profile sets the epoch budget.
""",
    ),
    (
        "code",
        """
models, results = {}, {}
for name in ["resunet1", "resunet3"]:
    models[name], results[name] = cs.train_model(study, name)
""",
    ),
    (
        "code",
        """
fig = plot_training_curves(
    {name: r.history for name, r in results.items()}, title="ResUNet training"
)
save_fig("resunet_training_curves", fig)
plt.show()
""",
    ),
    (
        "md",
        """
The left panel shows the training and validation MSE per epoch (log scale), the right one the PSNR.
Validation images are blurred once, so their curve is smoother than the training curve, whose
blur changes every epoch.

## Results on the held-out test set

The table puts our scores beside the original report's. The first row is the blurred input
itself, the baseline every model must beat. Read the footnote: it says which data and profile
produced the numbers. The report trained on all of CIFAR-10 on a GPU; the default profile trains
for a few minutes on a CPU, so lower numbers are expected there.
""",
    ),
    (
        "code",
        """
scores = cs.evaluate(study, models)
table = cr.results_table(study, scores, results, models, name="resunet")
display(Markdown(to_markdown(table)))
""",
    ),
    (
        "md",
        """
Mean PSNR over images is pulled up by the weakly blurred ones: with the kernel cut at ±3σ, a σ
below 1/3 leaves the image unchanged, and such an input scores the capped PSNR, which no network
reproduces exactly. MSE and SSIM are the fairer judges of *improvement*, so the next cell states
the margin over the blurred input in each.
""",
    ),
    (
        "code",
        """
gains = cr.gains_over_input(scores)
display(Markdown(to_markdown(gains)))
""",
    ),
    (
        "md",
        """
## Restored test images

Strongly blurred test images (σ ≥ 1.5), each shown blurred, restored and sharp. Compare the edges
and small details: the deeper ResUNet3 should recover more of them when the blur is heavy.
""",
    ),
    (
        "code",
        """
picks = cs.hardest_examples(study, n=6)
restored = cs.restorations(study, models, picks)
for name in models:
    fig = plot_restorations(study.test_blurred[picks], {name: restored[name]},
                            study.splits.test[picks], study.test_sigmas[picks],
                            title=f"{name} on held-out test images")
    save_fig(f"{name}_samples", fig)
    plt.show()
""",
    ),
    (
        "code",
        """
payload = cr.save_results("resunet", study, scores, results, models)
print("saved results for", ", ".join(payload["models"]))
""",
    ),
]
build("/work/main/notebooks/01_resunet.ipynb", cells)
