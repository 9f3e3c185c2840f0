"""FSA-1 messages as frozen dataclasses: the query descriptor, rounds 1 and 2, and the abort.

Each message validates its own shape on construction (field sizes, sorted cohort, layout) and
raises :class:`fedsql.errors.ProtocolError` on nonsense, so a message that exists is well
formed; the session objects check that it is also *acceptable*. ``canonical()`` is a
deterministic, injective byte encoding of every field except ``signature``, starting with a
label of its own; ``signature`` is the sender's Ed25519 signature over SHA-256(canonical())
(see :mod:`fedsql.secagg.identity`), empty when the sender has no key configured. The
roster lives in :mod:`fedsql.secagg.roster` and is re-exported here.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg.canonical import (
    bytes_field,
    float_field,
    int_field,
    seq_field,
    str_field,
)
from fedsql.secagg.encoding import CoordinateSpec, dimension
from fedsql.secagg.identity import SIGNATURE_BYTES
from fedsql.secagg.keys import DIGEST_BYTES, MASK_KEY_BYTES, QID_BYTES
from fedsql.secagg.roster import Roster, RosterEntry
from fedsql.secagg.shamir import SHARE_BYTES

__all__ = [
    "PROTOCOL_VERSION",
    "Abort",
    "Descriptor",
    "MaskedUpload",
    "Roster",
    "RosterEntry",
    "UnmaskRequest",
    "UnmaskResponse",
    "vector_from_bytes",
    "vector_to_bytes",
]

#: The protocol version this implementation speaks (FSA-1).
PROTOCOL_VERSION = 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ProtocolError(message)


def _freeze(obj: Any, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _pairs(obj: Any, name: str, size: int | None, what: str) -> None:
    """Coerce ``obj.name`` to a tuple of (str, bytes) pairs; check the byte length if given."""
    raw = getattr(obj, name)
    try:
        pairs = tuple((peer, bytes(blob)) for peer, blob in raw)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{what} must be (silo id, bytes) pairs") from exc
    for peer, blob in pairs:
        _require(isinstance(peer, str) and bool(peer), f"{what} names an invalid silo id")
        if size is not None:
            _require(len(blob) == size, f"{what} holds an entry of the wrong length")
    _freeze(obj, name, pairs)


def _pairs_field(pairs: tuple[tuple[str, bytes], ...]) -> bytes:
    return seq_field(str_field(peer) + bytes_field(blob) for peer, blob in pairs)


def _signature(obj: Any, what: str) -> None:
    """Coerce ``obj.signature`` to bytes: empty (unsigned) or one Ed25519 signature."""
    raw = bytes(obj.signature)
    _require(len(raw) in (0, SIGNATURE_BYTES), f"{what}'s signature must be empty or 64 bytes")
    _freeze(obj, "signature", raw)


def _ids(obj: Any, name: str, what: str) -> None:
    raw = getattr(obj, name)
    ids = tuple(raw)
    for sid in ids:
        _require(isinstance(sid, str) and bool(sid), f"{what} holds an invalid silo id")
    _freeze(obj, name, ids)


def vector_to_bytes(y: NDArray[np.uint64]) -> bytes:
    """The wire form of a uint64 vector: 8 bytes little-endian per word.

    Args:
        y: A 1-D uint64 array.

    Returns:
        ``8 * len(y)`` bytes.

    >>> vector_to_bytes(np.array([1, 2**64 - 1], dtype=np.uint64)).hex()
    '0100000000000000ffffffffffffffff'
    """
    return np.ascontiguousarray(y, dtype="<u8").tobytes()


def vector_from_bytes(data: bytes, d: int) -> NDArray[np.uint64]:
    """Parse the wire form of a uint64 vector of length ``d``.

    Args:
        data: ``8 * d`` bytes, little-endian words.
        d: The expected length.

    Returns:
        A fresh, writable uint64 array.

    Raises:
        ProtocolError: If the byte length is not ``8 * d``.

    >>> vector_from_bytes(bytes.fromhex("0500000000000000"), 1).tolist()
    [5]
    """
    if len(data) != 8 * d:
        raise ProtocolError(f"a masked vector must be {8 * d} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


@dataclass(frozen=True)
class Descriptor:
    """The query descriptor Q of message M0; its digest hq binds every per-query key.

    ``encoding`` and ``sigma_loc`` are per measure; the vector is cell-major with
    ``dimension == cells * sum(limbs)`` (:func:`fedsql.secagg.encoding.dimension`).
    ``sigma_loc`` is each silo's noise scale in encoded units. ``cohort`` is the sorted tuple
    of participating silo ids (U). ``signature`` is the coordinator's signature over hq; it is
    not part of hq.
    """

    version: int
    fed_id: str
    roster_version: int
    epoch: int
    qid: bytes
    cohort: tuple[str, ...]
    threshold: int
    n_min: int
    dimension: int
    encoding: tuple[CoordinateSpec, ...]
    cells: int
    sigma_loc: tuple[float, ...]
    rho_charge: str
    epsilon_charge: str
    analyst: str
    plan_hash: str
    sql: str
    params_json: str
    deadline_ms: int
    signature: bytes = b""

    def __post_init__(self) -> None:
        _signature(self, "a descriptor")
        for name in ("version", "roster_version", "epoch", "threshold", "n_min", "deadline_ms"):
            _require(_is_int(getattr(self, name)), f"descriptor field {name} must be an integer")
        for name in ("fed_id", "rho_charge", "epsilon_charge", "analyst", "plan_hash", "sql"):
            _require(isinstance(getattr(self, name), str), f"descriptor field {name} must be text")
        _require(isinstance(self.params_json, str), "descriptor field params_json must be text")
        _freeze(self, "qid", bytes(self.qid))
        _require(len(self.qid) == QID_BYTES, f"a query id must be {QID_BYTES} bytes")
        _ids(self, "cohort", "the cohort")
        _require(
            all(a < b for a, b in zip(self.cohort, self.cohort[1:], strict=False)),
            "the cohort must list distinct silo ids in sorted order",
        )
        _require(len(self.cohort) >= 2, "a cohort needs at least two silos")
        _require(self.threshold >= 1, "the Shamir threshold must be at least 1")
        _require(self.n_min >= 1, "n_min must be at least 1")
        _freeze(self, "encoding", tuple(self.encoding))
        _require(
            all(isinstance(s, CoordinateSpec) for s in self.encoding),
            "the encoding must be a tuple of CoordinateSpec",
        )
        _freeze(self, "sigma_loc", tuple(float(s) for s in self.sigma_loc))
        _require(
            len(self.sigma_loc) == len(self.encoding),
            "the descriptor needs one sigma_loc per measure",
        )
        _require(
            all(math.isfinite(s) and s >= 0 for s in self.sigma_loc),
            "every sigma_loc must be a finite number >= 0",
        )
        _require(_is_int(self.cells), "descriptor field cells must be an integer")
        _require(
            _is_int(self.dimension) and self.dimension == dimension(self.encoding, self.cells),
            "the descriptor's dimension is not cells x coordinates per cell",
        )

    @property
    def survivors_needed(self) -> int:
        """The release floor max(t + 1, n_min).

        Returns:
            The smallest survivor set that may be unmasked.
        """
        return max(self.threshold + 1, self.n_min)

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature.

        Returns:
            The bytes hashed into hq (which the coordinator's signature covers).
        """
        encoding = seq_field(
            float_field(s.bound)
            + int_field(s.frac_bits)
            + float_field(s.sigma_total)
            + int_field(s.limbs)
            for s in self.encoding
        )
        parts = [
            b"fedsql/secagg/v1/descriptor",
            int_field(self.version),
            str_field(self.fed_id),
            int_field(self.roster_version),
            int_field(self.epoch),
            bytes_field(self.qid),
            seq_field(str_field(s) for s in self.cohort),
            int_field(self.threshold),
            int_field(self.n_min),
            int_field(self.dimension),
            encoding,
            int_field(self.cells),
            seq_field(float_field(s) for s in self.sigma_loc),
            str_field(self.rho_charge),
            str_field(self.epsilon_charge),
            str_field(self.analyst),
            str_field(self.plan_hash),
            str_field(self.sql),
            str_field(self.params_json),
            int_field(self.deadline_ms),
        ]
        return b"".join(parts)

    def digest(self) -> bytes:
        """hq = SHA-256(canonical()).

        Returns:
            The 32-byte descriptor digest.
        """
        return hashlib.sha256(self.canonical()).digest()


