"""The double-masking arithmetic: the sign rule, pairwise and self masks, and seed commitments.

Silo i uploads ``y_i = x_i + PRG(b_i) + sum_{j != i} sign(i, j) * PRG(mk_ij)`` (mod 2^64) with
``sign(i, j) = +1`` if ``id_i < id_j`` (string order) else ``-1``, so the pairwise masks of any
two silos cancel in the sum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg import prg
from fedsql.secagg.canonical import str_field
from fedsql.secagg.keys import QID_BYTES
from fedsql.secagg.shamir import SECRET_BYTES

__all__ = ["apply_pairwise_masks", "mask_sign", "seed_commitment"]


def mask_sign(own: str, peer: str) -> int:
    """sign(own, peer): +1 if ``own < peer`` in string order, else -1.

    Args:
        own: Silo id of the silo applying the mask.
        peer: Silo id of the other silo of the pair.

    Returns:
        +1 or -1; ``mask_sign(a, b) == -mask_sign(b, a)``.

    Raises:
        ProtocolError: If the two ids are equal.

    >>> mask_sign("clinic-a", "clinic-b"), mask_sign("clinic-b", "clinic-a")
    (1, -1)
    """
    if own == peer:
        raise ProtocolError("a silo has no pairwise mask with itself")
    return 1 if own < peer else -1


def apply_pairwise_masks(
    acc: NDArray[np.uint64], own: str, keys: Iterable[tuple[str, bytes]], *, negate: bool = False
) -> None:
    """Add ``sign(own, peer) * PRG(key)`` for each (peer, mask key) into ``acc`` in place.

    The silo uses this to mask its upload; the coordinator uses it with ``negate=True`` to
    remove a survivor's residual masks with dropped silos.

    Args:
        acc: The uint64 accumulator, modified in place.
        own: Silo id of the silo whose masks these are.
        keys: Pairs of (peer silo id, 16-byte mask key).
        negate: Subtract the masks instead of adding them.

    Raises:
        ProtocolError: If a key is malformed or a peer equals ``own``.

    >>> acc = np.zeros(2, dtype=np.uint64)
    >>> apply_pairwise_masks(acc, "a", [("b", bytes(16))])
    >>> apply_pairwise_masks(acc, "b", [("a", bytes(16))])
    >>> acc.tolist()
    [0, 0]
    """
    for peer, key in keys:
        sign = mask_sign(own, peer)
        prg.add_stream(acc, key, -sign if negate else sign)


def seed_commitment(qid: bytes, silo_id: str, seed: bytes) -> bytes:
    """commit_i = SHA-256("commit" ‖ qid ‖ lp(id_i) ‖ b_i), binding a silo to its self-mask seed.

    Args:
        qid: The 16-byte query id.
        silo_id: The seed owner's silo id.
        seed: The 16-byte self-mask seed.

    Returns:
        The 32-byte commitment.

    Raises:
        ProtocolError: If ``qid`` or ``seed`` has the wrong length.

    >>> len(seed_commitment(bytes(16), "a", bytes(16)))
    32
    """
    if len(qid) != QID_BYTES or len(seed) != SECRET_BYTES:
        raise ProtocolError("a seed commitment needs a 16-byte query id and a 16-byte seed")
    return hashlib.sha256(b"commit" + qid + str_field(silo_id) + seed).digest()
