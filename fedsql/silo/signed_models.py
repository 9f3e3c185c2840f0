"""A silo's check of one round of a logistic model the analyst signed once, before any charge.

A LOGISTIC_REGRESSION query runs as up to ``max_iter`` Newton rounds whose SQL and epsilon the
hub builds: round ``r`` runs ``round_sql(signed_sql, at)`` (the analyst's SQL with the round's
coefficients added as ``at => [...]``) at the ``r``-th share of ``round_epsilons(total,
max_iter)``. The analyst signs the model query once (original SQL, parameters, total epsilon,
nonce, time); the hub relays that signed statement with every round, plus the original SQL
(``analyst_sql``) and the round's index (``analyst_round``). Every silo then checks, itself:

* the analyst's signature over the ORIGINAL SQL (and the signed parameters, total, nonce, time);
* that the signed SQL is a logistic model, and that the round's SQL is exactly
  ``round_sql(signed_sql, at)`` for the coefficients it names: the ``at`` argument is stripped
  with the planner's own code and the rest compared with the signed SQL in canonical form, and
  the round's text is re-derived from the signed SQL and compared byte for byte;
* that the round's epsilon is the share this silo computes for round ``r`` from the signed total
  with the same schedule (when the analyst asked for the contract's default, ``""``, the
  schedule of the default is the ceiling, as the hub may lower the total to the clinics' caps);
* in one durable transaction (:class:`~fedsql.silo.model_rounds.ModelRoundLog`): round 0 claims
  the nonce in the silo's nonce log and opens the record; round ``r > 0`` must be the next round
  of the same statement, ``r < max_iter``, and must keep the total charged under the nonce within
  the signed total. A replayed round, a skipped one, or one past the model's spend is refused;
  a round accepted here is never accepted again, also after a restart.

Freshness: round 0 must be signed within the usual window (``FRESHNESS_MS``, 300 s) of the
silo's clock. Later rounds only continue a model this silo opened, so they are allowed the
model's lifetime, :data:`MODEL_LIFETIME_MS` (one hour) after signing; a round later than that
is refused and the analyst signs the model again. Everything here happens before the ledger
charge and before any data is touched, so a refused round costs nothing.
"""

from __future__ import annotations

from fedsql.catalog import Contract
from fedsql.errors import ProtocolError
from fedsql.privacy.accounting import epsilon_to_micro
from fedsql.privacy.round_shares import round_epsilons
from fedsql.secagg.analyst_query import FRESHNESS_MS, SignedQuery, check_signed_query
from fedsql.secagg.identity import signed_digest
from fedsql.secagg.qid_log import QidLog
from fedsql.silo.model_rounds import ModelRoundLog
from fedsql.sql.regression import canonical_sql, round_sql, unround_sql
from fedsql.transport.messages import QueryRequest

__all__ = ["MODEL_LIFETIME_MS", "check_model_round"]

#: How long after signing the rounds of a signed model may still run, in milliseconds.
MODEL_LIFETIME_MS = 3_600_000


def check_model_round(
    request: QueryRequest,
    statement: SignedQuery,
    public: bytes,
    max_rounds: int,
    contract: Contract,
    nonces: QidLog,
    models: ModelRoundLog,
    now_ms: int,
) -> None:
    """Verify one round of a signed logistic model and record it (durably).

    Args:
        request: The round as the hub relayed it.
        statement: The analyst's signed statement (its SQL is the one they signed).
        public: The analyst's enrolled Ed25519 key.
        max_rounds: ``max_iter`` of the signed SQL.
        contract: The federation contract (its default epsilon).
        nonces: This silo's durable log of analysts' nonces.
        models: This silo's durable log of signed models' rounds.
        now_ms: This silo's clock, Unix milliseconds.

    Raises:
        ProtocolError: The signature does not verify or is stale, the round's SQL is not the
            signed SQL with coefficients added, its epsilon is not its share, or the round was
            taken before, skips one, or would overspend the signed total.
        QueryRejected: The round's SQL does not parse or names no coefficients.
    """
    index = request.analyst_round
    window = FRESHNESS_MS if index == 0 else MODEL_LIFETIME_MS
    check_signed_query(statement, public, now_ms, window)
    if not 0 <= index < max_rounds:
        raise ProtocolError(
            f"round {index + 1} of a model signed for at most {max_rounds} rounds is refused"
        )
    base, at = unround_sql(request.sql)
    if base != canonical_sql(statement.sql) or request.sql != round_sql(statement.sql, at):
        raise ProtocolError(
            f"round {index + 1}'s SQL is not the model query analyst {statement.analyst} signed "
            "with the round's coefficients added; refused"
        )
    total = statement.epsilon or repr(contract.default_epsilon)
    share = epsilon_to_micro(round_epsilons(total, max_rounds)[index])
    charged = epsilon_to_micro(request.epsilon_charge)
    if charged > share or (statement.epsilon and charged != share):
        raise ProtocolError(
            f"the hub charges round {index + 1} epsilon {request.epsilon_charge}, but its share "
            f"of the signed total {total} over {max_rounds} rounds is "
            f"{round_epsilons(total, max_rounds)[index]}"
        )
    if index == 0 and not nonces.claim(statement.nonce):
        raise ProtocolError("this signed query was seen before; a replay is refused")
    models.take(
        statement.nonce,
        signed_digest(statement),
        index,
        max_rounds=max_rounds,
        total_micro=epsilon_to_micro(total),
        share_micro=charged,
    )