@dataclass(frozen=True)
class MaskedUpload:
    """Message M1: a silo's masked vector, seed commitment and encrypted seed shares.

    ``y`` is the masked vector as 8d bytes (little-endian uint64); ``shares`` holds one
    (receiver id, 82-byte ciphertext) pair per other cohort member.
    """

    qid: bytes
    silo_id: str
    hq: bytes
    y: bytes
    commit: bytes
    shares: tuple[tuple[str, bytes], ...]
    signature: bytes = b""

    def __post_init__(self) -> None:
        for name, size in (("qid", QID_BYTES), ("hq", DIGEST_BYTES), ("commit", DIGEST_BYTES)):
            _freeze(self, name, bytes(getattr(self, name)))
            _require(len(getattr(self, name)) == size, f"an upload's {name} has the wrong length")
        _require(isinstance(self.silo_id, str) and bool(self.silo_id), "an upload has no silo id")
        _signature(self, "an upload")
        _freeze(self, "y", bytes(self.y))
        _require(len(self.y) % 8 == 0, "an upload's vector is not a whole number of words")
        _pairs(self, "shares", None, "an upload's shares")

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature.

        Returns:
            The bytes a signature over this message will cover.
        """
        return (
            b"fedsql/secagg/v1/upload" + bytes_field(self.qid) + str_field(self.silo_id)
            + bytes_field(self.hq) + bytes_field(self.y) + bytes_field(self.commit)
            + _pairs_field(self.shares)
        )  # fmt: skip


@dataclass(frozen=True)
class UnmaskRequest:
    """Message M2 for one survivor: R2 = (qid, hq, S, D) and the ciphertexts addressed to it.

    ``forwarded`` holds (sender id, ciphertext) for the shares that survivors other than the
    receiver encrypted to it. ``digest()`` covers R2 only, which is the same for every survivor,
    and so does the coordinator's ``signature``; the ciphertexts are authenticated by their AEAD.
    """

    qid: bytes
    hq: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    forwarded: tuple[tuple[str, bytes], ...]
    signature: bytes = b""

    def __post_init__(self) -> None:
        for name, size in (("qid", QID_BYTES), ("hq", DIGEST_BYTES)):
            _freeze(self, name, bytes(getattr(self, name)))
            _require(len(getattr(self, name)) == size, f"a request's {name} has the wrong length")
        _ids(self, "survivors", "the survivor set")
        _ids(self, "dropped", "the dropped set")
        _pairs(self, "forwarded", None, "a request's forwarded ciphertexts")
        _signature(self, "an unmask request")

    def canonical(self) -> bytes:
        """Injective encoding of R2 = (qid, hq, sorted S, sorted D); excludes ``forwarded``.

        Returns:
            The bytes hashed into the request digest.
        """
        return (
            b"fedsql/secagg/v1/unmask-request" + bytes_field(self.qid) + bytes_field(self.hq)
            + seq_field(str_field(s) for s in sorted(self.survivors))
            + seq_field(str_field(s) for s in sorted(self.dropped))
        )  # fmt: skip

    def digest(self) -> bytes:
        """SHA-256(R2), echoed in every response.

        Returns:
            The 32-byte digest.
        """
        return hashlib.sha256(self.canonical()).digest()


@dataclass(frozen=True)
class UnmaskResponse:
    """Message M3: a survivor's shares of other survivors' seeds and its mask keys with D.

    ``extra`` is the survivor's masked extra noise vector (8d bytes, see
    :mod:`fedsql.secagg.extra`) when nobody dropped and the silo still holds its extra part;
    otherwise empty.
    """

    qid: bytes
    silo_id: str
    request_digest: bytes
    seed_shares: tuple[tuple[str, bytes], ...]
    mask_keys: tuple[tuple[str, bytes], ...]
    extra: bytes = b""
    signature: bytes = b""

    def __post_init__(self) -> None:
        for name, size in (("qid", QID_BYTES), ("request_digest", DIGEST_BYTES)):
            _freeze(self, name, bytes(getattr(self, name)))
            _require(len(getattr(self, name)) == size, f"a response's {name} has the wrong length")
        _require(isinstance(self.silo_id, str) and bool(self.silo_id), "a response has no silo id")
        _pairs(self, "seed_shares", SHARE_BYTES, "a response's seed shares")
        _pairs(self, "mask_keys", MASK_KEY_BYTES, "a response's mask keys")
        _freeze(self, "extra", bytes(self.extra))
        _require(len(self.extra) % 8 == 0, "a response's extra vector is not whole words")
        _signature(self, "an unmask response")

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature.

        Returns:
            The bytes a signature over this message will cover.
        """
        return (
            b"fedsql/secagg/v1/unmask-response" + bytes_field(self.qid)
            + str_field(self.silo_id) + bytes_field(self.request_digest)
            + _pairs_field(self.seed_shares) + _pairs_field(self.mask_keys)
            + bytes_field(self.extra)
        )  # fmt: skip


@dataclass(frozen=True)
class Abort:
    """The coordinator's notice that query ``qid`` is abandoned; silos close the qid for good."""

    qid: bytes
    reason: str
    signature: bytes = b""

    def __post_init__(self) -> None:
        _freeze(self, "qid", bytes(self.qid))
        _require(len(self.qid) == QID_BYTES, "an abort's qid has the wrong length")
        _require(isinstance(self.reason, str), "an abort's reason must be text")
        _signature(self, "an abort")

    def canonical(self) -> bytes:
        """Injective encoding of every field but the signature.

        Returns:
            The bytes a signature over this message covers.
        """
        return b"fedsql/secagg/v1/abort" + bytes_field(self.qid) + str_field(self.reason)
