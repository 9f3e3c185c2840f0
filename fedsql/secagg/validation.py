"""The acceptance rules of FSA-1 that do not depend on session state: roster, descriptor, input.

Both sessions run :func:`check_descriptor`; the silo also runs :func:`check_own_entry` on every
roster, :func:`check_split` on every unmask request and :func:`check_input` on the vector it is
asked to mask (SECAGG.md section 7).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import DataError, ProtocolError
from fedsql.secagg.encoding import (
    OVERFLOW_SIGMAS,
    check_plan,
    coordinate_bands,
    coordinate_name,
)
from fedsql.secagg.messages import PROTOCOL_VERSION, Descriptor
from fedsql.secagg.roster import Roster

__all__ = ["check_descriptor", "check_input", "check_own_entry", "check_split"]


def check_own_entry(
    roster: Roster,
    silo_id: str,
    x25519_public: bytes,
    identity_public: bytes | None,
    epoch_signer_public: bytes | None,
) -> None:
    """Check that a roster lists this silo with this silo's own keys (no substitution).

    Args:
        roster: The roster received.
        silo_id: This silo's id.
        x25519_public: This silo's long-term X25519 public key.
        identity_public: This silo's Ed25519 identity key, if it has one.
        epoch_signer_public: The key that signs this silo's epoch keys, if it uses them.

    Raises:
        ProtocolError: If the silo is not enrolled, or the roster lists a different X25519
            key, a different Ed25519 key, or an Ed25519 key that does not sign its epoch keys.
    """
    entry = roster.entry(silo_id)
    if entry.x25519_public != x25519_public:
        raise ProtocolError(
            f"roster version {roster.version} lists a different X25519 key for silo "
            f"{silo_id}; refusing to take part with a substituted key"
        )
    if not entry.ed25519_public:
        return
    if identity_public is not None and entry.ed25519_public != identity_public:
        raise ProtocolError(
            f"roster version {roster.version} lists a different Ed25519 key for silo "
            f"{silo_id}; refusing to take part with a substituted key"
        )
    if epoch_signer_public is not None and entry.ed25519_public != epoch_signer_public:
        raise ProtocolError(
            f"the epoch keys of silo {silo_id} are signed by a key that roster version "
            f"{roster.version} does not list"
        )


def check_descriptor(desc: Descriptor, roster: Roster, c_max: int) -> None:
    """The descriptor checks both parties make (SECAGG.md sections 2 and 7).

    Args:
        desc: The query descriptor.
        roster: The pinned roster.
        c_max: The largest number of silos assumed to collude with the coordinator.

    Raises:
        ProtocolError: If the version, federation, roster version, cohort, threshold or
            n_min is unacceptable; the message says which.
        QueryRejected: If an encoded measure could overflow 2^62 summed over the cohort.
    """
    if desc.version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"descriptor version {desc.version} is not supported (this silo speaks "
            f"version {PROTOCOL_VERSION})"
        )
    if desc.fed_id != roster.fed_id:
        raise ProtocolError(f"the descriptor is for federation {desc.fed_id}, not {roster.fed_id}")
    if desc.roster_version != roster.version:
        raise ProtocolError(
            f"the descriptor uses roster version {desc.roster_version} but version "
            f"{roster.version} is pinned; refresh the roster"
        )
    for sid in desc.cohort:
        if roster.get(sid) is None:
            raise ProtocolError(f"cohort member {sid} is not in roster version {roster.version}")
    n = len(desc.cohort)
    floor = max(2, c_max + 2)
    if desc.n_min < floor:
        raise ProtocolError(f"n_min = {desc.n_min} is below max(2, c_max + 2) = {floor}")
    if n < desc.n_min:
        raise ProtocolError(f"the cohort has {n} silos, fewer than n_min = {desc.n_min}")
    if not c_max + 1 <= desc.threshold <= n - 1:
        raise ProtocolError(
            f"threshold t = {desc.threshold} is outside [c_max + 1, n - 1] = [{c_max + 1}, {n - 1}]"
        )
    check_plan(desc.encoding, n)


def check_split(
    desc: Descriptor, silo_id: str, survivors: tuple[str, ...], dropped: tuple[str, ...]
) -> tuple[set[str], set[str]]:
    """Check an unmask request's survivor and dropped sets from one survivor's point of view.

    Args:
        desc: The descriptor the silo uploaded for.
        silo_id: The silo answering.
        survivors: S as listed in the request.
        dropped: D as listed in the request.

    Returns:
        S and D as sets.

    Raises:
        ProtocolError: If a silo is listed twice, S and D overlap or do not make up the
            cohort, ``silo_id`` is not in S, or S is below max(t + 1, n_min).
    """
    s_set, d_set = set(survivors), set(dropped)
    if len(s_set) != len(survivors) or len(d_set) != len(dropped):
        raise ProtocolError("the unmask request lists a silo twice")
    if s_set & d_set:
        raise ProtocolError("the unmask request puts a silo both in S and in D")
    if s_set | d_set != set(desc.cohort):
        raise ProtocolError("the unmask request's S and D do not make up the cohort")
    if silo_id not in s_set:
        raise ProtocolError(f"silo {silo_id} is not in the request's survivor set")
    if len(s_set) < desc.survivors_needed:
        raise ProtocolError(
            f"the survivor set has {len(s_set)} silos, below max(t + 1, n_min) = "
            f"{desc.survivors_needed}"
        )
    return s_set, d_set


def check_input(desc: Descriptor, x: NDArray[np.int64]) -> NDArray[np.uint64]:
    """Check an encoded, noised vector against the descriptor; return a uint64 copy to mask.

    Args:
        desc: The query descriptor.
        x: The encoded vector with the noise share added.

    Returns:
        A fresh uint64 view-copy of ``x`` (two's complement).

    Raises:
        DataError: If ``x`` is not a 1-D int64 array of length ``desc.dimension``, or a
            coordinate lies outside its one-silo band (its bound plus 8 noise standard
            deviations; see :func:`fedsql.secagg.encoding.limb_bands` for limbs).
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.int64 or x.ndim != 1:
        raise DataError("the encoded vector must be a 1-D int64 numpy array")
    if x.shape[0] != desc.dimension:
        raise DataError(
            f"the encoded vector has length {x.shape[0]}, the query needs {desc.dimension}"
        )
    limits = coordinate_bands(desc.encoding, 1, desc.sigma_loc, OVERFLOW_SIGMAS)
    mat = x.reshape(desc.cells, limits.shape[0])
    outside = (mat > limits) | (mat < -limits)
    if outside.any():
        j = int(np.flatnonzero(outside.ravel())[0])
        raise DataError(
            f"{coordinate_name(j, desc.encoding)} of the encoded vector is outside its bound "
            "plus noise allowance; refusing to upload"
        )
    return np.ascontiguousarray(x).view(np.uint64).copy()
