"""Noise shares: opendp's discrete Gaussian has the declared scale, shape and independence."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pytest

from fedsql.errors import DataError
from fedsql.privacy.noise import sample_discrete_gaussian

N_DRAWS = 200_000
SCALES = (2.0, 7.5, 100.0)


@pytest.fixture(scope="module")
def draws() -> dict[float, npt.NDArray[np.int64]]:
    """One large sample per scale, shared by the statistical tests of this module."""
    return {s: sample_discrete_gaussian(s, N_DRAWS) for s in SCALES}


def _discrete_gaussian_pmf(scale: float, support: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Exact pmf of N_Z(0, scale²) on ``support`` (normalised over a wide window)."""
    half = int(40 * scale) + 10
    grid = np.arange(-half, half + 1, dtype=np.float64)
    norm = np.exp(-(grid**2) / (2 * scale**2)).sum()
    pmf = np.exp(-(support.astype(np.float64) ** 2) / (2 * scale**2)) / norm
    return np.asarray(pmf, dtype=np.float64)


def _chi2_sf(statistic: float, dof: int) -> float:
    """Upper tail of the chi-square distribution (Wilson-Hilferty; ample at these tails)."""
    k = float(dof)
    z = ((statistic / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 1.0 - NormalDist().cdf(z)


def test_draws_are_int64_vectors_of_the_requested_length() -> None:
    out = sample_discrete_gaussian(3.0, 17)
    assert out.dtype == np.int64
    assert out.shape == (17,)
    assert sample_discrete_gaussian(3.0, 0).shape == (0,)


@pytest.mark.parametrize("scale", SCALES)
def test_empirical_std_is_within_three_percent_of_the_scale(
    draws: dict[float, npt.NDArray[np.int64]], scale: float
) -> None:
    std = float(draws[scale].std())
    # Sampling error of the std at 200k draws is ~0.16%; 3% fails at any real miscalibration
    # (a 2x error in either direction is off by 50% or 100%).
    assert abs(std / scale - 1.0) < 0.03, std


@pytest.mark.parametrize("scale", SCALES)
def test_noise_has_mean_zero(draws: dict[float, npt.NDArray[np.int64]], scale: float) -> None:
    mean = float(draws[scale].mean())
    standard_error = scale / math.sqrt(N_DRAWS)
    assert abs(mean) < 6 * standard_error, mean


@pytest.mark.parametrize("scale", (2.0, 7.5))
def test_draws_follow_the_discrete_gaussian_pmf(
    draws: dict[float, npt.NDArray[np.int64]], scale: float
) -> None:
    sample = draws[scale]
    edge = int(3 * scale)
    support = np.arange(-edge, edge + 1, dtype=np.int64)
    clipped = np.clip(sample, -edge - 1, edge + 1)
    observed = np.array([(clipped == v).sum() for v in range(-edge - 1, edge + 2)])

    def chi2_pvalue(model_scale: float) -> float:
        inner = _discrete_gaussian_pmf(model_scale, support)
        tail = (1.0 - inner.sum()) / 2.0
        expected = np.concatenate(([tail], inner, [tail])) * sample.size
        statistic = float((((observed - expected) ** 2) / expected).sum())
        return _chi2_sf(statistic, observed.size - 1)

    assert chi2_pvalue(scale) > 1e-6
    # The same test has the power to see a 10% wrong scale, let alone 2x.
    assert chi2_pvalue(scale * 1.1) < 1e-6
    assert chi2_pvalue(scale / 1.1) < 1e-6


def test_coordinates_are_uncorrelated(draws: dict[float, npt.NDArray[np.int64]]) -> None:
    sample = draws[7.5].astype(np.float64)
    lag1 = float(np.corrcoef(sample[:-1], sample[1:])[0, 1])
    assert abs(lag1) < 5 / math.sqrt(sample.size)


def test_successive_calls_draw_fresh_noise() -> None:
    a = sample_discrete_gaussian(50.0, 1000)
    b = sample_discrete_gaussian(50.0, 1000)
    assert not np.array_equal(a, b)


def test_sum_of_m_shares_has_the_total_scale() -> None:
    m, total = 4, 12.0
    share = total / math.sqrt(m)
    n = 50_000
    summed = sum(sample_discrete_gaussian(share, n) for _ in range(m))
    std = float(np.std(summed))
    assert abs(std / total - 1.0) < 0.03, std
    # One share alone is half the total at m = 4: the test would fail if shares were not summed
    # or were calibrated to the total.
    assert abs(std / share - 1.0) > 0.5


@pytest.mark.parametrize("scale", [0.0, -1.0, math.nan, math.inf, True])
def test_invalid_scale_is_refused(scale: float) -> None:
    with pytest.raises(DataError):
        sample_discrete_gaussian(scale, 3)


@pytest.mark.parametrize("d", [-1, 2.0, True])
def test_invalid_dimension_is_refused(d: int) -> None:
    with pytest.raises(DataError):
        sample_discrete_gaussian(3.0, d)
