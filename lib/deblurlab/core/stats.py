"""How sure is a number? Bootstrap confidence intervals over test images, and verdicts from them.

    low, high = mean_ci(scores["resunet3"]["mse"])  # 95% CI of a mean over images
    d = paired_difference(scores["resunet3"]["mse"], scores["resunet1"]["mse"])  # mean, low, high
    psnr_of_mean_mse(scores["resunet3"]["mse"])  # a PSNR no identical image inflates
    verdict(d["low"], d["high"], expected_sign=-1)  # "reproduced" | "contradicted" | "inconclusive"

Every interval is ``scipy.stats.bootstrap``'s bias-corrected and accelerated (BCa) interval, from
``N_RESAMPLES`` resamples drawn with a fixed seed, so the same scores give the same interval. Two
models scored on the same images are compared by a *paired* bootstrap: each resample draws the
same images for both (``paired=True``), so the image-to-image spread that both share cancels.

PSNR: the study's tables keep the stated convention (the mean of per-image PSNR, an identical pair
counted as 100 dB). About 11% of the test images have sigma < 1/3, which the blur leaves untouched,
and each of them adds 100 dB to the blurred input's mean; no network's output is ever exactly
identical, so the blurred input's mean PSNR beats every network's. Two PSNRs are comparable across
methods: the PSNR of the mean MSE, 10 log10(1 / mean MSE), and the mean PSNR over the images the
blur changed (``changed_images``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .metrics import DATA_RANGE, PSNR_CAP_DB

LEVEL = 0.95
N_RESAMPLES = 2000
SEED = 0
VERDICTS = ("reproduced", "contradicted", "inconclusive")
# Largest (resamples x images) block one vectorised call of the statistic holds (float64: 40 MB).
_BLOCK = 5_000_000

METHOD = (
    f"Intervals: {LEVEL:.0%} bias-corrected and accelerated (BCa) bootstrap over the test images "
    f"(scipy.stats.bootstrap, {N_RESAMPLES:,} resamples, seed {SEED}); a difference between two "
    "models scored on the same images is a paired bootstrap (each resample draws the same images "
    "for both). PSNR of the mean MSE = 10 log10(1 / mean MSE): unlike the mean of per-image PSNR, "
    f"it is not inflated by images the blur left unchanged (each counted as {PSNR_CAP_DB:g} dB)."
)
VERDICT_RULE = (
    "A claim is reproduced when the interval of the difference lies wholly on the claimed side of "
    "zero, contradicted when wholly on the other side, inconclusive when it contains zero or when "
    "our data are not the original's."
)


def _as_1d(values, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite entries")
    return array


def _bootstrap(
    samples: tuple[np.ndarray, ...],
    statistic,
    paired: bool,
    level: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """(low, high) of scipy's BCa interval of ``statistic(*samples, axis=-1)``.

    Fewer than two observations: (nan, nan). Every resample equal (e.g. constant data): the
    statistic itself at both ends. Where BCa is undefined (its jackknife degenerates), the
    percentile interval is used instead."""
    from scipy.stats import bootstrap

    n = len(samples[0])
    if n < 2:
        return math.nan, math.nan
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*[s[None] for s in samples], axis=-1)[0])
        return value, value
    batch = max(1, min(n_resamples, _BLOCK // n))
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DegenerateDataWarning, then the fallback decides
            result = bootstrap(
                samples,
                statistic,
                n_resamples=n_resamples,
                confidence_level=level,
                method=method,
                paired=paired,
                vectorized=True,
                batch=batch,
                rng=np.random.default_rng(seed),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if np.isfinite(low) and np.isfinite(high):
            return low, high
    return math.nan, math.nan


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_ci(
    values, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Confidence interval of the mean of ``values`` (one number per test image).

    Args:
        values: per-image scores (any shape; flattened).
        level: confidence level, 0.95 for a 95% interval.
        n_resamples: bootstrap resamples (at least 1,000 for a 95% interval).
        seed: seed of the resampling, so the same values always give the same interval.

    Returns:
        (low, high); (nan, nan) for fewer than two values, (v, v) when all values equal v.
    """
    return _bootstrap((_as_1d(values),), _mean, False, level, n_resamples, seed)


