"""Shamir secret sharing of 16-byte self-mask seeds over GF(p), p = 2^521 - 1.

A seed is shared with a random polynomial of degree t - 1 whose constant term is the seed;
holder ``x`` (its 1-based roster index) gets the value at ``x``, encoded as 66 bytes big-endian.
Any t shares reconstruct the seed by Lagrange interpolation at 0; fewer reveal nothing about it.
Lagrange coefficients depend only on the holder set, so they are computed once per set (one
modular inversion per set, batched) and cached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

from fedsql.errors import ProtocolError

__all__ = ["PRIME", "SECRET_BYTES", "SHARE_BYTES", "lagrange_at_zero", "reconstruct", "split"]

#: The field modulus, the Mersenne prime 2^521 - 1.
PRIME = 2**521 - 1
#: Length of an encoded share.
SHARE_BYTES = 66
#: Length of a shared secret (a self-mask seed).
SECRET_BYTES = 16


def _random_element(random_bytes: Callable[[int], bytes]) -> int:
    """A uniform element of GF(p) by rejection sampling 521-bit strings."""
    while True:
        value = int.from_bytes(random_bytes(SHARE_BYTES), "big") & PRIME
        if value < PRIME:
            return value


def _check_holders(holders: Iterable[int]) -> tuple[int, ...]:
    xs = tuple(holders)
    for x in xs:
        if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x < PRIME:
            raise ProtocolError("a Shamir evaluation point must be a positive roster index")
    if len(set(xs)) != len(xs):
        raise ProtocolError("Shamir evaluation points must be distinct")
    return xs


def split(
    secret: bytes,
    threshold: int,
    holders: Sequence[int],
    *,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> dict[int, bytes]:
    """Share a 16-byte secret so that any ``threshold`` holders can reconstruct it.

    Args:
        secret: The 16-byte secret.
        threshold: t, the number of shares needed (1 <= t <= len(holders)).
        holders: Distinct evaluation points (roster indices, >= 1), one per holder.
        random_bytes: Source of randomness for the polynomial; keep the default
            (``os.urandom``) except to reproduce a run in tests.

    Returns:
        Map from evaluation point to its 66-byte share.

    Raises:
        ProtocolError: If the secret, threshold or holders are malformed.

    >>> shares = split(b"0123456789abcdef", 2, [1, 2, 3])
    >>> sorted(shares), len(shares[1])
    ([1, 2, 3], 66)
    >>> reconstruct({3: shares[3], 1: shares[1]})
    b'0123456789abcdef'
    """
    if len(secret) != SECRET_BYTES:
        raise ProtocolError(f"a shared secret must be {SECRET_BYTES} bytes")
    xs = _check_holders(holders)
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ProtocolError("a Shamir threshold must be an integer")
    if not 1 <= threshold <= len(xs):
        raise ProtocolError("a Shamir threshold must be between 1 and the number of holders")
    coeffs = [int.from_bytes(secret, "big")]
    coeffs.extend(_random_element(random_bytes) for _ in range(threshold - 1))
    shares: dict[int, bytes] = {}
    for x in xs:
        acc = 0
        for c in reversed(coeffs):  # Horner; the highest coefficient first
            acc = (acc * x + c) % PRIME
        shares[x] = acc.to_bytes(SHARE_BYTES, "big")
    return shares


@lru_cache(maxsize=4096)
def lagrange_at_zero(xs: tuple[int, ...]) -> tuple[int, ...]:
    """Lagrange coefficients at 0 for the points ``xs``: l_i = prod_{j != i} x_j / (x_j - x_i).

    Numerators and denominators are products of small integers, computed exactly; the
    denominators are then inverted mod p together with one modular inversion.

    Args:
        xs: Distinct evaluation points.

    Returns:
        One coefficient per point, in the same order.

    Raises:
        ProtocolError: If the points are not distinct positive integers.

    >>> lagrange_at_zero((1, 2)) == (2, PRIME - 1)
    True
    """
    _check_holders(xs)
    product = 1
    for x in xs:
        product *= x
    nums = [(product // xi) % PRIME for xi in xs]
    dens: list[int] = []
    for xi in xs:
        den = 1
        for xj in xs:
            if xj != xi:
                den *= xj - xi
        dens.append(den % PRIME)
    # Batch inversion (Montgomery's trick): one pow(., -1, p) for all denominators.
    prefix = [1]
    for den in dens:
        prefix.append(prefix[-1] * den % PRIME)
    inv = pow(prefix[-1], -1, PRIME)
    invs = [0] * len(dens)
    for i in range(len(dens) - 1, -1, -1):
        invs[i] = inv * prefix[i] % PRIME
        inv = inv * dens[i] % PRIME
    return tuple(num * inv_den % PRIME for num, inv_den in zip(nums, invs, strict=True))


def _decode_share(share: bytes) -> int:
    if len(share) != SHARE_BYTES:
        raise ProtocolError(f"a Shamir share must be {SHARE_BYTES} bytes")
    value = int.from_bytes(share, "big")
    if value >= PRIME:
        raise ProtocolError("a Shamir share is not a field element")
    return value


def reconstruct(shares: Mapping[int, bytes]) -> bytes:
    """Interpolate the secret from shares (all of them are used).

    Give exactly t shares, or more that lie on the same polynomial; a wrong share gives a
    wrong secret (the caller checks it against a commitment).

    Args:
        shares: Map from evaluation point to 66-byte share.

    Returns:
        The 16-byte secret.

    Raises:
        ProtocolError: If there are no shares, a share is malformed, or the interpolated
            value is not a 16-byte secret (wrong or too few shares).
    """
    if not shares:
        raise ProtocolError("no Shamir shares to reconstruct from")
    xs = tuple(sorted(shares))
    coeffs = lagrange_at_zero(xs)
    acc = 0
    for x, lam in zip(xs, coeffs, strict=True):
        acc += lam * _decode_share(shares[x])
    secret = acc % PRIME
    if secret >= 1 << (8 * SECRET_BYTES):
        raise ProtocolError("the Shamir shares do not reconstruct a valid seed")
    return secret.to_bytes(SECRET_BYTES, "big")
