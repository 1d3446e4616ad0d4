"""The claims of the original report that the findings chapter tests, as data, and the names
shared by the findings modules."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.results import BLURRED_INPUT

REFERENCE = "reference:"  # per-image keys of the shipped reference runs: "reference:<model>"
GPU_REFERENCE = "gpu-reference:"  # those of the GPU reference runs (zoo/gpu/)
RUN_PREFIXES = (REFERENCE, GPU_REFERENCE)
CIFAR_CHAPTERS = {
    "resunet": ("resunet1", "resunet3"),
    "eddensenet": ("eddensenet",),
    "caessc": ("caessc_d30_f64", "caessc_d22_f128_half", "caessc_d22_f128_half_no_sigmoid"),
    "srndeblur_cifar": ("srndeblur_cifar", "srndeblur_cifar_lstm"),
}
NOTEBOOKS = {
    "resunet": "01_resunet",
    "eddensenet": "02_eddensenet",
    "caessc": "03_caessc",
    "srndeblur_cifar": "04_srndeblur_cifar",
    "srndeblur_reds": "05_srndeblur_reds",
    "motion_data": "07_motion_datasets",
}
MODEL_CHAPTER = {m: c for c, models in CIFAR_CHAPTERS.items() for m in models}
MOTION_CHAPTER, PATCH_CHAPTER = "srndeblur_reds", "motion_data"
DARK_FRACTION = 0.25  # claim 4's "dark areas": the darkest quarter of the sharp test images
METRIC_NAMES = {"mse": "MSE", "ssim": "SSIM", "psnr": "PSNR of the mean MSE"}
DIGITS = {"mse": 5, "ssim": 4, "psnr": 2}
UNITS = {"mse": "", "ssim": "", "psnr": " dB"}
PRETTY = {
    "resunet1": "ResUNet1",
    "resunet3": "ResUNet3",
    "eddensenet": "EDDenseNet",
    "caessc_d30_f64": "CAESSC_d30_f64",
    "caessc_d22_f128_half": "CAESSC_d22_f128_half",
    "caessc_d22_f128_half_no_sigmoid": "CAESSC_d22_f128_half_no_sigmoid",
    "srndeblur_cifar": "SRNDeblur",
    "srndeblur_cifar_lstm": "SRNDeblur with LSTM",
    "srndeblur_reds": "SRNDeblur_reds",
    BLURRED_INPUT: "the blurred input",
}


def pretty(name: str) -> str:
    """A model's name as the text writes it."""
    return PRETTY.get(name, name)


# --- the claims ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    """The claim that ``metric`` of method ``a`` minus that of ``b`` has sign ``expected_sign``
    (``metric`` "psnr" is the PSNR of the mean MSE); ``subset`` "dark" keeps the darkest images."""

    a: str
    b: str
    metric: str
    expected_sign: int
    subset: str | None = None

    def label(self) -> str:
        """The test in words: the two methods compared, the metric and the subset."""
        where = " (darkest quarter)" if self.subset == "dark" else ""
        return f"{self.a} − {self.b}: {METRIC_NAMES[self.metric]}{where}"


@dataclass(frozen=True)
class Claim:
    """One claim of the original report: its text, how it is tested (``tests``) and the
    original numbers."""

    number: int
    text: str
    metric: str  # how the claim is tested, in words
    original: str  # the original report's numbers
    kind: str = "cifar"  # "cifar", "patches" (claim 7) or "motion" (claim 8)
    tests: tuple = ()
    claimed: float | None = None  # "patches": the claimed proportion
    tolerance: float | None = None  # "patches": how close counts as "about"


OTHER_NETWORKS = (
    "resunet1",
    "resunet3",
    "eddensenet",
    "caessc_d30_f64",
    "caessc_d22_f128_half",
    "caessc_d22_f128_half_no_sigmoid",
)
CLAIMS = (
    Claim(
        1,
        "ResUNet3 beats ResUNet1",
        "MSE difference",
        "MSE 0.0016 vs 0.0018",
        tests=(Test("resunet3", "resunet1", "mse", -1),),
    ),
    Claim(
        2,
        "Both ResUNets beat EDDenseNet",
        "MSE difference, each ResUNet against EDDenseNet",
        "MSE 0.0018 and 0.0016 vs 0.0021",
        tests=(
            Test("resunet1", "eddensenet", "mse", -1),
            Test("resunet3", "eddensenet", "mse", -1),
        ),
    ),
    Claim(
        3,
        "CAESSC_d30_f64 (no downsampling) beats CAESSC_d22_f128_half",
        "MSE difference",
        "MSE 0.0018 vs 0.0020",
        tests=(Test("caessc_d30_f64", "caessc_d22_f128_half", "mse", -1),),
    ),
    Claim(
        4,
        "A ReLU output is clearly worse than a sigmoid output and fails on dark areas",
        "MSE difference, on all test images and on the darkest quarter",
        "MSE 0.00389 vs 0.0020",
        tests=(
            Test("caessc_d22_f128_half_no_sigmoid", "caessc_d22_f128_half", "mse", +1),
            Test("caessc_d22_f128_half_no_sigmoid", "caessc_d22_f128_half", "mse", +1, "dark"),
        ),
    ),
    Claim(
        5,
        "The LSTM bottleneck raises SRNDeblur's PSNR but lowers its SSIM",
        "differences of the PSNR of the mean MSE and of SSIM",
        "PSNR 29.38 vs 29.23; SSIM 0.9188 vs 0.9225",
        tests=(
            Test("srndeblur_cifar_lstm", "srndeblur_cifar", "psnr", +1),
            Test("srndeblur_cifar_lstm", "srndeblur_cifar", "ssim", -1),
        ),
    ),
    Claim(
        6,
        "SRNDeblur is the best CIFAR-10 network by PSNR",
        "PSNR of the mean MSE of SRNDeblur with LSTM minus each other family's network",
        "29.38 dB, next best 29.03 (ResUNet3)",
        tests=tuple(Test("srndeblur_cifar_lstm", other, "psnr", +1) for other in OTHER_NETWORKS),
    ),
    Claim(
        7,
        "About 29% of training patches are 'too perfect' (blur-vs-sharp SSIM ≥ 0.9)",
        "share of random patches with SSIM ≥ 0.9 (frames resampled); 'about': within ±5 points",
        "29% (kernel density estimate, REDS)",
        kind="patches",
        claimed=0.29,
        tolerance=0.05,
    ),
    Claim(
        8,
        "SRNDeblur_reds restores real motion blur",
        "PSNR of the mean MSE and SSIM, restored minus blurred frames",
        "27.23 dB, SSIM 0.8105 on 500 REDS frames",
        kind="motion",
        tests=(
            Test("srndeblur_reds", BLURRED_INPUT, "psnr", +1),
            Test("srndeblur_reds", BLURRED_INPUT, "ssim", +1),
        ),
    ),
)
