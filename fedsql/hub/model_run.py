"""Model queries at the hub: one secure sum (linear) or Newton rounds (logistic), then the reply.

A logistic model's epsilon is split across ``max_iter`` rounds before the first one runs: the
last round gets half of it (its gradient's noise is the noise of the answer), the one before a
quarter (it brings Newton's method close enough for the last step to be exact to first order),
and the earlier rounds, which only have to find the neighbourhood, share the last quarter. Each
round is an ordinary query of the federation whose SQL is the analyst's with the round's
coefficients added (``at => [...]``) and whose epsilon is its share (rounded down to a
micro-epsilon), so every silo re-plans, bounds, charges and noises every round itself. Rounds
that convergence makes unnecessary (noise off) are not run and not charged.

When the analyst signed the model query, every round relays that one signed statement (the
original SQL and total epsilon, the nonce and time) with the round's index; each silo checks the
round against it (:mod:`fedsql.silo.signed_models`: the round's SQL is the signed SQL with
coefficients added, its epsilon is the round's share of the signed total, rounds come in order
and never exceed ``max_iter`` or the total).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from fedsql.errors import BudgetExhausted, QuorumNotMet
from fedsql.hub.finalize import partials_table
from fedsql.hub.planning import Prepared
from fedsql.hub.query_run import QueryRun
from fedsql.hub.reply import arrow_ipc, noise_level, released_sigmas, silo_statuses
from fedsql.privacy.accounting import epsilon_to_micro, micro_to_epsilon
from fedsql.privacy.round_shares import round_epsilons
from fedsql.sql.plan import FederatedPlan, ModelSpec
from fedsql.sql.regression import round_sql
from fedsql.train import RoundTotals, fit_linear, fit_logistic, model_table
from fedsql.train.fit import CellFit
from fedsql.transport.messages import ExecuteReply, ExecuteRequest

__all__ = ["explain_model", "round_epsilons", "run_model"]

if TYPE_CHECKING:
    from fedsql.hub.coordinator import Hub

log = logging.getLogger(__name__)

#: Column of the statistics table that flags suppressed groups.
SUPPRESSED = "__suppressed"


@dataclasses.dataclass
class _Round:
    """The latest round's run, survivors, totals and per-measure noise."""

    prepared: Prepared
    run: QueryRun
    survivors: tuple[str, ...]
    values: np.ndarray
    sigmas: tuple[float, ...]
    usable: tuple[bool, ...]
    seconds: float
    all_answered: bool


def explain_model(prepared: Prepared) -> list[str]:
    """How a model query spends its epsilon: the rounds' schedule (nothing for other queries).

    Args:
        prepared: The prepared query.

    Returns:
        Explanation lines.
    """
    spec = prepared.plan.model
    if spec is None:
        return []
    if spec.kind == "linear":
        return [f"model: one round at epsilon {prepared.epsilon} (the cost above)"]
    shares = round_epsilons(prepared.epsilon, spec.max_iter)
    return [
        f"model: at most {spec.max_iter} Newton rounds, each a query of its own at epsilon "
        f"{', '.join(shares)} (total at most {prepared.epsilon}; the cost above is for one "
        "round at the whole epsilon, each round's noise is calibrated to its share)"
    ]


