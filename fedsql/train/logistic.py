"""Logistic regression by Newton's method (IRLS) over rounds of secure sums, one model per cell.

Round r sends the current coefficients of every cell (on the rescaled features) to the silos,
which sum the log-likelihood's gradient ``g = Σ (y - p) z`` and Hessian ``H = Σ p (1 - p) z zᵀ``
at them; the update is ``b <- b + (H + Λ)⁻¹ (g - Λ b)`` with ``Λ = diag(0, l2 / s_1², ...)``, so
the penalty ``l2/2 · Σ b_j²`` falls on the coefficients as stored, never on the intercept.

A cell stops when every step is below ``tol``; the rounds stop when every cell has stopped or
after ``max_iter``. With noise on, steps never fall below ``tol``, so every round runs (its
share of epsilon was fixed before the first); a cell is then reported converged when its last
step was within twice that step's noise standard deviation.

The noise in the last round's gradient passes to the coefficients as
``(H + Λ)⁻¹ Σ_g (H + Λ)⁻¹`` (delta method; the Hessian's noise only changes how fast Newton's
method converges, not its fixed point); the sampling covariance is ``(H + Λ)⁻¹``.

Noisy early rounds are kept stable two ways: the noisy Hessian's eigenvalues are raised to a
floor of ``EIGEN_FLOOR`` times its noise scale (so it stays positive definite), and no step moves
the linear predictor by more than ``MAX_STEP`` in root mean square over the rows, weighted as the
Hessian weighs them: ``sqrt(Δbᵀ H Δb / H₀₀)`` (a damped Newton step). Measuring the step by its
effect on the predictions rather than coefficient by coefficient makes the damping independent
of how the features are scaled and centred, so a feature whose values fill a thin slice of its
contract bounds (large coefficients that largely cancel against the intercept) converges as fast
as a well-spread one. Both are post-processing of released values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fedsql.sql.plan import ModelSpec
from fedsql.train.fit import CellFit, FloatArray, cell_fit

#: A step within this many of its noise standard deviations counts as converged (noise on).
NOISE_STOP = 2.0
#: With noise on, the Hessian's eigenvalues are kept above this many noise standard deviations
#: times sqrt(coefficients) (about the spectral norm of the Hessian's noise).
EIGEN_FLOOR = 3.0
#: Largest root-mean-square change of the linear predictor (the logit) over the rows in one step.
MAX_STEP = 4.0


@dataclass(frozen=True)
class RoundTotals:
    """What one round released.

    Attributes:
        values: Noisy totals, shape ``(cells, measures)``.
        sigmas: Noise standard deviation of each measure's totals (0 without noise).
        usable: Per cell, False when its count was suppressed.
    """

    values: FloatArray
    sigmas: tuple[float, ...]
    usable: tuple[bool, ...]


def gradient_hessian(spec: ModelSpec, row: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The gradient and symmetric Hessian in one cell's totals.

    >>> spec = ModelSpec("logistic", "m", "y", ("x",), (0.0,), (1.0,),
    ...     (("count", 0, 0), ("gradient", 0, -1), ("gradient", 1, -1), ("hessian", 0, 0),
    ...      ("hessian", 0, 1), ("hessian", 1, 1)))
    >>> g, h = gradient_hessian(spec, np.array([8.0, 1.0, 2.0, 1.5, 0.5, 0.7]))
    >>> g.tolist(), h.tolist()
    ([1.0, 2.0], [[1.5, 0.5], [0.5, 0.7]])
    """
    width = len(spec.features) + 1
    g = np.zeros(width)
    h = np.zeros((width, width))
    for j, (kind, a, b) in enumerate(spec.terms):
        if kind == "gradient":
            g[a] = row[j]
        elif kind == "hessian":
            h[a, b] = h[b, a] = row[j]
    return g, h


@dataclass(frozen=True)
class _Step:
    """A cell's state after its latest Newton step."""

    n: float
    sampling: FloatArray
    noise: FloatArray
    iterations: int
    converged: bool


