"""Accuracy of released values: normal-approximation intervals and the delta method for ratios.

A released count or sum carries zero-mean noise of known standard deviation (the sum of the
silos' discrete Gaussian shares, very close to normal at the scales used), so its 95% interval
is value ± 1.96 sigma. A ratio of two released values with independent noise, such as
AVG = SUM / COUNT, gets its sigma from the first-order delta method. Intervals cover the noise
only; clamping bias is reported separately.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from fedsql.errors import DataError

__all__ = ["Z95", "delta_method_ratio", "interval", "z_for"]

#: Two-sided 95% standard normal quantile, Phi^-1(0.975).
Z95 = 1.959963984540054


def _check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise DataError("a noise standard deviation must be a number")
    s = float(sigma)
    if math.isnan(s) or s < 0.0:
        raise DataError("a noise standard deviation must be non-negative")
    return s


def z_for(level: float) -> float:
    """The two-sided standard normal quantile for a confidence ``level``.

    Args:
        level: Coverage in (0, 1), such as 0.95.

    Returns:
        ``Phi^-1((1 + level) / 2)``.

    Raises:
        DataError: ``level`` is not in (0, 1).

    >>> abs(z_for(0.95) - Z95) < 1e-15
    True
    >>> round(z_for(0.9), 6)
    1.644854
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        raise DataError("a confidence level must be a number")
    if not (0.0 < float(level) < 1.0):
        raise DataError("a confidence level must lie strictly between 0 and 1")
    return NormalDist().inv_cdf((1.0 + float(level)) / 2.0)


def interval(value: float, sigma: float, z: float = Z95) -> tuple[float, float]:
    """The symmetric interval ``value ± z·sigma`` (95% by default) for noise of std ``sigma``.

    Args:
        value: The released (noisy) value.
        sigma: Standard deviation of its noise, non-negative (``inf`` gives an unbounded
            interval).
        z: The normal quantile; ``Z95`` unless another level is wanted (see ``z_for``).

    Returns:
        ``(lo, hi)``.

    Raises:
        DataError: ``sigma`` is negative or NaN, or ``z`` is negative or NaN.

    >>> interval(100.0, 10.0)
    (80.40036015459947, 119.59963984540053)
    >>> interval(5.0, 0.0)
    (5.0, 5.0)
    """
    s = _check_sigma(sigma)
    if isinstance(z, bool) or not isinstance(z, (int, float)) or math.isnan(z) or z < 0.0:
        raise DataError("the interval's quantile must be a non-negative number")
    half = float(z) * s if s > 0.0 else 0.0
    return (value - half, value + half)


def delta_method_ratio(num: float, den: float, s_num: float, s_den: float) -> float:
    """Standard deviation of ``num / den`` when both carry independent zero-mean noise.

    First-order delta method: ``sqrt(s_num² + (num/den)²·s_den²) / |den|``. It is accurate
    when ``|den|`` is many times ``s_den``; for small denominators the ratio has no finite
    variance and the value should be read with care (or suppressed).

    Args:
        num: Released numerator (for AVG, the noisy SUM).
        den: Released denominator (for AVG, the noisy COUNT).
        s_num: Standard deviation of the numerator's noise.
        s_den: Standard deviation of the denominator's noise.

    Returns:
        The approximate standard deviation of the ratio; ``inf`` when ``den`` is 0.

    Raises:
        DataError: a standard deviation is negative or NaN.

    >>> delta_method_ratio(1000.0, 100.0, 30.0, 4.0)
    0.5
    >>> delta_method_ratio(1.0, 0.0, 1.0, 1.0)
    inf
    """
    sn = _check_sigma(s_num)
    sd = _check_sigma(s_den)
    if den == 0.0:
        return math.inf
    ratio = num / den
    return math.hypot(sn, ratio * sd) / abs(den)
