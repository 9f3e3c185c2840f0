"""Translate between transport messages and the secure-aggregation protocol's values (silo side)."""

from __future__ import annotations

from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.protocol import Descriptor
from fedsql.secagg.protocol import MaskedUpload as SecAggUpload
from fedsql.secagg.protocol import UnmaskResponse as SecAggResponse
from fedsql.transport.messages import MaskedUpload, QueryRequest, UnmaskResponse


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
            CoordinateSpec(bound=e.bound, frac_bits=e.frac_bits, sigma_total=e.sigma_total)
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
    )