def run_model(
    hub: Hub,
    req: ExecuteRequest,
    prepared: Prepared,
    *,
    watch: Callable[[QueryRun], None] | None = None,
) -> tuple[ExecuteReply, bytes]:
    """Fit the model of a prepared model query and build the analyst's reply.

    Args:
        hub: The hub (it prepares and aggregates every round).
        req: The analyst's request.
        prepared: The prepared query (its plan has a ``model``).
        watch: Called with the first round's run as soon as it exists.

    Returns:
        The reply and the id of the last round's query.
    """
    started = time.monotonic()
    plan = prepared.plan
    spec = plan.model
    assert spec is not None
    rounds: list[_Round] = []

    def aggregate(request: ExecuteRequest, ready: Prepared, index: int | None = None) -> _Round:
        begun = time.monotonic()
        run, survivors, values, all_answered = hub.aggregate(
            request,
            ready,
            watch=watch if not rounds else None,
            signed=None if index is None else req,
            model_round=index or 0,
        )
        sigmas = tuple(released_sigmas(ready, len(survivors), all_answered))
        if rounds and survivors != rounds[0].survivors:
            raise QuorumNotMet(
                f"round {len(rounds) + 1} of the model was answered by "
                f"{', '.join(survivors)}, not by the clinics of the first round "
                f"({', '.join(rounds[0].survivors)}); every round of a model must cover the "
                "same clinics. Run the query again"
            )
        min_group = max(s.hello.min_group_size for s in ready.silos if s.silo_id in survivors)
        matrix = values.reshape(ready.plan.cells, len(ready.plan.measures))
        usable = tuple(bool(c >= max(min_group, 1)) for c in matrix[:, 0])
        done = _Round(
            ready, run, survivors, matrix, sigmas, usable, time.monotonic() - begun, all_answered
        )
        rounds.append(done)
        return done

    fits: Sequence[CellFit | None]
    if spec.kind == "linear":
        first = aggregate(req, prepared)
        fits = fit_linear(spec, first.values, first.sigmas, first.usable)
        epsilon = prepared.epsilon
    else:
        shares = round_epsilons(prepared.epsilon, spec.max_iter)

        def evaluate(at: Sequence[float], index: int) -> RoundTotals:
            share = shares[index]
            request = dataclasses.replace(req, sql=round_sql(req.sql, at), epsilon=share)
            done = aggregate(request, hub.prepare(request), index)
            _check_budgets(done, shares[: index + 1], shares[index + 1 :])
            return RoundTotals(done.values, done.sigmas, done.usable)

        fits, count = fit_logistic(spec, plan.cells, evaluate)
        epsilon = micro_to_epsilon(sum(epsilon_to_micro(e) for e in shares[:count]))
    last = rounds[-1]
    result = model_table(
        spec,
        [o.name for o in plan.outputs],
        _key_columns(plan, last.values),
        fits,
        float(epsilon),
    )
    stats = pa.table({SUPPRESSED: pa.array([not u for u in last.usable])})
    report = _report(hub, prepared, spec, rounds, epsilon, started)
    log.info(
        "model done: analyst=%s plan=%s rounds=%d epsilon=%s",
        req.analyst,
        plan.plan_hash[:12],
        len(rounds),
        epsilon,
    )
    reply = ExecuteReply(
        result_ipc=arrow_ipc(result),
        stats_ipc=arrow_ipc(stats),
        report_json=json.dumps(report, sort_keys=True),
        explain=(),
        epsilon_spent=epsilon,
        silos=silo_statuses(last.run, last.survivors, prepared.roster),
    )
    return reply, last.run.qid


def _check_budgets(done: _Round, paid: Sequence[str], ahead: Sequence[str]) -> None:
    """Stop before the next round when a clinic cannot pay for the rounds still ahead.

    Raises:
        BudgetExhausted: A clinic reported less epsilon left than the remaining rounds need.
    """
    need = sum(epsilon_to_micro(e) for e in ahead)
    for silo_id in done.survivors:
        left = done.run.outcomes[silo_id].budget_remaining
        if left and need and epsilon_to_micro(left) < need:
            spent = micro_to_epsilon(sum(epsilon_to_micro(e) for e in paid))
            raise BudgetExhausted(
                f"clinic {silo_id} has epsilon {left} left, but the model's remaining rounds "
                f"need {micro_to_epsilon(need)}; stopped after {len(paid)} round(s) that cost "
                f"{spent}. Ask for less epsilon or fewer rounds (max_iter)"
            )


def _key_columns(plan: FederatedPlan, values: np.ndarray) -> dict[str, pa.Array]:
    """Each key's value in every cell (``k0`` -> array of ``plan.cells`` values)."""
    table = partials_table(plan, values.ravel(), np.zeros(plan.cells, dtype=bool))
    return {key.name: table.column(key.name).combine_chunks() for key in plan.keys}


def _report(
    hub: Hub,
    prepared: Prepared,
    spec: ModelSpec,
    rounds: list[_Round],
    epsilon: str,
    started: float,
) -> dict[str, object]:
    """The privacy report of a model query, with each round's cost and noise."""
    last = rounds[-1]
    noise = last.prepared.noise
    min_group = max(
        s.hello.min_group_size for s in last.prepared.silos if s.silo_id in last.survivors
    )
    return {
        "epsilon": epsilon,
        "delta": hub.contract.delta,
        "rho": None
        if noise is None
        else sum(r.prepared.noise.rho for r in rounds if r.prepared.noise),
        "noise": noise is not None,
        "noise_level": noise_level(last.prepared, last.all_answered),
        "min_group_size": min_group,
        "suppressed_cells": sum(1 for u in last.usable if not u),
        "cells": prepared.plan.cells,
        "model": {
            "kind": spec.kind,
            "rounds": len(rounds),
            "max_rounds": spec.max_iter if spec.kind == "logistic" else 1,
            "round_epsilons": [r.prepared.epsilon for r in rounds],
            "round_seconds": [round(r.seconds, 6) for r in rounds],
            "vector_length": prepared.plan.dimension,
        },
        "measures": [
            {"name": m.name, "expression": m.expression, "sigma": s, "hidden": False}
            for m, s in zip(last.prepared.plan.measures, last.sigmas, strict=True)
        ],
        "elapsed_s": round(time.monotonic() - started, 6),
    }
