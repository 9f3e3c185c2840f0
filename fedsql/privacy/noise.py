"""Noise shares: exact discrete Gaussian integer vectors drawn with opendp's sampler.

A silo adds one share of scale ``sigma_local_encoded`` (see ``fedsql.privacy.calibrate``) to its
encoded partial vector before masking. The sampler is opendp's exact discrete Gaussian
(Canonne, Kamath and Steinke 2020): no floating point enters the draw, and the randomness comes
from opendp's cryptographically secure generator, so it cannot be seeded. It costs about 10 us
per coordinate, which is why partial vectors are kept to the public key space.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt
import opendp.prelude as dp

from fedsql.errors import DataError

__all__ = ["sample_discrete_gaussian"]

dp.enable_features("contrib")


@functools.lru_cache(maxsize=128)
def _sampler(scale: float) -> Any:
    """opendp's discrete Gaussian measurement over i64 vectors (built once per scale)."""
    return dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")),
        dp.l2_distance(T="i64"),
        scale=scale,
    )


def sample_discrete_gaussian(scale: float, d: int) -> npt.NDArray[np.int64]:
    """Draw ``d`` independent discrete Gaussian integers N_Z(0, scale²) with opendp.

    The draw is the opendp measurement applied to a zero vector, so each coordinate is exactly
    distributed as P(x) ∝ exp(-x² / (2 scale²)) over the integers.

    Args:
        scale: The discrete Gaussian's scale (its standard deviation, to within a relative
            exp(-2 pi² scale²)), in encoded integer units. Positive and finite.
        d: Number of coordinates, at least 0.

    Returns:
        An int64 array of length ``d``.

    Raises:
        DataError: ``scale`` is not positive and finite, or ``d`` is not a non-negative int.

    >>> sample_discrete_gaussian(3.0, 4).dtype, sample_discrete_gaussian(3.0, 4).shape
    (dtype('int64'), (4,))
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise DataError("the noise scale must be a number")
    s = float(scale)
    if not math.isfinite(s) or s <= 0.0:
        raise DataError("the noise scale must be positive and finite")
    if isinstance(d, bool) or not isinstance(d, int) or d < 0:
        raise DataError("the noise dimension must be a non-negative integer")
    if d == 0:
        return np.zeros(0, dtype=np.int64)
    draws = _sampler(s)([0] * d)
    return np.asarray(draws, dtype=np.int64)
