"""Translate between transport messages and the secure-aggregation protocol's values (hub side)."""

from __future__ import annotations

from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.epochs import EpochKey
from fedsql.secagg.protocol import Descriptor, Roster
from fedsql.secagg.protocol import MaskedUpload as SecAggUpload
from fedsql.secagg.protocol import RosterEntry as SecAggRosterEntry
from fedsql.secagg.protocol import UnmaskRequest as SecAggUnmaskRequest
from fedsql.secagg.protocol import UnmaskResponse as SecAggResponse
from fedsql.transport.messages import (
    AnalystEntry,
    EncodingEntry,
    EpochKeyInfo,
    MaskedUpload,
    QueryRequest,
    RosterEntry,
    UnmaskRequest,
    UnmaskResponse,
    Welcome,
)


def epoch_key_from_message(msg: EpochKeyInfo) -> EpochKey:
    """The protocol's view of a relayed epoch key."""
    return EpochKey(
        fed_id=msg.fed_id,
        silo_id=msg.silo_id,
        epoch=msg.epoch,
        x25519_public=msg.x25519_public,
        signature=msg.signature,
    )


def welcome_from_roster(
    roster: Roster, epoch: int, epoch_keys: tuple[EpochKeyInfo, ...]
) -> Welcome:
    """The Welcome relaying a signed roster exactly as the authority signed it."""
    return Welcome(
        fed_id=roster.fed_id,
        roster_version=roster.version,
        epoch=epoch,
        roster=tuple(
            RosterEntry(
                silo_id=e.silo_id,
                index=e.index,
                x25519_public=e.x25519_public,
                ed25519_public=e.ed25519_public,
            )
            for e in roster.entries
        ),
        contract_hash=roster.contract_hash,
        coordinator_public=roster.coordinator_public,
        roster_signature=roster.signature,
        epoch_keys=epoch_keys,
        analysts=tuple(AnalystEntry(a.name, a.ed25519_public) for a in roster.analysts),
    )


def roster_from_welcome(welcome: Welcome) -> Roster:
    """The protocol's roster carried by a Welcome (signed or not)."""
    return Roster(
        fed_id=welcome.fed_id,
        version=welcome.roster_version,
        entries=tuple(
            SecAggRosterEntry(
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


def request_from_descriptor(desc: Descriptor) -> QueryRequest:
    """The M0 transport message carrying descriptor Q."""
    return QueryRequest(
        version=desc.version,
        fed_id=desc.fed_id,
        roster_version=desc.roster_version,
        epoch=desc.epoch,
        qid=desc.qid,
        cohort=tuple(desc.cohort),
        threshold=desc.threshold,
        n_min=desc.n_min,
        dimension=desc.dimension,
        cells=desc.cells,
        encoding=tuple(
            EncodingEntry(
                bound=e.bound, frac_bits=e.frac_bits, sigma_total=e.sigma_total, limbs=e.limbs
            )
            for e in desc.encoding
        ),
        sigma_loc=tuple(desc.sigma_loc),
        rho_charge=desc.rho_charge,
        epsilon_charge=desc.epsilon_charge,
        analyst=desc.analyst,
        plan_hash=desc.plan_hash,
        sql=desc.sql,
        params_json=desc.params_json,
        deadline_ms=desc.deadline_ms,
        signature=desc.signature,
    )


def upload_from_message(msg: MaskedUpload) -> SecAggUpload:
    """The protocol's view of an M1 message."""
    return SecAggUpload(
        qid=msg.qid,
        silo_id=msg.silo_id,
        hq=msg.hq,
        y=msg.y,
        commit=msg.commit,
        shares=tuple(msg.shares),
        signature=msg.signature,
    )


def message_from_unmask_request(req: SecAggUnmaskRequest) -> UnmaskRequest:
    """The M2 transport message for one survivor."""
    return UnmaskRequest(
        qid=req.qid,
        hq=req.hq,
        survivors=tuple(req.survivors),
        dropped=tuple(req.dropped),
        forwarded=tuple(req.forwarded),
        signature=req.signature,
    )


def response_from_message(msg: UnmaskResponse) -> SecAggResponse:
    """The protocol's view of an M3 message."""
    return SecAggResponse(
        qid=msg.qid,
        silo_id=msg.silo_id,
        request_digest=msg.request_digest,
        seed_shares=tuple(msg.seed_shares),
        mask_keys=tuple(msg.mask_keys),
        extra=msg.extra,
        signature=msg.signature,
    )
