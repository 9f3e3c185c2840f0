"""Least squares from securely summed sufficient statistics, one model per cell.

The released totals of a LINEAR_REGRESSION plan are, per cell, the upper triangle of
``M = ZᵀZ`` with ``Z = (1, z_1, ..., z_k, z_y)`` on the rescaled columns: XᵀX, Xᵀy, yᵀy and n in
one matrix. Coefficients solve ``XᵀX b = Xᵀy``; the sampling covariance is ``s² (XᵀX)⁻¹`` with
``s² = (yᵀy - bᵀXᵀy) / (n - k - 1)``. With noise on, the covariance due to the noise is estimated
by simulation: the released totals are perturbed a few thousand times with the noise's known
standard deviations, the model solved again each time, and the spread of the solutions taken
(post-processing of released values only, so it costs no privacy).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedsql.sql.plan import ModelSpec
from fedsql.train.fit import CellFit, FloatArray, cell_fit

#: Draws of the noise simulation.
NOISE_DRAWS = 2000


def cross_matrices(spec: ModelSpec, values: FloatArray) -> FloatArray:
    """The symmetric ``ZᵀZ`` of each row of ``values`` (shape ``(..., m)`` -> ``(..., q, q)``).

    Args:
        spec: A linear model.
        values: Totals of the plan's measures, last axis in measure order.

    Returns:
        The matrices, ``q = features + 2``.

    >>> spec = ModelSpec("linear", "m", "y", ("x",), (0.0, 0.0), (1.0, 1.0),
    ...     (("count", 0, 0), ("cross", 0, 1), ("cross", 0, 2), ("cross", 1, 1),
    ...      ("cross", 1, 2), ("cross", 2, 2)))
    >>> cross_matrices(spec, np.arange(1.0, 7.0))[0].tolist()
    [1.0, 2.0, 3.0]
    """
    q = len(spec.features) + 2
    out = np.zeros((*values.shape[:-1], q, q))
    for j, (_, a, b) in enumerate(spec.terms):
        out[..., a, b] = values[..., j]
        out[..., b, a] = values[..., j]
    return out


def _solve(matrices: FloatArray) -> FloatArray:
    """Scaled coefficients of each matrix (``(..., q, q)`` -> ``(..., q - 1)``)."""
    xtx = matrices[..., :-1, :-1]
    xty = matrices[..., :-1, -1]
    return np.asarray(np.linalg.solve(xtx, xty[..., None])[..., 0], dtype=np.float64)


def fit_linear(
    spec: ModelSpec,
    values: FloatArray,
    sigmas: Sequence[float],
    usable: Sequence[bool],
    *,
    seed: int = 0,
) -> list[CellFit | None]:
    """Fit the least-squares model of every cell.

    Args:
        spec: The linear model.
        values: Noisy totals, shape ``(cells, measures)``.
        sigmas: Noise standard deviation of each measure's totals (0 without noise).
        usable: Per cell, False when its count was suppressed.
        seed: Seed of the noise simulation (post-processing; any value is private).

    Returns:
        One fit per cell, None where the cell is suppressed or its statistics are singular.
    """
    p = len(spec.features)
    sig = np.asarray(sigmas, dtype=np.float64)
    rng = np.random.default_rng(seed)
    fits: list[CellFit | None] = []
    for cell in range(values.shape[0]):
        row = values[cell]
        n = float(row[0])
        if not usable[cell] or n <= p + 1:
            fits.append(None)
            continue
        m = cross_matrices(spec, row)
        try:
            np.linalg.cholesky(m[:-1, :-1])
            beta = _solve(m)
            inverse = np.asarray(np.linalg.inv(m[:-1, :-1]), dtype=np.float64)
        except np.linalg.LinAlgError:
            fits.append(None)
            continue
        xty, yty = m[:-1, -1], m[-1, -1]
        rss = max(float(yty - beta @ xty), 0.0)
        tss = float(yty - m[0, -1] ** 2 / n)
        sampling = rss / (n - p - 1) * inverse
        noise = np.zeros_like(sampling)
        if np.any(sig > 0):
            draws = row + rng.standard_normal((NOISE_DRAWS, row.size)) * sig
            try:
                moved = _solve(cross_matrices(spec, draws))
                noise = np.asarray(np.cov(moved, rowvar=False), dtype=np.float64)
            except np.linalg.LinAlgError:
                noise = np.full_like(sampling, np.nan)
        r2 = 1.0 - rss / tss if tss > 0 else None
        fits.append(cell_fit(spec, beta, sampling, noise, n=n, r2=r2, iterations=1, converged=True))
    return fits
