"""One fitted model (per cell): coefficients on the analyst's scale, errors, and the rescaling.

Models are fitted on features rescaled to [-1, 1] (``z = (x - center) / scale``, see
``fedsql.sql.regression``). This module maps coefficients and their covariance back to the
columns as stored: ``b_j = b'_j / s_j`` and ``b_0 = b'_0 - sum_j b'_j c_j / s_j`` (times the
target's scale, plus its center, for a linear model whose target is rescaled too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedsql.sql.plan import ModelSpec

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CellFit:
    """The model of one cell (group), on the analyst's scale.

    Attributes:
        intercept: The intercept.
        coefficients: One per feature, in the order of the call.
        std_errors: Standard errors of intercept then coefficients: sampling and noise together.
        noise_std_errors: The part due to the privacy noise alone (0 without noise): a 95%
            interval ``estimate ± 1.96 noise_std_error`` covers the noise-free fit.
        n: Rows used (the noisy row count, rounded).
        r2: R² (linear models), else None.
        iterations: Newton rounds used for this cell (1 for linear models).
        converged: Whether the last step was below ``tol`` (or within the noise).
    """

    intercept: float
    coefficients: tuple[float, ...]
    std_errors: tuple[float, ...]
    noise_std_errors: tuple[float, ...]
    n: int
    r2: float | None
    iterations: int
    converged: bool


def unscale(spec: ModelSpec) -> tuple[FloatArray, FloatArray]:
    """The affine map ``b = offset + T b'`` from rescaled to stored-scale coefficients.

    Args:
        spec: The model (its features' centers and scales, and the target's for linear).

    Returns:
        ``(offset, T)`` with ``b = (intercept, coefficients...)``.

    >>> spec = ModelSpec("logistic", "m", "y", ("x",), (5.0,), (2.0,), ())
    >>> offset, t = unscale(spec)
    >>> (offset + t @ np.array([1.0, 4.0])).tolist()
    [-9.0, 2.0]
    """
    p = len(spec.features)
    centers = np.asarray(spec.centers[:p], dtype=np.float64)
    scales = np.asarray(spec.scales[:p], dtype=np.float64)
    target_center, target_scale = 0.0, 1.0
    if spec.kind == "linear":
        target_center, target_scale = spec.centers[p], spec.scales[p]
    t = np.zeros((p + 1, p + 1))
    t[0, 0] = target_scale
    t[0, 1:] = -target_scale * centers / scales
    t[np.arange(1, p + 1), np.arange(1, p + 1)] = target_scale / scales
    offset = np.zeros(p + 1)
    offset[0] = target_center
    return offset, t


def cell_fit(
    spec: ModelSpec,
    scaled: FloatArray,
    sampling_cov: FloatArray,
    noise_cov: FloatArray,
    *,
    n: float,
    r2: float | None,
    iterations: int,
    converged: bool,
) -> CellFit:
    """Map a fit on the rescaled features to the stored scale.

    Args:
        spec: The model.
        scaled: Intercept and coefficients on the rescaled features.
        sampling_cov: Their sampling covariance.
        noise_cov: Their covariance due to the privacy noise.
        n: The (noisy) row count.
        r2: R², or None.
        iterations: Newton rounds used.
        converged: Convergence flag.

    Returns:
        The fit on the stored scale.
    """
    offset, t = unscale(spec)
    beta = offset + t @ scaled
    sampling = np.diag(t @ sampling_cov @ t.T)
    noise = np.diag(t @ noise_cov @ t.T)
    total = np.sqrt(np.maximum(sampling, 0.0) + np.maximum(noise, 0.0))
    return CellFit(
        intercept=float(beta[0]),
        coefficients=tuple(float(b) for b in beta[1:]),
        std_errors=tuple(float(s) for s in total),
        noise_std_errors=tuple(float(s) for s in np.sqrt(np.maximum(noise, 0.0))),
        n=round(n),
        r2=r2,
        iterations=iterations,
        converged=converged,
    )


def term_index(spec: ModelSpec) -> dict[tuple[str, int, int], int]:
    """Measure position of each term of the model.

    >>> spec = ModelSpec("linear", "m", "y", ("x",), (0.0, 0.0), (1.0, 1.0),
    ...                  (("count", 0, 0), ("cross", 0, 1)))
    >>> term_index(spec)[("cross", 0, 1)]
    1
    """
    return {term: j for j, term in enumerate(spec.terms)}