def paired_difference(
    a, b, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> dict:
    """Mean of the per-image difference ``a - b`` and its paired bootstrap interval.

    Args:
        a, b: the same metric of two methods on the same images, in the same order.
        level, n_resamples, seed: as for ``mean_ci``.

    Returns:
        ``dict(mean=, low=, high=, n=)``: mean(a - b), the interval's ends, the number of images.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length (they are not scores of the same images).
    """
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired_difference: {len(a)} and {len(b)} values; a paired comparison needs "
            "both methods scored on the same images"
        )
    low, high = _bootstrap(
        (a, b), lambda x, y, axis=-1: np.mean(x - y, axis=axis), True, level, n_resamples, seed
    )
    return {
        "mean": float(np.mean(a - b)) if len(a) else math.nan,
        "low": low,
        "high": high,
        "n": int(len(a)),
    }


def _psnr_of(mean_mse):
    mean_mse = np.asarray(mean_mse, dtype=np.float64)
    with np.errstate(divide="ignore"):
        psnr = 10.0 * np.log10(DATA_RANGE**2 / mean_mse)
    return np.where(mean_mse <= 0, PSNR_CAP_DB, np.minimum(psnr, PSNR_CAP_DB))


def psnr_of_mean_mse(mse_values) -> float:
    """10 log10(1 / mean MSE) in dB: the PSNR of the test set taken as one image.

    Args:
        mse_values: per-image MSE of images in [0, 1].

    Returns:
        The PSNR in dB (``PSNR_CAP_DB`` if every image is identical to its target).
    """
    return float(_psnr_of(np.mean(_as_1d(mse_values, "mse_values"))))


