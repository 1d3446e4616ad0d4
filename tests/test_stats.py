"""Bootstrap intervals, paired differences, the comparable PSNRs and the verdict rule."""

import math

import numpy as np
import pytest

from deblurlab.core import stats as S


def test_mean_ci_matches_the_normal_theory_interval_of_a_known_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, 2000)
    low, high = S.mean_ci(x)
    half = 1.96 * x.std(ddof=1) / math.sqrt(len(x))  # the textbook 95% interval, exact for large n
    assert low < 5.0 < high
    assert low == pytest.approx(x.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.1 * half)


def test_mean_ci_of_a_proportion_matches_the_binomial_interval():
    x = np.r_[np.ones(300), np.zeros(700)]  # p = 0.3, n = 1000
    low, high = S.mean_ci(x)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 1000)
    assert (low, high) == pytest.approx((0.3 - half, 0.3 + half), abs=0.006)


def test_intervals_are_seeded_and_the_level_widens_them():
    x = np.random.default_rng(2).exponential(size=200)
    assert S.mean_ci(x) == S.mean_ci(x)
    assert S.mean_ci(x, seed=1) != S.mean_ci(x, seed=2)
    l95, h95 = S.mean_ci(x)
    l99, h99 = S.mean_ci(x, level=0.99)
    assert l99 < l95 < h95 < h99


def test_degenerate_samples():
    assert S.mean_ci(np.full(10, 0.25)) == (0.25, 0.25)
    assert all(math.isnan(v) for v in S.mean_ci([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        S.mean_ci([1.0, np.nan])


def test_paired_difference_of_a_constant_shift_is_exact():
    a = np.random.default_rng(3).uniform(0.001, 0.01, 100)
    d = S.paired_difference(a + 0.002, a)
    assert d["mean"] == pytest.approx(0.002)
    assert (d["low"], d["high"]) == pytest.approx((0.002, 0.002))
    assert d["n"] == 100


def test_pairing_removes_the_spread_both_methods_share():
    rng = np.random.default_rng(4)
    difficulty = rng.lognormal(-6, 1, 400)  # per-image difficulty, common to both methods
    a = difficulty * 0.95 + rng.normal(0, 1e-5, 400)
    b = difficulty
    d = S.paired_difference(a, b)
    (la, ha), (lb, hb) = S.mean_ci(a), S.mean_ci(b)
    assert d["high"] < 0  # a is better on every image: the paired interval sees it
    assert la < hb and lb < ha  # the unpaired intervals overlap: they would not
    assert d["high"] - d["low"] < 0.2 * (ha - la)
    assert d["low"] <= d["mean"] <= d["high"]


def test_paired_difference_needs_the_same_images():
    with pytest.raises(ValueError, match="same images"):
        S.paired_difference(np.ones(3), np.ones(4))


def test_psnr_of_mean_mse_and_its_interval():
    assert S.psnr_of_mean_mse(np.full(5, 1e-3)) == pytest.approx(30.0)
    assert S.psnr_of_mean_mse([0.0, 0.0]) == 100.0
    mse = np.random.default_rng(5).uniform(0.0005, 0.004, 300)
    low, high = S.psnr_of_mean_mse_ci(mse)
    m_low, m_high = S.mean_ci(mse)
    assert low < S.psnr_of_mean_mse(mse) < high
    assert low == pytest.approx(10 * np.log10(1 / m_high)) and high == pytest.approx(
        10 * np.log10(1 / m_low)
    )


def test_identical_images_do_not_inflate_the_psnr_of_the_mean_mse():
    # 11 of 100 images unchanged: the mean per-image PSNR jumps, the PSNR of the mean MSE barely
    # moves
    psnr_changed = np.full(89, 28.0)
    mean_psnr = np.r_[psnr_changed, np.full(11, 100.0)].mean()
    mse = np.r_[np.full(89, 10**-2.8), np.zeros(11)]
    assert mean_psnr > 35
    assert S.psnr_of_mean_mse(mse) == pytest.approx(28.0 + 10 * np.log10(100 / 89))
    assert S.mean_over_changed(np.r_[psnr_changed, np.full(11, 100.0)], mse) == pytest.approx(28.0)
    assert S.changed_images(mse).sum() == 89


def test_paired_psnr_difference():
    a = np.random.default_rng(6).uniform(0.001, 0.003, 200)
    d = S.paired_psnr_difference(a, a * 10)  # ten times less error: exactly +10 dB
    assert d["mean"] == pytest.approx(10.0)
    assert (d["low"], d["high"]) == pytest.approx((10.0, 10.0))
    noisy = S.paired_psnr_difference(a, a * np.random.default_rng(7).uniform(0.9, 1.3, 200))
    assert noisy["low"] < noisy["mean"] < noisy["high"]


def test_proportion_ci_resamples_clusters():
    rng = np.random.default_rng(8)
    frame_flag = rng.random(50) < 0.3
    flags = np.repeat(frame_flag, 8)  # the 8 patches of a frame agree: really only 50 observations
    frames = np.repeat(np.arange(50), 8)
    clustered, naive = S.proportion_ci(flags, frames), S.proportion_ci(flags)
    assert clustered["mean"] == naive["mean"] == pytest.approx(frame_flag.mean())
    assert clustered["clusters"] == 50 and naive["clusters"] == 400
    assert clustered["high"] - clustered["low"] > 2 * (naive["high"] - naive["low"])


@pytest.mark.parametrize(
    "low, high, sign, match, expected",
    [
        (0.1, 0.3, +1, True, "reproduced"),
        (-0.3, -0.1, -1, True, "reproduced"),
        (-0.3, -0.1, +1, True, "contradicted"),
        (0.1, 0.3, -1, True, "contradicted"),
        (-0.1, 0.3, +1, True, "inconclusive"),  # crosses zero
        (0.0, 0.3, +1, True, "inconclusive"),  # touches zero
        (0.1, 0.3, +1, False, "inconclusive"),  # the data differ
        (-0.3, -0.1, +1, False, "inconclusive"),
        (math.nan, math.nan, +1, True, "inconclusive"),
    ],
)
def test_verdict(low, high, sign, match, expected):
    assert S.verdict(low, high, sign, data_match=match) == expected


def test_verdict_checks_its_arguments():
    with pytest.raises(ValueError):
        S.verdict(0.1, 0.2, 0)
    with pytest.raises(ValueError):
        S.verdict(0.3, 0.2, 1)


@pytest.mark.parametrize(
    "low, high, match, expected",
    [
        (0.26, 0.32, True, "reproduced"),
        (0.05, 0.15, True, "contradicted"),
        (0.20, 0.30, True, "inconclusive"),
        (0.26, 0.32, False, "inconclusive"),
    ],
)
def test_estimate_verdict(low, high, match, expected):
    assert S.estimate_verdict(low, high, 0.29, 0.05, data_match=match) == expected


def test_combine_verdicts():
    assert S.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert S.combine_verdicts(["reproduced", "inconclusive"]) == "inconclusive"
    assert S.combine_verdicts(["inconclusive", "contradicted", "reproduced"]) == "contradicted"
    assert S.combine_verdicts([]) == "inconclusive"
    with pytest.raises(ValueError):
        S.combine_verdicts(["maybe"])


def test_method_and_format():
    assert "paired" in S.METHOD and "scipy.stats.bootstrap" in S.METHOD and "2,000" in S.METHOD
    assert S.format_ci(-0.001, 0.002, 4, signed=True) == "[-0.0010, +0.0020]"
    assert S.format_ci(math.nan, 1.0) == "–"
