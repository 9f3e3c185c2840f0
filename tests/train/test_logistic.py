"""Newton rounds: exact without noise, stable and honest with it, penalty on the stored scale."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import statsmodels.api as sm

from fedsql.train import RoundTotals, fit_logistic

from .specs import logistic_spec, logistic_totals


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.c_[rng.uniform(20, 80, n), rng.normal(27, 5, n).clip(10, 70)]
    p = 1 / (1 + np.exp(-(-7 + 0.05 * x[:, 0] + 0.12 * x[:, 1])))
    return x, (rng.random(n) < p).astype(float)


def _evaluator(spec, x, y, sigma: float = 0.0, rng=None, log=None):  # type: ignore[no-untyped-def]
    def evaluate(at: Sequence[float], index: int) -> RoundTotals:
        if log is not None:
            log.append(index)
        totals = logistic_totals(spec, x, y, np.asarray(at))
        if sigma:
            totals = totals + rng.normal(0, sigma, totals.size)
        return RoundTotals(totals[None, :], (sigma,) * totals.size, (True,))

    return evaluate


def test_noise_free_fit_equals_statsmodels_and_stops_when_converged() -> None:
    rng = np.random.default_rng(3)
    x, y = _data(rng, 20000)
    spec = logistic_spec(2, [50.0, 40.0], [30.0, 30.0])
    rounds: list[int] = []
    (fit,), count = fit_logistic(spec, 1, _evaluator(spec, x, y, log=rounds))
    assert fit is not None and fit.converged and count == fit.iterations == len(rounds) < 15
    assert rounds == list(range(count))
    reference = sm.Logit(y, np.c_[np.ones(len(y)), x]).fit(disp=False, tol=1e-12, maxiter=100)
    assert np.allclose([fit.intercept, *fit.coefficients], reference.params, atol=1e-8)
    assert np.allclose(fit.std_errors, reference.bse, rtol=1e-6)


def test_l2_penalizes_coefficients_on_the_stored_scale_but_not_the_intercept() -> None:
    rng = np.random.default_rng(4)
    x, y = _data(rng, 5000)
    spec = logistic_spec(2, [50.0, 40.0], [30.0, 30.0], l2=300.0)
    (fit,), _ = fit_logistic(spec, 1, _evaluator(spec, x, y))
    assert fit is not None
    design = np.c_[np.ones(len(y)), x]
    beta = np.array([fit.intercept, *fit.coefficients])
    p = 1 / (1 + np.exp(-(design @ beta)))
    gradient = design.T @ (y - p) - np.r_[0.0, 300.0 * beta[1:]]
    assert np.max(np.abs(gradient)) < 1e-6


def test_noisy_rounds_stay_stable_and_report_the_noise_of_the_last_round() -> None:
    rng = np.random.default_rng(5)
    x, y = _data(rng, 50000)
    spec = logistic_spec(2, [50.0, 40.0], [30.0, 30.0], max_iter=8)
    (exact,), _ = fit_logistic(spec, 1, _evaluator(spec, x, y))
    assert exact is not None
    target = np.array([exact.intercept, *exact.coefficients])
    z = []
    for _ in range(30):
        (fit,), count = fit_logistic(spec, 1, _evaluator(spec, x, y, 60.0, rng))
        assert fit is not None and count == 8  # noise never lets a step fall below tol
        z.append((np.array([fit.intercept, *fit.coefficients]) - target) / fit.noise_std_errors)
    spread = np.std(z, axis=0)
    assert np.all((spread > 0.6) & (spread < 1.5)), spread


def test_huge_hessian_noise_is_floored_instead_of_failing() -> None:
    rng = np.random.default_rng(6)
    x, y = _data(rng, 2000)
    spec = logistic_spec(2, [50.0, 40.0], [30.0, 30.0], max_iter=4)
    (fit,), count = fit_logistic(spec, 1, _evaluator(spec, x, y, 500.0, rng))
    assert fit is not None and count == 4
    assert all(np.isfinite(fit.coefficients))


def test_suppressed_cells_give_no_model() -> None:
    spec = logistic_spec(1, [0.0], [1.0], max_iter=3)

    def evaluate(at: Sequence[float], index: int) -> RoundTotals:
        return RoundTotals(np.zeros((2, len(spec.terms))), (0.0,) * len(spec.terms), (False, True))

    fits, count = fit_logistic(spec, 2, evaluate)
    assert fits == [None, None] and count == 1
