"""A silo's check of the analyst's own signature on a query, before anything is charged.

When the signed roster enrols analysts, every query must carry its analyst's signature over the
statement of :class:`~fedsql.secagg.analyst_query.SignedQuery`, made within the freshness window,
with a nonce this silo has never seen (nonces are kept durably, also across restarts), and the
epsilon charged must be the one the analyst signed (or, when they asked for the default, no more
than the contract's default). So a hub can neither spend an analyst's budget with a query they did
not sign, nor replay one they did, nor raise its cost. A logistic model, signed once and run in
rounds the hub builds, is checked round by round by :mod:`fedsql.silo.signed_models`.
"""

from __future__ import annotations

from fedsql.catalog import Contract
from fedsql.errors import ProtocolError, QueryRejected
from fedsql.privacy.accounting import epsilon_to_micro
from fedsql.secagg.analyst_query import SignedQuery, check_signed_query
from fedsql.secagg.protocol import Roster
from fedsql.secagg.qid_log import QidLog
from fedsql.silo.model_rounds import ModelRoundLog
from fedsql.silo.signed_models import check_model_round
from fedsql.sql.regression import model_rounds
from fedsql.transport.messages import QueryRequest


def check_analyst_signature(
    request: QueryRequest,
    roster: Roster,
    contract: Contract,
    nonces: QidLog,
    now_ms: int,
    models: ModelRoundLog | None = None,
) -> None:
    """Verify the analyst's signature on ``request`` and claim its nonce (durably).

    Nothing is checked when the roster enrols no analyst (a federation of unsigned queries).

    Args:
        request: The query as the hub relayed it.
        roster: The verified roster this silo holds.
        contract: The federation contract (its default epsilon).
        nonces: This silo's durable log of analysts' nonces.
        now_ms: This silo's clock, Unix milliseconds.
        models: This silo's durable log of signed models' rounds (without it, rounds of
            signed logistic models are refused).

    Raises:
        ProtocolError: The analyst is not enrolled, the signature is missing or does not verify,
            it is stale, the epsilon charged is not the one signed, or the nonce was seen before
            (for a model's round: see :func:`~fedsql.silo.signed_models.check_model_round`).
        QueryRejected: A model round's SQL does not parse.
    """
    if not roster.analysts:
        return
    public = roster.analyst_key(request.analyst)
    if public is None:
        raise ProtocolError(
            f"analyst {request.analyst} is not enrolled in the federation's signed roster"
        )
    statement = SignedQuery(
        fed_id=request.fed_id,
        analyst=request.analyst,
        sql=request.analyst_sql or request.sql,
        params_json=request.params_json,
        epsilon=request.analyst_epsilon,
        nonce=request.analyst_nonce,
        issued_ms=request.analyst_issued_ms,
        signature=request.analyst_signature,
    )
    rounds = _logistic_rounds(statement.sql)
    if rounds is not None:
        if models is None:
            raise ProtocolError("this silo keeps no model-round log; signed models are refused")
        check_model_round(request, statement, public, rounds, contract, nonces, models, now_ms)
        return
    if request.analyst_sql not in ("", request.sql) or request.analyst_round:
        raise ProtocolError(
            "the query relays a round of a model, but the analyst did not sign a model query"
        )
    check_signed_query(statement, public, now_ms)
    charged = epsilon_to_micro(request.epsilon_charge)
    if request.analyst_epsilon:
        if charged != epsilon_to_micro(request.analyst_epsilon):
            raise ProtocolError(
                f"the hub charges epsilon {request.epsilon_charge}, but the analyst signed "
                f"{request.analyst_epsilon}"
            )
    elif charged > epsilon_to_micro(repr(contract.default_epsilon)):
        raise ProtocolError(
            f"the hub charges epsilon {request.epsilon_charge}, more than the contract's default "
            f"{contract.default_epsilon:g} the analyst asked for"
        )
    if not nonces.claim(request.analyst_nonce):
        raise ProtocolError("this signed query was seen before; a replay is refused")


def _logistic_rounds(sql: str) -> int | None:
    """``max_iter`` of the signed SQL when it is a logistic model, else None.

    SQL that does not plan as a model is an ordinary query here; admission refuses it later
    with the planner's own reason.
    """
    try:
        return model_rounds(sql)
    except QueryRejected:
        return None
