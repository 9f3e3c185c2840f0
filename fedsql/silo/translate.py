"""Translate between transport messages and the secure-aggregation protocol's values (silo side)."""

from __future__ import annotations

from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.epochs import EpochKey
from fedsql.secagg.protocol import Abort as SecAggAbort
from fedsql.secagg.protocol import Descriptor, Roster, RosterEntry
from fedsql.secagg.protocol import MaskedUpload as SecAggUpload
from fedsql.secagg.protocol import UnmaskResponse as SecAggResponse
from fedsql.transport.messages import (
    Abort,
    EpochKeyInfo,
    MaskedUpload,
    QueryRequest,
    UnmaskResponse,
    Welcome,
)


def descriptor_from_request(request: QueryRequest) -> Descriptor:
    """The FSA-1 descriptor Q carried by a query request (M0)."""
    return Descriptor(
        version=request.version,
        fed_id=request.fed_id,
        roster_version=request.roster_version,
        epoch=request.epoch,
        qid=request.qid,
        cohort=tuple(request.cohort),
        threshold=request.threshold,
        n_min=request.n_min,
        dimension=request.dimension,
        encoding=tuple(
            CoordinateSpec(
                bound=e.bound, frac_bits=e.frac_bits, sigma_total=e.sigma_total, limbs=e.limbs
            )
            for e in request.encoding
        ),
        cells=request.cells,
        sigma_loc=tuple(request.sigma_loc),
        rho_charge=request.rho_charge,
        epsilon_charge=request.epsilon_charge,
        analyst=request.analyst,
        plan_hash=request.plan_hash,
        sql=request.sql,
        params_json=request.params_json,
        deadline_ms=request.deadline_ms,
        signature=request.signature,
    )


def abort_from_message(msg: Abort) -> SecAggAbort:
    """The protocol's view of the hub's Abort."""
    return SecAggAbort(qid=msg.qid, reason=msg.reason, signature=msg.signature)


def epoch_key_to_message(key: EpochKey) -> EpochKeyInfo:
    """The transport form of this silo's signed epoch key."""
    return EpochKeyInfo(
        fed_id=key.fed_id,
        silo_id=key.silo_id,
        epoch=key.epoch,
        x25519_public=key.x25519_public,
        signature=key.signature,
    )


def epoch_key_from_message(msg: EpochKeyInfo) -> EpochKey:
    """The protocol's view of a peer's relayed epoch key."""
    return EpochKey(
        fed_id=msg.fed_id,
        silo_id=msg.silo_id,
        epoch=msg.epoch,
        x25519_public=msg.x25519_public,
        signature=msg.signature,
    )


def roster_from_welcome(welcome: Welcome) -> Roster:
    """The roster a Welcome carries, exactly as sent (a signed one is verified by the session)."""
    return Roster(
        fed_id=welcome.fed_id,
        version=welcome.roster_version,
        entries=tuple(
            RosterEntry(
                silo_id=e.silo_id,
                index=e.index,
                x25519_public=e.x25519_public,
                ed25519_public=e.ed25519_public,
            )
            for e in welcome.roster
        ),
        signature=welcome.roster_signature,
        contract_hash=welcome.contract_hash,
        coordinator_public=welcome.coordinator_public,
        analysts=tuple(AnalystKey(a.name, a.ed25519_public) for a in welcome.analysts),
    )


def upload_to_message(upload: SecAggUpload) -> MaskedUpload:
    """The M1 transport message for a masked upload."""
    return MaskedUpload(
        qid=upload.qid,
        silo_id=upload.silo_id,
        hq=upload.hq,
        y=upload.y,
        commit=upload.commit,
        shares=tuple(upload.shares),
        signature=upload.signature,
    )


def response_to_message(response: SecAggResponse) -> UnmaskResponse:
    """The M3 transport message for an unmask response."""
    return UnmaskResponse(
        qid=response.qid,
        silo_id=response.silo_id,
        request_digest=response.request_digest,
        seed_shares=tuple(response.seed_shares),
        mask_keys=tuple(response.mask_keys),
        signature=response.signature,
        extra=response.extra,
    )