def psnr_of_mean_mse_ci(
    mse_values, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """Interval of ``psnr_of_mean_mse``: the bootstrap interval of the mean MSE, mapped through
    10 log10(1 / x) (BCa intervals follow a monotone transformation), low PSNR first.

    Args and seeds as for ``mean_ci``. Returns (low, high) in dB."""
    low, high = mean_ci(mse_values, level, n_resamples, seed)
    if not (np.isfinite(low) and np.isfinite(high)):
        return math.nan, math.nan
    return float(_psnr_of(high)), float(_psnr_of(low))


def paired_psnr_difference(
    mse_a, mse_b, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> dict:
    """PSNR of the mean MSE of ``a`` minus that of ``b`` (dB), with its paired bootstrap interval:
    each resample draws the same images for both methods and recomputes both PSNRs.

    Args:
        mse_a, mse_b: per-image MSE of two methods on the same images, in the same order.
        level, n_resamples, seed: as for ``mean_ci``.

    Returns:
        ``dict(mean=, low=, high=, n=)`` with ``mean`` = psnr_of_mean_mse(a) - psnr_of_mean_mse(b).
    """
    a, b = _as_1d(mse_a, "mse_a"), _as_1d(mse_b, "mse_b")
    if a.shape != b.shape:
        raise ValueError(
            f"paired_psnr_difference: {len(a)} and {len(b)} values; a paired comparison "
            "needs both methods scored on the same images"
        )

    def statistic(x, y, axis=-1):
        return _psnr_of(np.mean(x, axis=axis)) - _psnr_of(np.mean(y, axis=axis))

    low, high = _bootstrap((a, b), statistic, True, level, n_resamples, seed)
    return {
        "mean": psnr_of_mean_mse(a) - psnr_of_mean_mse(b),
        "low": low,
        "high": high,
        "n": int(len(a)),
    }


def changed_images(input_mse) -> np.ndarray:
    """Mask of the images the blur changed: blurred-input MSE above zero (sigma < 1/3 leaves an
    image untouched, and its blurred input then scores the 100 dB cap)."""
    return _as_1d(input_mse, "input_mse") > 0


def mean_over_changed(values, input_mse) -> float:
    """Mean of per-image ``values`` (e.g. PSNR) over the images the blur changed; nan if none."""
    values, mask = _as_1d(values), changed_images(input_mse)
    if values.shape != mask.shape:
        raise ValueError(f"{len(values)} values for {len(mask)} images")
    return float(np.mean(values[mask])) if mask.any() else math.nan


def proportion_ci(
    flags, groups=None, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = SEED
) -> dict:
    """A proportion (mean of 0/1 ``flags``) and its bootstrap interval.

    Args:
        flags: one boolean per observation (e.g. a patch's SSIM >= 0.9).
        groups: optional cluster label per observation (e.g. the frame a patch came from). With it
            the bootstrap resamples whole clusters (a paired bootstrap of each cluster's count and
            size, statistic sum(count) / sum(size)), since patches of one frame are not independent.
        level, n_resamples, seed: as for ``mean_ci``.

    Returns:
        ``dict(mean=, low=, high=, n=, clusters=)``.
    """
    flags = _as_1d(flags, "flags")
    if groups is None:
        low, high = mean_ci(flags, level, n_resamples, seed)
        return {
            "mean": float(np.mean(flags)) if len(flags) else math.nan,
            "low": low,
            "high": high,
            "n": int(len(flags)),
            "clusters": int(len(flags)),
        }
    groups = np.asarray(groups).ravel()
    if groups.shape != flags.shape:
        raise ValueError(f"{len(groups)} group labels for {len(flags)} flags")
    _, inverse = np.unique(groups, return_inverse=True)
    counts = np.bincount(inverse, weights=flags).astype(np.float64)
    sizes = np.bincount(inverse).astype(np.float64)
    low, high = _bootstrap(
        (counts, sizes),
        lambda k, m, axis=-1: np.sum(k, axis=axis) / np.sum(m, axis=axis),
        True,
        level,
        n_resamples,
        seed,
    )
    return {
        "mean": float(counts.sum() / sizes.sum()) if sizes.sum() else math.nan,
        "low": low,
        "high": high,
        "n": int(len(flags)),
        "clusters": int(len(counts)),
    }


def verdict(low: float, high: float, expected_sign: int, data_match: bool = True) -> str:
    """Does an interval of a difference support a claimed direction?

    Args:
        low, high: the interval of the difference (e.g. from ``paired_difference``).
        expected_sign: +1 if the claim says the difference is positive, -1 if negative.
        data_match: False when our data are not the original's: the claim cannot be tested.

    Returns:
        "reproduced" if the whole interval lies on the claimed side of zero, "contradicted" if it
        lies wholly on the other side, "inconclusive" if it contains zero (or touches it), if it is
        undefined (nan), or if the data differ.
    """
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, not {expected_sign!r}")
    if not data_match or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    if low > high:
        raise ValueError(f"interval ends in the wrong order: low {low} > high {high}")
    if expected_sign * low > 0 and expected_sign * high > 0:
        return "reproduced"
    if expected_sign * low < 0 and expected_sign * high < 0:
        return "contradicted"
    return "inconclusive"


def estimate_verdict(
    low: float, high: float, claimed: float, tolerance: float, data_match: bool = True
) -> str:
    """Does an interval of an estimate support a claimed value "about ``claimed``"?

    "reproduced" if the whole interval lies within ``claimed`` +/- ``tolerance`` (our estimate is
    precise enough to agree), "contradicted" if it lies wholly outside that band, "inconclusive"
    otherwise, when the interval is undefined, or when the data differ (``data_match=False``)."""
    if not data_match or not (np.isfinite(low) and np.isfinite(high)):
        return "inconclusive"
    lo_band, hi_band = claimed - tolerance, claimed + tolerance
    if lo_band <= low and high <= hi_band:
        return "reproduced"
    if high < lo_band or low > hi_band:
        return "contradicted"
    return "inconclusive"


def combine_verdicts(verdicts) -> str:
    """One verdict for a claim made of several tests (e.g. "both ResUNets beat EDDenseNet"):
    contradicted if any test is, reproduced if every test is, else inconclusive."""
    verdicts = list(verdicts)
    unknown = set(verdicts) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdict(s): {', '.join(sorted(unknown))}")
    if not verdicts:
        return "inconclusive"
    if "contradicted" in verdicts:
        return "contradicted"
    return "reproduced" if all(v == "reproduced" for v in verdicts) else "inconclusive"


def format_ci(low: float, high: float, digits: int = 4, signed: bool = False) -> str:
    """``"[low, high]"`` with ``digits`` decimals (``signed``: always a sign); "–" if undefined."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "–"
    spec = f"{'+' if signed else ''}.{digits}f"
    return f"[{low:{spec}}, {high:{spec}}]"


def summarize_ci(per_image: dict[str, np.ndarray]) -> dict:
    """Each metric's mean over images with its interval (``<metric>_ci``), plus the PSNR of the mean
    MSE (``psnr_mean_mse``) and its interval, from per-image scores
    ``{"mse": ..., "psnr": ..., ...}``."""
    out = {}
    for metric, values in per_image.items():
        out[metric] = float(np.mean(values))
        out[f"{metric}_ci"] = list(mean_ci(values))
    if "mse" in per_image:
        out["psnr_mean_mse"] = psnr_of_mean_mse(per_image["mse"])
        out["psnr_mean_mse_ci"] = list(psnr_of_mean_mse_ci(per_image["mse"]))
    return out