def _inverse(hessian: FloatArray, floor: float) -> FloatArray | None:
    """The inverse of the (penalized) Hessian, its eigenvalues raised to ``floor`` if positive.

    Returns None when the Hessian is not positive definite and there is no noise to blame.

    >>> _inverse(np.array([[2.0, 0.0], [0.0, -1.0]]), 0.5).tolist()
    [[0.5, 0.0], [0.0, 2.0]]
    >>> _inverse(np.array([[1.0, 0.0], [0.0, 0.0]]), 0.0) is None
    True
    """
    values, vectors = np.linalg.eigh(hessian)
    if floor > 0.0:
        values = np.maximum(values, floor)
    elif values.min() <= 1e-12 * max(abs(values.max()), 1.0):
        return None
    inverse: FloatArray = (vectors / values) @ vectors.T
    return inverse


def _predictor_change(step: FloatArray, hessian: FloatArray) -> float:
    """Root-mean-square change of the linear predictor over the rows, Hessian-weighted.

    ``Δbᵀ H Δb / H₀₀``: H sums ``p (1 - p) z zᵀ`` over the rows and ``H₀₀`` sums the weights
    ``p (1 - p)`` (z₀ = 1), so this is the weighted mean of ``(Δbᵀ z)²``. A noisy Hessian may
    make either part non-positive; the step is then measured coefficient by coefficient.

    >>> h = np.array([[100.0, -90.0], [-90.0, 81.5]])  # z in a thin slice around -0.9
    >>> round(_predictor_change(np.array([-45.0, -50.0]), h), 2)  # large, cancelling coefficients
    3.54
    """
    quadratic = float(step @ hessian @ step)
    weight = float(hessian[0, 0])
    if quadratic <= 0.0 or weight <= 0.0:
        return float(np.max(np.abs(step)))
    return float(np.sqrt(quadratic / weight))


def fit_logistic(
    spec: ModelSpec,
    cells: int,
    evaluate: Callable[[Sequence[float], int], RoundTotals],
) -> tuple[list[CellFit | None], int]:
    """Run Newton rounds until every cell stopped or ``spec.max_iter`` rounds ran.

    Args:
        spec: The logistic model (options l2, max_iter, tol).
        cells: Number of cells (groups).
        evaluate: Runs one round: takes the coefficients (cell-major, rescaled features) and
            the round's index (0-based), and returns the released totals.

    Returns:
        One fit per cell (None where suppressed or singular) and the number of rounds run.
    """
    width = len(spec.features) + 1
    penalty = np.zeros(width)
    penalty[1:] = spec.l2 / np.asarray(spec.scales, dtype=np.float64) ** 2
    beta = np.zeros((cells, width))
    active = np.ones(cells, dtype=bool)
    state: list[_Step | None] = [None] * cells
    rounds = 0
    while rounds < spec.max_iter and active.any():
        totals = evaluate([float(v) for v in beta.ravel()], rounds)
        rounds += 1
        sig = np.asarray(totals.sigmas, dtype=np.float64)
        grad_sigma = np.array([sig[j] for j, t in enumerate(spec.terms) if t[0] == "gradient"])
        hess_sigma = max(sig[j] for j, t in enumerate(spec.terms) if t[0] == "hessian")
        floor = EIGEN_FLOOR * hess_sigma * np.sqrt(width)
        for cell in np.flatnonzero(active):
            row = totals.values[cell]
            if not totals.usable[cell] or row[0] <= width:
                active[cell] = False
                state[cell] = None
                continue
            g, h = gradient_hessian(spec, row)
            inverse = _inverse(h + np.diag(penalty), floor)
            if inverse is None:
                active[cell] = False
                state[cell] = None
                continue
            step = inverse @ (g - penalty * beta[cell])
            moved = _predictor_change(step, h)
            if moved > MAX_STEP:
                step = step * (MAX_STEP / moved)
            beta[cell] = beta[cell] + step
            noise = inverse @ np.diag(grad_sigma**2) @ inverse
            noise_sd = np.sqrt(np.diag(noise))
            stopped = bool(np.all(np.abs(step) <= spec.tol))
            converged = stopped or bool(
                np.any(noise_sd > 0) and np.all(np.abs(step) <= NOISE_STOP * noise_sd)
            )
            state[cell] = _Step(float(row[0]), inverse, noise, rounds, converged)
            if stopped:
                active[cell] = False
    fits: list[CellFit | None] = []
    for index in range(cells):
        s = state[index]
        if s is None:
            fits.append(None)
            continue
        fits.append(
            cell_fit(
                spec,
                beta[index],
                s.sampling,
                s.noise,
                n=s.n,
                r2=None,
                iterations=s.iterations,
                converged=s.converged,
            )
        )
    return fits, rounds
