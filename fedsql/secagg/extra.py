"""Removing the noise not needed once every cohort member answered: the masked extra vector.

Each silo's noise share is drawn as two independent discrete Gaussians (see
:mod:`fedsql.privacy.calibrate`): a base part ``E_base ~ N_Z(0, sigma_j²/m_all)`` with
``m_all = n - c_max``, and an extra part ``E_extra ~ N_Z(0, sigma_j²/m_min - sigma_j²/m_all)``.
The upload (M1) carries ``X + E_base + E_extra`` masked as usual, so every released total has at
least the noise it had before. The silo keeps ``E_extra`` with the query's round state, in memory
only. In round 2, and only when the signed view R2 says that nobody dropped (``D`` empty, so
``S == U``), the silo adds to M3 the masked extra vector::

    z_u = E_extra_u + sum_{v in U, v != u} sign(u, v) · PRG(xk_uv, d)     (mod 2^64)
    xk_uv = HKDF(K_uv, salt = qid, info = "extra" ‖ hq ‖ SHA-256(R2), 16)

If every member of U returns one, the pairwise masks cancel and the coordinator subtracts
``sum_u E_extra_u`` from the unmasked total, which then carries ``n`` base shares.

Why this is private:

* The coordinator can remove a mask ``PRG(xk_uv)`` of two honest silos only with the other
  silo's ``z_v``, which carries ``E_extra_v`` and masks of its own: honest extras come out only
  as the sum over every honest silo, and only if every honest silo sent its ``z`` for the same
  view. An honest silo sends ``z`` only for a view with ``D`` empty (it refuses to compute one
  otherwise), at most once per query (the round's ANSWERED state), and ``xk`` is bound to
  SHA-256(R2): a silo given another view derives other keys, so its masks do not cancel with
  the others'. ``xk`` is used for nothing else, never sent, and not derivable from the mask or
  share keys round 2 may reveal. Colluding silos can reveal their own ``xk``, which removes
  only their own part.
* So the honest extras leave the total only when every honest silo answered round 2 with
  ``D`` empty, and then every honest silo's upload is in the total. At most ``c_max`` silos
  collude with the coordinator, so at least ``m_all = n - c_max`` honest base shares remain,
  with variance at least ``m_all · sigma_j²/m_all = sigma_j²``: the query's privacy cost is
  unchanged. Each base share
  is at least 2 encoded units, so their sum is close to a discrete Gaussian (Kairouz, Liu and
  Steinke 2021). When the extras are not removed, the ``>= m_min`` honest whole shares give
  ``sigma_j²`` as before; their extras together have variance ``m_min · sigma_extra² >=
  sigma_base² >= 4`` whenever there is an extra part, since ``m_all - m_min >= 1``.
* The extras are independent of the data, so revealing their sum reveals nothing about any
  ``X_u``; no individual ``E_extra_u`` is ever sent unmasked, and the ANSWERED state of a round
  means a silo computes at most one ``z`` per query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import DataError, ProtocolError
from fedsql.secagg import keys, masks

__all__ = ["check_extra", "masked_extra", "remove_extras"]


def check_extra(extra: NDArray[np.int64], d: int) -> NDArray[np.int64]:
    """A silo's extra noise vector as the session keeps it: a private int64 copy of length d.

    Args:
        extra: The extra noise part added to the upload.
        d: The vector length of the query.

    Returns:
        A copy of ``extra``.

    Raises:
        DataError: If ``extra`` is not a one-dimensional int64 array of length ``d``.

    >>> check_extra(np.array([1, -2], dtype=np.int64), 2).tolist()
    [1, -2]
    """
    if not isinstance(extra, np.ndarray) or extra.dtype != np.int64 or extra.shape != (d,):
        raise DataError(f"the extra noise vector must be an int64 array of length {d}")
    return extra.copy()


def masked_extra(
    extra: NDArray[np.int64],
    own: str,
    pair_keys: Mapping[str, bytes],
    qid: bytes,
    hq: bytes,
    request_digest: bytes,
    dropped: Iterable[str],
) -> NDArray[np.uint64]:
    """The masked extra vector z_u of one silo, for a round-2 view in which nobody dropped.

    Args:
        extra: This silo's extra noise vector (int64).
        own: This silo's id.
        pair_keys: The pair key with every other cohort member (the keys the upload was masked
            with).
        qid: The 16-byte query id.
        hq: The 32-byte descriptor digest.
        request_digest: SHA-256 of the round-2 view R2 being answered.
        dropped: D of that view; it must be empty.

    Returns:
        ``E_extra + sum_v sign(own, v) · PRG(xk_uv)`` as uint64 (mod 2^64).

    Raises:
        ProtocolError: If ``dropped`` is not empty (the extra is only ever removed when every
            cohort member answered), or a key is malformed.
    """
    if any(True for _ in dropped):
        raise ProtocolError(
            "an extra noise vector is only sent when no silo dropped; refusing to compute one"
        )
    z = extra.astype(np.int64, copy=True).view(np.uint64)
    masks.apply_pairwise_masks(
        z,
        own,
        ((peer, keys.extra_key(pair, qid, hq, request_digest)) for peer, pair in pair_keys.items()),
    )
    return z


def remove_extras(total: NDArray[np.uint64], extras: Iterable[NDArray[np.uint64]]) -> None:
    """Subtract every masked extra vector from the unmasked total, in place (mod 2^64).

    Args:
        total: The total over the cohort, uint64.
        extras: One masked extra vector per cohort member, each of the total's length.

    >>> total = np.array([10], dtype=np.uint64)
    >>> remove_extras(total, [np.array([3], dtype=np.uint64)]); total.tolist()
    [7]
    """
    for z in extras:
        np.subtract(total, z, out=total)
