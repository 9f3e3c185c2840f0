"""The analyst's reply: finalized answer, per-silo outcome and privacy report; quorum errors."""

from __future__ import annotations

import json
import logging
import time

import duckdb
import numpy as np
import pyarrow as pa

from fedsql.catalog import Contract
from fedsql.errors import BudgetExhausted, Error, QuorumNotMet
from fedsql.hub.finalize import finalize
from fedsql.hub.planning import Prepared
from fedsql.hub.query_run import QueryRun
from fedsql.secagg.protocol import Roster
from fedsql.transport.messages import ExecuteReply, ExecuteRequest, SiloStatus

log = logging.getLogger(__name__)


def arrow_ipc(table: pa.Table) -> bytes:
    """An Arrow table as IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def quorum_error(contract: Contract, run: QueryRun) -> Error:
    """The error for a query too few silos contributed to: budget, or quorum, with reasons."""
    refusals = {s: o for s, o in run.outcomes.items() if o.status == "refused"}
    detail = "; ".join(f"{s}: {o.reason}" for s, o in sorted(refusals.items()))
    if refusals and all(
        o.code == BudgetExhausted.__name__ or "budget" in o.reason.lower()
        for o in refusals.values()
    ):
        return BudgetExhausted(f"not enough silos have budget left for this query ({detail})")
    statuses = ", ".join(f"{s} {o.status}" for s, o in sorted(run.outcomes.items()))
    needed = contract.secagg.survivors_needed(len(run.cohort))
    msg = f"only {len(run.uploads)} silo(s) contributed; at least {needed} are needed ({statuses})"
    if detail:
        msg += f"; refusals: {detail}"
    return QuorumNotMet(msg)


#: Why an enrolled silo that was not connected when a query started is not in its answer.
ABSENT = "not connected to the hub when the query started"
#: Reason given for a survivor whose upload is in the total but whose round-2 answer never came.
LEFT_AFTER_UPLOAD = (
    "left after uploading; its upload is in the total, unmasked with the other survivors' shares"
)


def silo_statuses(
    run: QueryRun, survivors: tuple[str, ...], roster: Roster | None = None
) -> tuple[SiloStatus, ...]:
    """Each silo's final status: answered (a survivor), refused or dropped.

    A survivor that left between the rounds is answered (its upload is in the total), with a
    reason that says it left. With the ``roster``, enrolled silos that were not connected when
    the query started are listed too, as dropped.
    """
    statuses = []
    for silo_id in run.cohort:
        out = run.outcomes[silo_id]
        status = "answered" if silo_id in survivors else out.status
        if status != "answered":
            reason = out.reason
        else:
            reason = "" if silo_id in run.responses else LEFT_AFTER_UPLOAD
        statuses.append(
            SiloStatus(
                silo_id=silo_id,
                status=status,
                reason=reason,
                budget_remaining=out.budget_remaining,
            )
        )
    if roster is not None:
        for entry in sorted(roster.entries, key=lambda e: e.silo_id):
            if entry.silo_id not in run.outcomes:
                statuses.append(SiloStatus(silo_id=entry.silo_id, status="dropped", reason=ABSENT))
    return tuple(statuses)


def released_sigmas(prepared: Prepared, survivors: int, all_answered: bool) -> list[float]:
    """Each measure's noise sd in a released total, in value units (0.0 with noise off).

    Args:
        prepared: The prepared query.
        survivors: How many silos' uploads are in the total.
        all_answered: Whether the extra parts of the noise were removed.

    Returns:
        ``sqrt(n)·sigma_base`` per measure when ``all_answered``, else
        ``sqrt(survivors)·sigma_local``.
    """
    noise = prepared.noise
    if noise is None:
        return [0.0 for _ in prepared.plan.measures]
    return [
        noise.sigma_released(m.name, survivors, all_answered=all_answered)
        for m in prepared.plan.measures
    ]


def noise_level(prepared: Prepared, all_answered: bool) -> str:
    """Which noise the released totals carry, in the words of the privacy report."""
    if prepared.noise is None:
        return "off"
    return "all answered" if all_answered else "survivors"


def build_reply(
    contract: Contract,
    engine: duckdb.DuckDBPyConnection,
    req: ExecuteRequest,
    prepared: Prepared,
    run: QueryRun,
    totals: tuple[tuple[str, ...], np.ndarray, bool],
    started: float,
) -> ExecuteReply:
    """Finalize the noisy totals and assemble the analyst's reply and privacy report.

    ``totals`` is what :meth:`fedsql.hub.coordinator.Hub.aggregate` returns after the run: the
    survivors, the decoded totals and whether every cohort member answered (the extra parts
    of the noise were removed), which sets the noise the sigmas and intervals report.
    """
    plan, noise = prepared.plan, prepared.noise
    survivors, values, all_answered = totals
    k = len(survivors)
    sigmas = released_sigmas(prepared, k, all_answered)
    by_id = {s.silo_id: s for s in prepared.silos}
    min_group = max(by_id[s].hello.min_group_size for s in survivors)
    fin = finalize(engine, plan, values, sigmas, min_group)
    statuses = silo_statuses(run, survivors, prepared.roster)
    report = {
        "epsilon": prepared.epsilon,
        "delta": contract.delta,
        "rho": None if noise is None else noise.rho,
        "noise": noise is not None,
        "noise_level": noise_level(prepared, all_answered),
        "min_group_size": min_group,
        "suppressed_cells": fin.suppressed_cells,
        "cells": plan.cells,
        "measures": [
            {"name": m.name, "expression": m.expression, "sigma": s, "hidden": m.hidden}
            for m, s in zip(plan.measures, sigmas, strict=True)
        ],
        "elapsed_s": round(time.monotonic() - started, 6),
    }
    log.info(
        "query done: analyst=%s plan=%s epsilon=%s survivors=%d cells=%d",
        req.analyst,
        plan.plan_hash[:12],
        prepared.epsilon,
        k,
        plan.cells,
    )
    return ExecuteReply(
        result_ipc=arrow_ipc(fin.result),
        stats_ipc=arrow_ipc(fin.stats),
        report_json=json.dumps(report, sort_keys=True),
        explain=(),
        epsilon_spent=prepared.epsilon,
        silos=statuses,
    )
