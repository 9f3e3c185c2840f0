"""Least squares from sufficient statistics: exact without noise, honest errors with it."""

from __future__ import annotations

import numpy as np
import pytest

from fedsql.train import fit_linear

from .specs import linear_spec, linear_totals


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.c_[rng.uniform(20, 80, n), rng.uniform(15, 45, n)]
    y = 3.0 + 0.2 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(0, 2.0, n)
    return x, np.clip(y, -50, 50)


def test_noise_free_fit_equals_least_squares_on_the_stored_scale() -> None:
    rng = np.random.default_rng(1)
    x, y = _data(rng, 5000)
    spec = linear_spec(2, [50.0, 30.0, 0.0], [30.0, 15.0, 50.0])
    (fit,) = fit_linear(spec, linear_totals(spec, x, y)[None, :], [0.0] * 10, [True])
    assert fit is not None
    design = np.c_[np.ones(len(y)), x]
    expected, *_ = np.linalg.lstsq(design, y, rcond=None)
    assert np.allclose([fit.intercept, *fit.coefficients], expected, atol=1e-9)
    residual = y - design @ expected
    sigma2 = residual @ residual / (len(y) - 3)
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    assert np.allclose(fit.std_errors, se, rtol=1e-9)
    assert fit.noise_std_errors == (0.0, 0.0, 0.0)
    assert fit.r2 == pytest.approx(1 - residual @ residual / ((y - y.mean()) @ (y - y.mean())))
    assert fit.n == 5000


def test_noise_errors_match_the_spread_of_noisy_fits() -> None:
    rng = np.random.default_rng(2)
    x, y = _data(rng, 20000)
    spec = linear_spec(2, [50.0, 30.0, 0.0], [30.0, 15.0, 50.0])
    exact = linear_totals(spec, x, y)
    sigmas = np.full(10, 40.0)
    fits = [
        fit_linear(spec, (exact + rng.normal(0, 40.0, 10))[None, :], sigmas, [True], seed=i)[0]
        for i in range(300)
    ]
    estimates = np.array([[f.intercept, *f.coefficients] for f in fits if f is not None])
    claimed = np.mean([f.noise_std_errors for f in fits if f is not None], axis=0)
    ratio = estimates.std(axis=0) / claimed
    assert np.all((ratio > 0.8) & (ratio < 1.25)), ratio
    # the total error counts sampling and noise together
    assert all(np.all(np.array(f.std_errors) >= np.array(f.noise_std_errors)) for f in fits if f)


def test_suppressed_empty_or_singular_cells_give_no_model() -> None:
    spec = linear_spec(1, [0.0, 0.0], [1.0, 1.0])
    x = np.ones((10, 1))
    singular = linear_totals(spec, x, np.arange(10.0))
    good = linear_totals(spec, np.arange(10.0)[:, None] / 10, np.arange(10.0) / 10)
    values = np.vstack([singular, good, good, np.zeros(6)])
    fits = fit_linear(spec, values, [0.0] * 6, [True, True, False, True])
    assert fits[0] is None and fits[1] is not None and fits[2] is None and fits[3] is None
