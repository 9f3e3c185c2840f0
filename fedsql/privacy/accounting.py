"""Privacy-loss units: exact micro-epsilon amounts and the zCDP <-> (epsilon, delta) conversion.

Budgets and per-query charges are written by people in epsilon at the federation's delta, and
are kept as integers in micro-epsilon so that adding and comparing them is exact. Noise is
calibrated in zero-concentrated DP (rho), so every query's epsilon is converted to the largest
rho whose guarantee is no weaker than (epsilon, delta).

The conversion is opendp's tight one (Canonne, Kamath and Steinke 2020, section 2.3): for a
rho-zCDP mechanism, ``delta(epsilon)`` is the minimum over alpha > 1 of
``exp((alpha - 1)(alpha rho - epsilon)) / (alpha - 1) * (1 - 1/alpha)^alpha``, evaluated by
opendp with conservative rounding. It allows a larger rho (less noise) than the classic bound
``epsilon = rho + 2 sqrt(rho ln(1/delta))``, which is kept here as a reference and as the
starting bracket of the inversion.

Hub and silos compute ``rho_for_epsilon`` independently and must agree bit for bit, so the
inversion is a deterministic bracketing root-find (Illinois regula falsi) whose every step
depends only on its inputs and on opendp's deterministic profile.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import opendp.prelude as dp

from fedsql.errors import DataError

__all__ = [
    "MAX_MICRO",
    "MICRO",
    "epsilon_for_rho",
    "epsilon_to_micro",
    "micro_to_epsilon",
    "rho_for_epsilon",
    "rho_for_epsilon_closed_form",
]

# "honest-but-curious" is needed only for the accountant below: a measurement whose privacy
# map is the identity on rho. Its function is never applied to data.
dp.enable_features("contrib", "honest-but-curious")

#: Micro-epsilon per epsilon.
MICRO = 1_000_000
#: Largest amount accepted, in micro-epsilon (epsilon 1e9); every amount is exact as a float.
MAX_MICRO = 10**15

# Inversion controls: stop when the bracket is this narrow relative to its lower end, or after
# this many profile evaluations (the bracket then still holds a valid, slightly smaller rho).
_REL_TOL = 2.0**-44
_MAX_STEPS = 200
_MAX_BRACKET_STEPS = 2100


def epsilon_to_micro(eps: float | str) -> int:
    """Convert an epsilon written by a person into an exact integer number of micro-epsilon.

    A float is read through its shortest round-trip representation (``repr``), so ``0.1``
    means exactly one tenth; a string is read as a decimal literal.

    Args:
        eps: The epsilon, such as ``0.25``, ``"0.1"`` or ``"1e-3"``.

    Returns:
        The epsilon in micro-epsilon, an integer in ``[1, MAX_MICRO]``.

    Raises:
        DataError: ``eps`` is not a number, not finite, not positive, larger than 1e9, or not
            a multiple of 0.000001.

    >>> epsilon_to_micro(0.1) + epsilon_to_micro("0.2") == epsilon_to_micro(0.3)
    True
    >>> epsilon_to_micro("1e-3")
    1000
    """
    if isinstance(eps, bool):
        raise DataError("epsilon must be a number, not a boolean")
    if isinstance(eps, str):
        text = eps.strip()
    elif isinstance(eps, int):
        text = str(eps)
    elif isinstance(eps, float):
        text = repr(eps)
    else:
        raise DataError(f"epsilon must be a number or a decimal string, not {type(eps).__name__}")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise DataError("epsilon is not a decimal number; write it like 0.5 or 1e-3") from None
    if not value.is_finite():
        raise DataError("epsilon must be finite")
    if value <= 0:
        raise DataError("epsilon must be positive")
    # Bound the exponent before exact arithmetic so absurd literals cost nothing.
    if value.adjusted() > 9:
        raise DataError("epsilon larger than 1e9 is not accepted")
    if value.adjusted() < -6:
        raise DataError("epsilon must be a multiple of 0.000001 (at most 6 decimal places)")
    micro = Fraction(value) * MICRO
    if micro.denominator != 1:
        raise DataError("epsilon must be a multiple of 0.000001 (at most 6 decimal places)")
    amount = micro.numerator
    if amount > MAX_MICRO:
        raise DataError("epsilon larger than 1e9 is not accepted")
    return amount


def micro_to_epsilon(m: int) -> str:
    """Render an amount in micro-epsilon as the canonical decimal string of its epsilon.

    Args:
        m: A non-negative number of micro-epsilon.

    Returns:
        The shortest exact decimal: no exponent, no trailing zeros, no trailing point.

    Raises:
        DataError: ``m`` is not a non-negative integer.

    >>> micro_to_epsilon(250_000)
    '0.25'
    >>> micro_to_epsilon(3_000_000), micro_to_epsilon(1), micro_to_epsilon(0)
    ('3', '0.000001', '0')
    """
    if isinstance(m, bool) or not isinstance(m, int):
        raise DataError("a micro-epsilon amount must be an integer")
    if m < 0:
        raise DataError("a micro-epsilon amount must not be negative")
    whole, frac = divmod(m, MICRO)
    if frac == 0:
        return str(whole)
    return f"{whole}.{frac:06d}".rstrip("0")


def _check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)):
        raise DataError("delta must be a number")
    value = float(delta)
    if not (0.0 < value < 1.0):
        raise DataError("delta must lie strictly between 0 and 1")
    return value


def _check_epsilon(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)):
        raise DataError("epsilon must be a number")
    value = float(eps)
    if not math.isfinite(value) or value <= 0.0:
        raise DataError("epsilon must be positive and finite")
    return value


@functools.cache
def _to_approx_dp() -> Any:
    """The identity-on-rho accountant, cast to approximate DP: ``.map(rho)`` is a profile."""
    identity = dp.m.make_user_measurement(
        dp.atom_domain(T=float, nan=False),
        dp.absolute_distance(T=float),
        dp.zero_concentrated_divergence(),
        function=lambda x: x,
        privacy_map=lambda rho: rho,
        TO=float,
    )
    return dp.c.make_zCDP_to_approxDP(identity)


def _delta_for(rho: float, eps: float) -> float:
    """opendp's conservative delta of a rho-zCDP release at epsilon ``eps``.

    opendp reports an overflow when the bound's exponent is not finite: that bound exceeds
    one, so the answer is the trivial delta 1.
    """
    try:
        return float(_to_approx_dp().map(rho).delta(eps))
    except dp.OpenDPException as exc:
        if exc.variant == "Overflow":
            return 1.0
        raise DataError("epsilon and delta cannot be converted to rho") from None


def rho_for_epsilon_closed_form(eps: float, delta: float) -> float:
    """The rho of the classic bound ``eps = rho + 2 sqrt(rho ln(1/delta))``, solved exactly.

    This bound is valid but slightly loose: ``rho_for_epsilon`` gives a larger rho for the
    same guarantee. It is shown for reference and used to start the tight inversion.

    Args:
        eps: Target epsilon, positive and finite.
        delta: Target delta, in (0, 1).

    Returns:
        ``(sqrt(L + eps) - sqrt(L))**2`` with ``L = ln(1/delta)``.

    Raises:
        DataError: ``eps`` or ``delta`` is out of range.

    >>> round(rho_for_epsilon_closed_form(1.0, 1e-6), 6)
    0.017469
    """
    e = _check_epsilon(eps)
    d = _check_delta(delta)
    log_inv = -math.log(d)
    # sqrt(L + e) - sqrt(L) written without cancellation.
    root = e / (math.sqrt(log_inv + e) + math.sqrt(log_inv))
    return root * root


def epsilon_for_rho(rho: float, delta: float) -> float:
    """The smallest epsilon such that a rho-zCDP release is (epsilon, delta)-DP (opendp, tight).

    Args:
        rho: zCDP parameter, finite and non-negative.
        delta: Target delta, in (0, 1).

    Returns:
        Epsilon, a conservative upper bound computed by opendp (0.0 when ``rho`` is 0).

    Raises:
        DataError: ``rho`` or ``delta`` is out of range.

    >>> round(epsilon_for_rho(0.125, 1e-6), 6)
    2.419093
    """
    if isinstance(rho, bool) or not isinstance(rho, (int, float)):
        raise DataError("rho must be a number")
    r = float(rho)
    if not math.isfinite(r) or r < 0.0:
        raise DataError("rho must be finite and non-negative")
    d = _check_delta(delta)
    if r == 0.0:
        return 0.0
    return _epsilon_for_rho(r, d)


@functools.lru_cache(maxsize=1024)
def _epsilon_for_rho(rho: float, delta: float) -> float:
    try:
        return float(_to_approx_dp().map(rho).epsilon(delta))
    except dp.OpenDPException:
        raise DataError("rho is too large to convert to (epsilon, delta)") from None


def rho_for_epsilon(eps: float, delta: float) -> float:
    """The largest rho whose tight (opendp) conversion is (eps, delta)-DP.

    The result satisfies ``opendp delta(rho, eps) <= delta`` (so that
    ``epsilon_for_rho(result, delta) <= eps``) and is within a relative 2**-43 of the largest
    such rho. It is a deterministic function of its arguments: every party computing it for
    the same inputs gets the same float.

    Args:
        eps: Target epsilon, positive and finite.
        delta: Target delta, in (0, 1).

    Returns:
        rho, positive and at least ``rho_for_epsilon_closed_form(eps, delta)``.

    Raises:
        DataError: ``eps`` or ``delta`` is out of range.

    >>> rho = rho_for_epsilon(1.0, 1e-6)
    >>> rho > rho_for_epsilon_closed_form(1.0, 1e-6)
    True
    >>> epsilon_for_rho(rho, 1e-6) <= 1.0
    True
    """
    return _rho_for_epsilon(_check_epsilon(eps), _check_delta(delta))


@functools.lru_cache(maxsize=1024)
def _rho_for_epsilon(e: float, d: float) -> float:
    """``rho_for_epsilon`` on validated floats (cached: hub and silos ask for few epsilons)."""
    log_target = math.log(d)

    def excess(rho: float) -> tuple[bool, float]:
        """(rho meets the target, log(delta(rho)) - log(target)) with the sign kept honest."""
        got = _delta_for(rho, e)
        ok = got <= d
        gap = math.log(got) - log_target if got > 0.0 else -math.inf
        return ok, (min(gap, 0.0) if ok else max(gap, math.ulp(1.0)))

    # Bracket: lo meets the target, hi does not. The closed form almost always meets it.
    lo = rho_for_epsilon_closed_form(e, d)
    ok, f_lo = excess(lo)
    steps = 0
    while not ok:
        steps += 1
        if steps > _MAX_BRACKET_STEPS or lo == 0.0:  # pragma: no cover - opendp contract broken
            raise DataError("no rho meets the requested (epsilon, delta)")
        lo /= 2.0
        ok, f_lo = excess(lo)
    hi = lo * 2.0
    ok, f_hi = excess(hi)
    while ok:
        steps += 1
        if steps > _MAX_BRACKET_STEPS or math.isinf(hi):  # pragma: no cover - ditto
            raise DataError("no finite rho bounds the requested (epsilon, delta)")
        lo, f_lo = hi, f_hi
        hi *= 2.0
        ok, f_hi = excess(hi)

    # Illinois regula falsi on log(delta): superlinear, and the bracket never loses validity.
    # Each probe keeps at least `tol` from both ends, so once the root is pinned from one side
    # the next probe pins it from the other.
    side = 0
    for _ in range(_MAX_STEPS):
        tol = lo * _REL_TOL
        if hi - lo <= 2.0 * tol:
            break
        cand = lo + (hi - lo) / 2.0
        if math.isfinite(f_lo) and math.isfinite(f_hi) and f_hi != f_lo:
            cand = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        cand = min(max(cand, lo + tol), hi - tol)
        ok, f_c = excess(cand)
        if ok:
            lo, f_lo = cand, f_c
            if side == -1:
                f_hi /= 2.0
            side = -1
        else:
            hi, f_hi = cand, f_c
            if side == 1:
                f_lo /= 2.0
            side = 1
    return lo
