"""Accuracy helpers: 95% intervals cover the truth at their level; the ratio sigma is right."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from fedsql.errors import DataError
from fedsql.privacy.accuracy import Z95, delta_method_ratio, interval, z_for
from fedsql.privacy.noise import sample_discrete_gaussian


def test_z95_is_the_two_sided_95_percent_normal_quantile() -> None:
    assert pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-15) == Z95
    assert z_for(0.95) == pytest.approx(Z95, abs=1e-15)
    assert z_for(0.99) == pytest.approx(2.5758293035489, abs=1e-12)


def test_interval_is_symmetric_with_half_width_z_sigma() -> None:
    lo, hi = interval(42.0, 3.0)
    assert (lo + hi) / 2 == pytest.approx(42.0)
    assert hi - lo == pytest.approx(2 * Z95 * 3.0)
    assert interval(1.0, 2.0, z=1.0) == (-1.0, 3.0)
    assert interval(7.0, math.inf) == (-math.inf, math.inf)


def test_intervals_cover_the_noise_free_value_95_percent_of_the_time() -> None:
    truth, sigma, n = 1234.0, 9.0, 20_000
    released = truth + sample_discrete_gaussian(sigma, n).astype(np.float64)
    covered = np.mean([lo <= truth <= hi for lo, hi in (interval(v, sigma) for v in released)])
    assert abs(covered - 0.95) < 0.01, covered
    # Declaring half the real sigma drops coverage to about 68%: the check has teeth.
    narrow = np.mean([lo <= truth <= hi for lo, hi in (interval(v, sigma / 2) for v in released)])
    assert narrow < 0.75


def test_delta_method_matches_simulated_ratio_spread() -> None:
    rng = np.random.default_rng(20240611)
    num, den, s_num, s_den = 5000.0, 400.0, 60.0, 8.0
    draws = (num + rng.normal(0, s_num, 200_000)) / (den + rng.normal(0, s_den, 200_000))
    predicted = delta_method_ratio(num, den, s_num, s_den)
    assert abs(float(np.std(draws)) / predicted - 1.0) < 0.03
    # Ignoring the denominator's noise would understate the spread by well over 3%.
    assert abs(float(np.std(draws)) / (s_num / den) - 1.0) > 0.1


def test_delta_method_handles_signs_and_zero_denominators() -> None:
    assert delta_method_ratio(10.0, -5.0, 1.0, 0.0) == pytest.approx(0.2)
    assert delta_method_ratio(-10.0, 5.0, 0.0, 1.0) == pytest.approx(0.4)
    assert delta_method_ratio(3.0, 0.0, 1.0, 1.0) == math.inf
    assert delta_method_ratio(3.0, 4.0, 0.0, 0.0) == 0.0


@pytest.mark.parametrize("sigma", [-1.0, math.nan, True])
def test_negative_or_missing_sigma_is_refused(sigma: float) -> None:
    with pytest.raises(DataError):
        interval(0.0, sigma)
    with pytest.raises(DataError):
        delta_method_ratio(1.0, 2.0, sigma, 1.0)
    with pytest.raises(DataError):
        delta_method_ratio(1.0, 2.0, 1.0, sigma)


@pytest.mark.parametrize("z", [-1.0, math.nan])
def test_bad_quantile_is_refused(z: float) -> None:
    with pytest.raises(DataError):
        interval(0.0, 1.0, z=z)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5])
def test_confidence_level_must_be_inside_the_unit_interval(level: float) -> None:
    with pytest.raises(DataError):
        z_for(level)
