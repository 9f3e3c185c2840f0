"""Light shape checks of transport messages: fixed byte lengths, silo ids, noise parameters.

Every conversion in :mod:`fedsql.transport.codec` runs :func:`validate`, so a malformed message is
refused at the receiving edge and a bug is caught at the sender. The checks stop at shape: what a
message *means* (is this silo in the cohort, does this digest match) is for :mod:`fedsql.secagg`,
the hub and the silo to judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fedsql.errors import ProtocolError
from fedsql.transport.messages import (
    Abort,
    Accepted,
    BudgetQuery,
    BudgetReply,
    BudgetReport,
    BudgetRequest,
    CatalogReply,
    CatalogRequest,
    EpochKeyInfo,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Heartbeat,
    Held,
    Hello,
    MaskedUpload,
    Message,
    QueryRequest,
    Refusal,
    SiloBytes,
    StatusReply,
    StatusRequest,
    UnmaskRequest,
    UnmaskResponse,
    Welcome,
)

__all__ = [
    "DIGEST_BYTES",
    "MASK_KEY_BYTES",
    "QID_BYTES",
    "SIGNATURE_BYTES",
    "WORD_BYTES",
    "X25519_PUBLIC_BYTES",
    "validate",
]

#: Length of a query id.
QID_BYTES = 16
#: Length of a SHA-256 digest (hq, commit, request_digest).
DIGEST_BYTES = 32
#: Length of a raw X25519 public key.
X25519_PUBLIC_BYTES = 32
#: Length of a pairwise mask key.
MASK_KEY_BYTES = 16
#: Length of an Ed25519 signature (an empty signature is allowed until signing is enabled).
SIGNATURE_BYTES = 64
#: Width of one coordinate of a masked vector.
WORD_BYTES = 8


# -- shape checks -----------------------------------------------------------------------------


def _fail(where: str, problem: str) -> ProtocolError:
    return ProtocolError(f"malformed {where}: {problem}")


def _fixed(where: str, field: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise _fail(where, f"{field} must be {size} bytes, not {len(value)}")


def _signature(where: str, value: bytes) -> None:
    if len(value) not in (0, SIGNATURE_BYTES):
        raise _fail(where, f"signature must be empty or {SIGNATURE_BYTES} bytes, not {len(value)}")


def _ids(where: str, field: str, ids: Iterable[str], *, allow_empty: bool = True) -> None:
    seen: set[str] = set()
    for silo_id in ids:
        if not silo_id:
            raise _fail(where, f"{field} holds an empty silo id")
        if silo_id in seen:
            raise _fail(where, f"{field} names silo {silo_id} twice")
        seen.add(silo_id)
    if not seen and not allow_empty:
        raise _fail(where, f"{field} is empty")


def _silo_id(where: str, value: str) -> None:
    if not value:
        raise _fail(where, "silo_id is empty")


def _pairs(where: str, field: str, pairs: Sequence[SiloBytes], size: int | None = None) -> None:
    _ids(where, field, (silo_id for silo_id, _ in pairs))
    if size is not None:
        for silo_id, data in pairs:
            if len(data) != size:
                problem = f"{field} for silo {silo_id} must be {size} bytes, not {len(data)}"
                raise _fail(where, problem)


def _non_negative(where: str, field: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise _fail(where, f"{field} must be a finite number >= 0")


def _check_hello(m: Hello) -> None:
    _silo_id("Hello", m.silo_id)
    _fixed("Hello", "x25519_public", m.x25519_public, X25519_PUBLIC_BYTES)
    tables = [table for table, _ in m.shared]
    if any(not table for table in tables) or len(set(tables)) != len(tables):
        raise _fail("Hello", "shared must name each table once, by a non-empty name")
    if m.epoch_key is not None:
        _check_epoch_key("Hello", m.epoch_key)
        if m.epoch_key.silo_id != m.silo_id:
            raise _fail("Hello", "the epoch key must be the silo's own")


def _check_epoch_key(where: str, key: EpochKeyInfo) -> None:
    _silo_id(where, key.silo_id)
    _fixed(where, f"epoch key of {key.silo_id}", key.x25519_public, X25519_PUBLIC_BYTES)
    _signature(where, key.signature)


def _check_masked_upload(m: MaskedUpload) -> None:
    _fixed("MaskedUpload", "qid", m.qid, QID_BYTES)
    _silo_id("MaskedUpload", m.silo_id)
    _fixed("MaskedUpload", "hq", m.hq, DIGEST_BYTES)
    if not m.y or len(m.y) % WORD_BYTES:
        raise _fail("MaskedUpload", f"y must be a non-empty multiple of {WORD_BYTES} bytes")
    _fixed("MaskedUpload", "commit", m.commit, DIGEST_BYTES)
    _pairs("MaskedUpload", "shares", m.shares)
    _signature("MaskedUpload", m.signature)


def _check_unmask_response(m: UnmaskResponse) -> None:
    _fixed("UnmaskResponse", "qid", m.qid, QID_BYTES)
    _silo_id("UnmaskResponse", m.silo_id)
    _fixed("UnmaskResponse", "request_digest", m.request_digest, DIGEST_BYTES)
    _pairs("UnmaskResponse", "seed_shares", m.seed_shares)
    _pairs("UnmaskResponse", "mask_keys", m.mask_keys, MASK_KEY_BYTES)
    if len(m.extra) % WORD_BYTES:
        raise _fail("UnmaskResponse", f"extra must be a multiple of {WORD_BYTES} bytes")
    _signature("UnmaskResponse", m.signature)


def _check_refusal(m: Refusal) -> None:
    _fixed("Refusal", "qid", m.qid, QID_BYTES)
    _silo_id("Refusal", m.silo_id)


def _check_accepted(m: Accepted) -> None:
    _fixed("Accepted", "qid", m.qid, QID_BYTES)
    _silo_id("Accepted", m.silo_id)


def _check_held(m: Held) -> None:
    _fixed("Held", "qid", m.qid, QID_BYTES)
    _silo_id("Held", m.silo_id)


def _check_budget_report(m: BudgetReport) -> None:
    _fixed("BudgetReport", "request_id", m.request_id, QID_BYTES)
    _silo_id("BudgetReport", m.silo_id)


def _check_budget_query(m: BudgetQuery) -> None:
    _fixed("BudgetQuery", "request_id", m.request_id, QID_BYTES)


def _check_heartbeat(m: Heartbeat) -> None:
    _silo_id("Heartbeat", m.silo_id)


def _check_welcome(m: Welcome) -> None:
    _ids("Welcome", "roster", (e.silo_id for e in m.roster))
    indices = [e.index for e in m.roster]
    if any(i < 1 for i in indices) or len(set(indices)) != len(indices):
        raise _fail("Welcome", "roster indices must be distinct and >= 1")
    for entry in m.roster:
        _fixed(
            "Welcome", f"x25519_public of {entry.silo_id}", entry.x25519_public, X25519_PUBLIC_BYTES
        )
        if entry.ed25519_public:
            _fixed("Welcome", f"ed25519_public of {entry.silo_id}", entry.ed25519_public, 32)
    if m.coordinator_public:
        _fixed("Welcome", "coordinator_public", m.coordinator_public, 32)
    _signature("Welcome", m.roster_signature)
    _ids("Welcome", "epoch_keys", (k.silo_id for k in m.epoch_keys))
    for key in m.epoch_keys:
        _check_epoch_key("Welcome", key)
    for analyst in m.analysts:
        _fixed("Welcome", f"ed25519_public of analyst {analyst.name}", analyst.ed25519_public, 32)


def _check_execute_request(m: ExecuteRequest) -> None:
    _signature("ExecuteRequest", m.signature)
    if m.nonce:
        _fixed("ExecuteRequest", "nonce", m.nonce, QID_BYTES)


def _check_query_request(m: QueryRequest) -> None:
    _fixed("QueryRequest", "qid", m.qid, QID_BYTES)
    _ids("QueryRequest", "cohort", m.cohort, allow_empty=False)
    for j, entry in enumerate(m.encoding):
        _non_negative("QueryRequest", f"encoding[{j}].bound", entry.bound)
        _non_negative("QueryRequest", f"encoding[{j}].sigma_total", entry.sigma_total)
        if entry.limbs < 1:
            raise _fail("QueryRequest", f"encoding[{j}].limbs must be at least 1")
    for j, sigma in enumerate(m.sigma_loc):
        _non_negative("QueryRequest", f"sigma_loc[{j}]", sigma)
    if len(m.sigma_loc) != len(m.encoding):
        raise _fail("QueryRequest", "sigma_loc and encoding must have one entry per measure each")
    _signature("QueryRequest", m.signature)
    _signature("QueryRequest", m.analyst_signature)
    if m.analyst_nonce:
        _fixed("QueryRequest", "analyst_nonce", m.analyst_nonce, QID_BYTES)


def _check_unmask_request(m: UnmaskRequest) -> None:
    _fixed("UnmaskRequest", "qid", m.qid, QID_BYTES)
    _fixed("UnmaskRequest", "hq", m.hq, DIGEST_BYTES)
    _ids("UnmaskRequest", "survivors", m.survivors, allow_empty=False)
    _ids("UnmaskRequest", "dropped", m.dropped)
    _pairs("UnmaskRequest", "forwarded", m.forwarded)
    _signature("UnmaskRequest", m.signature)


def _check_abort(m: Abort) -> None:
    _fixed("Abort", "qid", m.qid, QID_BYTES)
    _signature("Abort", m.signature)


def _check_execute_progress(m: ExecuteProgress) -> None:
    _ids("ExecuteProgress", "silos", (s.silo_id for s in m.silos))


def _names(where: str, field: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if not name:
            raise _fail(where, f"{field} holds an empty name")
        if name in seen:
            raise _fail(where, f"{field} names {name} twice")
        seen.add(name)


def _check_catalog_reply(m: CatalogReply) -> None:
    _names("CatalogReply", "tables", (t.name for t in m.tables))
    for table in m.tables:
        _names("CatalogReply", f"columns of {table.name}", (c.name for c in table.columns))


def _check_nothing(m: Any) -> None:
    del m


_CHECKS: dict[type[Any], Callable[[Any], None]] = {
    Hello: _check_hello,
    MaskedUpload: _check_masked_upload,
    UnmaskResponse: _check_unmask_response,
    Refusal: _check_refusal,
    Accepted: _check_accepted,
    Held: _check_held,
    BudgetReport: _check_budget_report,
    BudgetQuery: _check_budget_query,
    BudgetRequest: _check_nothing,
    BudgetReply: _check_nothing,
    Heartbeat: _check_heartbeat,
    Welcome: _check_welcome,
    QueryRequest: _check_query_request,
    UnmaskRequest: _check_unmask_request,
    Abort: _check_abort,
    ExecuteRequest: _check_execute_request,
    ExecuteReply: _check_nothing,
    StatusRequest: _check_nothing,
    StatusReply: _check_nothing,
    ExecuteProgress: _check_execute_progress,
    CatalogRequest: _check_nothing,
    CatalogReply: _check_catalog_reply,
}


def validate(msg: Message) -> None:
    """Check the shape of one message (the checks both conversions run).

    Args:
        msg: Any transport message.

    Raises:
        ProtocolError: A field has the wrong length, an id is empty or repeated, or a noise
            parameter is not a finite non-negative number.

    >>> validate(Heartbeat(silo_id="a", at_ms=0))
    >>> validate(Heartbeat(silo_id="", at_ms=0))
    Traceback (most recent call last):
    ...
    fedsql.errors.ProtocolError: malformed Heartbeat: silo_id is empty
    """
    check = _CHECKS.get(type(msg))
    if check is None:
        raise ProtocolError(f"{type(msg).__name__} is not a transport message")
    check(msg)
