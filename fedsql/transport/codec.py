"""Exact mapping between the transport dataclasses and their protobuf messages.

:func:`to_proto` and :func:`from_proto` convert one message; :func:`to_bytes` and
:func:`from_bytes` go on to wire bytes. Both directions run
:func:`fedsql.transport.shapes.validate`, so nonsense raises :class:`fedsql.errors.ProtocolError`
instead of crossing the wire. The stream envelopes live in :mod:`fedsql.transport.envelope`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from fedsql.errors import ProtocolError
from fedsql.transport.messages import (
    Abort,
    Accepted,
    AnalystEntry,
    BudgetQuery,
    BudgetReply,
    BudgetReport,
    BudgetRequest,
    CatalogColumn,
    CatalogReply,
    CatalogRequest,
    CatalogTable,
    ClinicBudget,
    ConnectedSilo,
    EncodingEntry,
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
    RosterEntry,
    SiloBytes,
    SiloStatus,
    StatusReply,
    StatusRequest,
    UnmaskRequest,
    UnmaskResponse,
    Welcome,
)
from fedsql.transport.proto import fedsql_pb2 as pb
from fedsql.transport.shapes import validate

__all__ = ["from_bytes", "from_proto", "parse", "to_bytes", "to_proto"]

M = TypeVar("M", bound=Message)
P = TypeVar("P", bound=ProtoMessage)


# -- dataclass -> protobuf --------------------------------------------------------------------


def _pb_pairs(pairs: Iterable[SiloBytes]) -> list[pb.SiloBytes]:
    return [pb.SiloBytes(silo_id=silo_id, data=data) for silo_id, data in pairs]


def _hello_pb(m: Hello) -> pb.Hello:
    return pb.Hello(
        silo_id=m.silo_id,
        name=m.name,
        version=m.version,
        contract_fingerprint=m.contract_fingerprint,
        x25519_public=m.x25519_public,
        min_group_size=m.min_group_size,
        max_epsilon_per_query=m.max_epsilon_per_query,
        shared=[pb.SharedTable(table=t, columns=list(cols)) for t, cols in m.shared],
        test_mode=m.test_mode,
        epoch_key=None if m.epoch_key is None else _epoch_key_pb(m.epoch_key),
        allow_per_clinic=m.allow_per_clinic,
    )


def _epoch_key_pb(m: EpochKeyInfo) -> pb.EpochKey:
    return pb.EpochKey(
        fed_id=m.fed_id,
        silo_id=m.silo_id,
        epoch=m.epoch,
        x25519_public=m.x25519_public,
        signature=m.signature,
    )


def _epoch_key(p: pb.EpochKey) -> EpochKeyInfo:
    return EpochKeyInfo(
        fed_id=p.fed_id,
        silo_id=p.silo_id,
        epoch=p.epoch,
        x25519_public=p.x25519_public,
        signature=p.signature,
    )


def _masked_upload_pb(m: MaskedUpload) -> pb.MaskedUpload:
    return pb.MaskedUpload(
        qid=m.qid,
        silo_id=m.silo_id,
        hq=m.hq,
        y=m.y,
        commit=m.commit,
        shares=_pb_pairs(m.shares),
        signature=m.signature,
    )


def _unmask_response_pb(m: UnmaskResponse) -> pb.UnmaskResponse:
    return pb.UnmaskResponse(
        qid=m.qid,
        silo_id=m.silo_id,
        request_digest=m.request_digest,
        seed_shares=_pb_pairs(m.seed_shares),
        mask_keys=_pb_pairs(m.mask_keys),
        signature=m.signature,
        extra=m.extra,
    )


def _refusal_pb(m: Refusal) -> pb.Refusal:
    return pb.Refusal(
        qid=m.qid,
        silo_id=m.silo_id,
        code=m.code,
        reason=m.reason,
        budget_remaining=m.budget_remaining,
    )


def _held_pb(m: Held) -> pb.Held:
    return pb.Held(qid=m.qid, silo_id=m.silo_id, reason=m.reason)


def _accepted_pb(m: Accepted) -> pb.Accepted:
    return pb.Accepted(qid=m.qid, silo_id=m.silo_id, budget_remaining=m.budget_remaining)


def _heartbeat_pb(m: Heartbeat) -> pb.Heartbeat:
    return pb.Heartbeat(silo_id=m.silo_id, at_ms=m.at_ms)


def _welcome_pb(m: Welcome) -> pb.Welcome:
    return pb.Welcome(
        fed_id=m.fed_id,
        roster_version=m.roster_version,
        epoch=m.epoch,
        roster=[
            pb.RosterEntry(
                silo_id=e.silo_id,
                index=e.index,
                x25519_public=e.x25519_public,
                ed25519_public=e.ed25519_public,
            )
            for e in m.roster
        ],
        hub_version=m.hub_version,
        contract_hash=m.contract_hash,
        coordinator_public=m.coordinator_public,
        roster_signature=m.roster_signature,
        epoch_keys=[_epoch_key_pb(k) for k in m.epoch_keys],
        analysts=[
            pb.AnalystEntry(name=a.name, ed25519_public=a.ed25519_public) for a in m.analysts
        ],
    )


def _query_request_pb(m: QueryRequest) -> pb.QueryRequest:
    return pb.QueryRequest(
        version=m.version,
        fed_id=m.fed_id,
        roster_version=m.roster_version,
        epoch=m.epoch,
        qid=m.qid,
        cohort=list(m.cohort),
        threshold=m.threshold,
        n_min=m.n_min,
        dimension=m.dimension,
        cells=m.cells,
        encoding=[
            pb.EncodingEntry(
                bound=e.bound, frac_bits=e.frac_bits, sigma_total=e.sigma_total, limbs=e.limbs
            )
            for e in m.encoding
        ],
        sigma_loc=list(m.sigma_loc),
        rho_charge=m.rho_charge,
        epsilon_charge=m.epsilon_charge,
        analyst=m.analyst,
        plan_hash=m.plan_hash,
        sql=m.sql,
        params_json=m.params_json,
        deadline_ms=m.deadline_ms,
        signature=m.signature,
        analyst_nonce=m.analyst_nonce,
        analyst_issued_ms=m.analyst_issued_ms,
        analyst_epsilon=m.analyst_epsilon,
        analyst_signature=m.analyst_signature,
        analyst_sql=m.analyst_sql,
        analyst_round=m.analyst_round,
    )


def _unmask_request_pb(m: UnmaskRequest) -> pb.UnmaskRequest:
    return pb.UnmaskRequest(
        qid=m.qid,
        hq=m.hq,
        survivors=list(m.survivors),
        dropped=list(m.dropped),
        forwarded=_pb_pairs(m.forwarded),
        signature=m.signature,
    )


def _abort_pb(m: Abort) -> pb.Abort:
    return pb.Abort(qid=m.qid, reason=m.reason, signature=m.signature)


def _execute_request_pb(m: ExecuteRequest) -> pb.ExecuteRequest:
    return pb.ExecuteRequest(
        sql=m.sql,
        params_json=m.params_json,
        epsilon=m.epsilon,
        analyst=m.analyst,
        explain_only=m.explain_only,
        nonce=m.nonce,
        issued_ms=m.issued_ms,
        signature=m.signature,
    )


def _execute_reply_pb(m: ExecuteReply) -> pb.ExecuteReply:
    return pb.ExecuteReply(
        result_ipc=m.result_ipc,
        stats_ipc=m.stats_ipc,
        report_json=m.report_json,
        explain=list(m.explain),
        epsilon_spent=m.epsilon_spent,
        silos=_silo_statuses_pb(m.silos),
    )


def _silo_statuses_pb(silos: Iterable[SiloStatus]) -> list[pb.SiloStatus]:
    return [
        pb.SiloStatus(
            silo_id=s.silo_id,
            status=s.status,
            reason=s.reason,
            budget_remaining=s.budget_remaining,
        )
        for s in silos
    ]


def _execute_progress_pb(m: ExecuteProgress) -> pb.ExecuteProgress:
    return pb.ExecuteProgress(silos=_silo_statuses_pb(m.silos))


def _catalog_request_pb(m: CatalogRequest) -> pb.CatalogRequest:
    del m
    return pb.CatalogRequest()


def _catalog_reply_pb(m: CatalogReply) -> pb.CatalogReply:
    return pb.CatalogReply(
        fed_id=m.fed_id,
        description=m.description,
        tables=[
            pb.CatalogTable(
                name=t.name,
                description=t.description,
                columns=[
                    pb.CatalogColumn(
                        name=c.name,
                        type=c.type,
                        description=c.description,
                        groupable=c.groupable,
                        aggregable=c.aggregable,
                    )
                    for c in t.columns
                ],
            )
            for t in m.tables
        ],
    )


def _status_request_pb(m: StatusRequest) -> pb.StatusRequest:
    del m
    return pb.StatusRequest()


def _status_reply_pb(m: StatusReply) -> pb.StatusReply:
    return pb.StatusReply(
        silos=[
            pb.ConnectedSilo(
                silo_id=s.silo_id,
                name=s.name,
                version=s.version,
                connected_since_ms=s.connected_since_ms,
                last_seen_ms=s.last_seen_ms,
            )
            for s in m.silos
        ],
        fed_id=m.fed_id,
    )


def _budget_report_pb(m: BudgetReport) -> pb.BudgetReport:
    return pb.BudgetReport(
        request_id=m.request_id,
        silo_id=m.silo_id,
        analyst=m.analyst,
        spent=m.spent,
        budget=m.budget,
        left=m.left,
        queries=m.queries,
    )


def _budget_query_pb(m: BudgetQuery) -> pb.BudgetQuery:
    return pb.BudgetQuery(request_id=m.request_id, analyst=m.analyst)


def _budget_request_pb(m: BudgetRequest) -> pb.BudgetRequest:
    return pb.BudgetRequest(analyst=m.analyst)


def _budget_reply_pb(m: BudgetReply) -> pb.BudgetReply:
    return pb.BudgetReply(
        fed_id=m.fed_id,
        analyst=m.analyst,
        clinics=[
            pb.ClinicBudget(
                silo_id=c.silo_id,
                reported=c.reported,
                spent=c.spent,
                budget=c.budget,
                left=c.left,
                queries=c.queries,
            )
            for c in m.clinics
        ],
    )


_TO_PROTO: dict[type[Any], Callable[[Any], ProtoMessage]] = {
    Hello: _hello_pb,
    MaskedUpload: _masked_upload_pb,
    UnmaskResponse: _unmask_response_pb,
    Refusal: _refusal_pb,
    Accepted: _accepted_pb,
    Held: _held_pb,
    Heartbeat: _heartbeat_pb,
    Welcome: _welcome_pb,
    QueryRequest: _query_request_pb,
    UnmaskRequest: _unmask_request_pb,
    Abort: _abort_pb,
    ExecuteRequest: _execute_request_pb,
    ExecuteReply: _execute_reply_pb,
    StatusRequest: _status_request_pb,
    StatusReply: _status_reply_pb,
    ExecuteProgress: _execute_progress_pb,
    CatalogRequest: _catalog_request_pb,
    CatalogReply: _catalog_reply_pb,
    BudgetReport: _budget_report_pb,
    BudgetQuery: _budget_query_pb,
    BudgetRequest: _budget_request_pb,
    BudgetReply: _budget_reply_pb,
}


def to_proto(msg: Message) -> ProtoMessage:
    """Convert one transport dataclass to its protobuf message.

    Args:
        msg: Any transport message.

    Returns:
        The protobuf message of the same name in package ``fedsql.v1``.

    Raises:
        ProtocolError: The message is malformed (see :func:`~fedsql.transport.shapes.validate`),
            or a field does not fit its wire type (a negative or too large integer, say).
    """
    validate(msg)
    try:
        return _TO_PROTO[type(msg)](msg)
    except (TypeError, ValueError) as exc:
        # The library's text may quote the offending value; keep it out of the message.
        raise ProtocolError(
            f"cannot encode {type(msg).__name__}: a field does not fit its wire type"
        ) from exc


# -- protobuf -> dataclass --------------------------------------------------------------------


def _pairs_of(items: Iterable[pb.SiloBytes]) -> tuple[SiloBytes, ...]:
    return tuple((item.silo_id, item.data) for item in items)


def _hello(p: pb.Hello) -> Hello:
    return Hello(
        silo_id=p.silo_id,
        name=p.name,
        version=p.version,
        contract_fingerprint=p.contract_fingerprint,
        x25519_public=p.x25519_public,
        min_group_size=p.min_group_size,
        max_epsilon_per_query=p.max_epsilon_per_query,
        shared=tuple((s.table, tuple(s.columns)) for s in p.shared),
        test_mode=p.test_mode,
        epoch_key=_epoch_key(p.epoch_key) if p.HasField("epoch_key") else None,
        allow_per_clinic=p.allow_per_clinic,
    )


def _masked_upload(p: pb.MaskedUpload) -> MaskedUpload:
    return MaskedUpload(
        qid=p.qid,
        silo_id=p.silo_id,
        hq=p.hq,
        y=p.y,
        commit=p.commit,
        shares=_pairs_of(p.shares),
        signature=p.signature,
    )


def _unmask_response(p: pb.UnmaskResponse) -> UnmaskResponse:
    return UnmaskResponse(
        qid=p.qid,
        silo_id=p.silo_id,
        request_digest=p.request_digest,
        seed_shares=_pairs_of(p.seed_shares),
        mask_keys=_pairs_of(p.mask_keys),
        signature=p.signature,
        extra=p.extra,
    )


def _refusal(p: pb.Refusal) -> Refusal:
    return Refusal(
        qid=p.qid,
        silo_id=p.silo_id,
        code=p.code,
        reason=p.reason,
        budget_remaining=p.budget_remaining,
    )


def _held(p: pb.Held) -> Held:
    return Held(qid=p.qid, silo_id=p.silo_id, reason=p.reason)


def _accepted(p: pb.Accepted) -> Accepted:
    return Accepted(qid=p.qid, silo_id=p.silo_id, budget_remaining=p.budget_remaining)


def _heartbeat(p: pb.Heartbeat) -> Heartbeat:
    return Heartbeat(silo_id=p.silo_id, at_ms=p.at_ms)


def _welcome(p: pb.Welcome) -> Welcome:
    return Welcome(
        fed_id=p.fed_id,
        roster_version=p.roster_version,
        epoch=p.epoch,
        roster=tuple(
            RosterEntry(
                silo_id=e.silo_id,
                index=e.index,
                x25519_public=e.x25519_public,
                ed25519_public=e.ed25519_public,
            )
            for e in p.roster
        ),
        hub_version=p.hub_version,
        contract_hash=p.contract_hash,
        coordinator_public=p.coordinator_public,
        roster_signature=p.roster_signature,
        epoch_keys=tuple(_epoch_key(k) for k in p.epoch_keys),
        analysts=tuple(
            AnalystEntry(name=a.name, ed25519_public=a.ed25519_public) for a in p.analysts
        ),
    )


def _query_request(p: pb.QueryRequest) -> QueryRequest:
    return QueryRequest(
        version=p.version,
        fed_id=p.fed_id,
        roster_version=p.roster_version,
        epoch=p.epoch,
        qid=p.qid,
        cohort=tuple(p.cohort),
        threshold=p.threshold,
        n_min=p.n_min,
        dimension=p.dimension,
        cells=p.cells,
        encoding=tuple(
            EncodingEntry(
                bound=e.bound, frac_bits=e.frac_bits, sigma_total=e.sigma_total, limbs=e.limbs
            )
            for e in p.encoding
        ),
        sigma_loc=tuple(p.sigma_loc),
        rho_charge=p.rho_charge,
        epsilon_charge=p.epsilon_charge,
        analyst=p.analyst,
        plan_hash=p.plan_hash,
        sql=p.sql,
        params_json=p.params_json,
        deadline_ms=p.deadline_ms,
        signature=p.signature,
        analyst_nonce=p.analyst_nonce,
        analyst_issued_ms=p.analyst_issued_ms,
        analyst_epsilon=p.analyst_epsilon,
        analyst_signature=p.analyst_signature,
        analyst_sql=p.analyst_sql,
        analyst_round=p.analyst_round,
    )


def _unmask_request(p: pb.UnmaskRequest) -> UnmaskRequest:
    return UnmaskRequest(
        qid=p.qid,
        hq=p.hq,
        survivors=tuple(p.survivors),
        dropped=tuple(p.dropped),
        forwarded=_pairs_of(p.forwarded),
        signature=p.signature,
    )


def _abort(p: pb.Abort) -> Abort:
    return Abort(qid=p.qid, reason=p.reason, signature=p.signature)


def _execute_request(p: pb.ExecuteRequest) -> ExecuteRequest:
    return ExecuteRequest(
        sql=p.sql,
        params_json=p.params_json,
        epsilon=p.epsilon,
        analyst=p.analyst,
        explain_only=p.explain_only,
        nonce=p.nonce,
        issued_ms=p.issued_ms,
        signature=p.signature,
    )


def _execute_reply(p: pb.ExecuteReply) -> ExecuteReply:
    return ExecuteReply(
        result_ipc=p.result_ipc,
        stats_ipc=p.stats_ipc,
        report_json=p.report_json,
        explain=tuple(p.explain),
        epsilon_spent=p.epsilon_spent,
        silos=_silo_statuses(p.silos),
    )


def _silo_statuses(items: Iterable[pb.SiloStatus]) -> tuple[SiloStatus, ...]:
    return tuple(
        SiloStatus(
            silo_id=s.silo_id,
            status=s.status,
            reason=s.reason,
            budget_remaining=s.budget_remaining,
        )
        for s in items
    )


def _execute_progress(p: pb.ExecuteProgress) -> ExecuteProgress:
    return ExecuteProgress(silos=_silo_statuses(p.silos))


def _catalog_request(p: pb.CatalogRequest) -> CatalogRequest:
    del p
    return CatalogRequest()


def _catalog_reply(p: pb.CatalogReply) -> CatalogReply:
    return CatalogReply(
        fed_id=p.fed_id,
        description=p.description,
        tables=tuple(
            CatalogTable(
                name=t.name,
                description=t.description,
                columns=tuple(
                    CatalogColumn(
                        name=c.name,
                        type=c.type,
                        description=c.description,
                        groupable=c.groupable,
                        aggregable=c.aggregable,
                    )
                    for c in t.columns
                ),
            )
            for t in p.tables
        ),
    )


def _status_request(p: pb.StatusRequest) -> StatusRequest:
    del p
    return StatusRequest()


def _status_reply(p: pb.StatusReply) -> StatusReply:
    return StatusReply(
        silos=tuple(
            ConnectedSilo(
                silo_id=s.silo_id,
                name=s.name,
                version=s.version,
                connected_since_ms=s.connected_since_ms,
                last_seen_ms=s.last_seen_ms,
            )
            for s in p.silos
        ),
        fed_id=p.fed_id,
    )


def _budget_report(p: pb.BudgetReport) -> BudgetReport:
    return BudgetReport(
        request_id=p.request_id,
        silo_id=p.silo_id,
        analyst=p.analyst,
        spent=p.spent,
        budget=p.budget,
        left=p.left,
        queries=p.queries,
    )


def _budget_query(p: pb.BudgetQuery) -> BudgetQuery:
    return BudgetQuery(request_id=p.request_id, analyst=p.analyst)


def _budget_request(p: pb.BudgetRequest) -> BudgetRequest:
    return BudgetRequest(analyst=p.analyst)


def _budget_reply(p: pb.BudgetReply) -> BudgetReply:
    return BudgetReply(
        fed_id=p.fed_id,
        analyst=p.analyst,
        clinics=tuple(
            ClinicBudget(
                silo_id=c.silo_id,
                reported=c.reported,
                spent=c.spent,
                budget=c.budget,
                left=c.left,
                queries=c.queries,
            )
            for c in p.clinics
        ),
    )


_FROM_PROTO: dict[type[Any], Callable[[Any], Message]] = {
    pb.Hello: _hello,
    pb.MaskedUpload: _masked_upload,
    pb.UnmaskResponse: _unmask_response,
    pb.Refusal: _refusal,
    pb.Accepted: _accepted,
    pb.Held: _held,
    pb.Heartbeat: _heartbeat,
    pb.Welcome: _welcome,
    pb.QueryRequest: _query_request,
    pb.UnmaskRequest: _unmask_request,
    pb.Abort: _abort,
    pb.ExecuteRequest: _execute_request,
    pb.ExecuteReply: _execute_reply,
    pb.StatusRequest: _status_request,
    pb.StatusReply: _status_reply,
    pb.ExecuteProgress: _execute_progress,
    pb.CatalogRequest: _catalog_request,
    pb.CatalogReply: _catalog_reply,
    pb.BudgetReport: _budget_report,
    pb.BudgetQuery: _budget_query,
    pb.BudgetRequest: _budget_request,
    pb.BudgetReply: _budget_reply,
}

#: Protobuf class of each transport dataclass: the message of the same name.
_PROTO_CLASS: dict[type[Any], type[ProtoMessage]] = {
    cls: getattr(pb, cls.__name__) for cls in _TO_PROTO
}


def from_proto(proto: ProtoMessage) -> Message:
    """Convert one protobuf message to its transport dataclass.

    Args:
        proto: A message of package ``fedsql.v1`` other than the two envelopes.

    Returns:
        The dataclass of the same name.

    Raises:
        ProtocolError: The message is malformed (see :func:`~fedsql.transport.shapes.validate`)
            or of an unknown type.
    """
    convert = _FROM_PROTO.get(type(proto))
    if convert is None:
        raise ProtocolError(f"{type(proto).__name__} is not a fedsql.v1 message")
    msg = convert(proto)
    validate(msg)
    return msg


def to_bytes(msg: Message) -> bytes:
    """Serialize one transport message (without an envelope).

    Args:
        msg: Any transport message.

    Returns:
        Its protobuf wire bytes.

    Raises:
        ProtocolError: As :func:`to_proto`.
    """
    return to_proto(msg).SerializeToString()


def from_bytes(kind: type[M], data: bytes) -> M:
    """Parse the wire bytes of one message of a known type.

    Args:
        kind: The transport dataclass expected, e.g. ``ExecuteRequest``.
        data: Bytes from :func:`to_bytes`.

    Returns:
        The message.

    Raises:
        ProtocolError: The bytes are not a valid message of that type.

    >>> from_bytes(Heartbeat, to_bytes(Heartbeat(silo_id="a", at_ms=5)))
    Heartbeat(silo_id='a', at_ms=5)
    """
    proto_class = _PROTO_CLASS.get(kind)
    if proto_class is None:
        raise ProtocolError(f"{kind.__name__} is not a transport message")
    return cast(M, from_proto(parse(proto_class, data)))


def parse(proto_class: type[P], data: bytes) -> P:
    """Parse wire bytes into a protobuf message of a known class.

    Args:
        proto_class: A message class of package ``fedsql.v1``.
        data: Wire bytes.

    Returns:
        The parsed message (not yet checked for shape).

    Raises:
        ProtocolError: The bytes are not a valid message of that class.
    """
    proto = proto_class()
    try:
        proto.ParseFromString(data)
    except DecodeError as exc:
        raise ProtocolError(f"bytes are not a valid {proto_class.__name__} message") from exc
    return proto
