"""Hub-side planning of a query: visible tables, epsilon, encoding and the explanation."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

from fedsql.catalog import Contract
from fedsql.errors import QueryRejected
from fedsql.hub.finalize import REFERENCE_ROWS, finalize_engine, reference_sigmas
from fedsql.hub.registry import ConnectedSilo, now_ms
from fedsql.privacy.accounting import epsilon_to_micro, micro_to_epsilon
from fedsql.privacy.accuracy import Z95
from fedsql.privacy.calibrate import NoisePlan
from fedsql.secagg.encoding import LIMB_BITS, CoordinateSpec, dimension
from fedsql.secagg.protocol import PROTOCOL_VERSION, Descriptor, Roster
from fedsql.sql.plan import FederatedPlan
from fedsql.transport.messages import ExecuteRequest


@dataclass(frozen=True)
class Prepared:
    """A planned query before anything is sent: plan, epsilon, noise and encoding."""

    plan: FederatedPlan
    epsilon: str
    noise: NoisePlan | None
    encoding: tuple[CoordinateSpec, ...]
    silos: tuple[ConnectedSilo, ...]
    roster_version: int
    roster: Roster


def visible_tables(silos: list[ConnectedSilo]) -> dict[str, tuple[str, ...]]:
    """The tables every silo shares, each with the columns all of them share (sorted)."""
    visible: dict[str, tuple[str, ...]] = {}
    if not silos:
        return visible
    first = dict(silos[0].hello.shared)
    for table, cols in first.items():
        common = set(cols)
        for s in silos[1:]:
            common &= set(dict(s.hello.shared).get(table, ()))
        if common:
            visible[table] = tuple(sorted(common))
    return visible


def check_per_clinic(contract: Contract, plan: FederatedPlan, silos: list[ConnectedSilo]) -> None:
    """Refuse a per-clinic breakdown (GROUP BY silo) unless every clinic of the cohort allows it.

    Each cell of such a query holds one clinic's own (noisy) numbers, so each clinic must have
    announced in its hello that its policy allows them, and each must be in the contract's
    ``silos`` list (else its rows would fill no cell). The silos check again under their own
    policies; this check only refuses before any of them is asked.

    Raises:
        QueryRejected: Naming the first clinic (by id) that does not allow it.
    """
    if not plan.per_silo:
        return
    for silo in sorted(silos, key=lambda s: s.silo_id):
        if not silo.hello.allow_per_clinic:
            raise QueryRejected(
                f"per-clinic breakdowns (GROUP BY silo) are not allowed by clinic "
                f"{silo.silo_id}'s policy (queries.allow_per_clinic); group by other keys"
            )
        if silo.silo_id not in contract.silos:
            raise QueryRejected(
                f"clinic {silo.silo_id} is not in the contract's silos list, so it has no "
                "per-clinic cell; the federation must add it to [federation] silos"
            )


def choose_epsilon(contract: Contract, asked: str, silos: list[ConnectedSilo]) -> str:
    """The query's epsilon as a canonical decimal string.

    It is the epsilon asked for, or else the contract's default capped by every connected
    clinic's per-query cap.

    Raises:
        QueryRejected: The asked epsilon is above a connected clinic's per-query cap.
    """
    caps = {s.silo_id: float(s.hello.max_epsilon_per_query) for s in silos}
    lowest = min(caps.values())
    if asked:
        micro = epsilon_to_micro(asked)
        for silo_id, cap in sorted(caps.items()):
            if micro > epsilon_to_micro(repr(cap)):
                raise QueryRejected(
                    f"epsilon {micro_to_epsilon(micro)} is above clinic {silo_id}'s per-query "
                    f"cap of {cap:g}; ask for at most {lowest:g}"
                )
        return micro_to_epsilon(micro)
    return micro_to_epsilon(
        min(
            epsilon_to_micro(repr(contract.default_epsilon)),
            epsilon_to_micro(repr(lowest)),
        )
    )


def explain_lines(contract: Contract, prepared: Prepared) -> list[str]:
    """Human-readable plan: partial SQL, key space, sensitivities, noise and cost."""
    plan, noise = prepared.plan, prepared.noise
    n = len(prepared.silos)
    lines = list(plan.explanation)
    lines.append(f"partial SQL (run by every silo):\n{plan.partial_sql}")
    if plan.finalize_sql:
        lines.append(f"finalize SQL (run by the hub over noisy totals):\n{plan.finalize_sql}")
    width = dimension(prepared.encoding, plan.cells) // plan.cells
    lines.append(
        f"key space: {plan.cells} cell(s) x {len(plan.measures)} measure(s) = "
        + (
            f"vector of {plan.dimension}"
            if width == len(plan.measures)
            else f"{width} coordinates per cell, vector of {plan.cells * width}"
        )
    )
    for m, spec in zip(plan.measures, prepared.encoding, strict=True):
        if spec.limbs > 1:
            lines.append(
                f"  {m.name} {m.expression}: sent in two limbs, X >> {LIMB_BITS} and "
                f"X mod 2^{LIMB_BITS}, recombined exactly by the hub (its total over {n} "
                f"silo(s) with {spec.frac_bits} fraction bits needs "
                f"2^{math.log2(max(1, n * spec.limit)):.1f}, beyond the 2^62 one coordinate holds)"
            )
    m_min, m_all = contract.secagg.m_min(n), contract.secagg.m_all(n)
    reduced = (
        f", reduced to m_all={m_all} when every clinic answers (the extra part of each "
        "share is then removed)"
        if m_all > m_min
        else ""
    )
    lines.append(
        f"cohort: {n} silo(s); secure aggregation threshold "
        f"t={contract.secagg.threshold_for(n)}, "
        f"noise sized for m_min={m_min} honest silos{reduced}"
    )
    if noise is None:
        lines.append("noise: OFF (test mode)")
    else:
        lines.append(
            f"privacy cost: epsilon={prepared.epsilon} at delta={contract.delta:g} "
            f"(rho={noise.rho:.6g} zCDP), split across measures to minimise the summed "
            f"squared relative error of the outputs (budget split above)"
        )
        lines.append(
            f"expected noise and margins assume every one of the {n} clinics answers; with "
            "fewer the noise is larger, and the reply reports the noise it carries"
        )
        sigmas = []
        for m, mn in zip(plan.measures, noise.measures, strict=True):
            sigma = noise.sigma_released(m.name, n, all_answered=True)
            sigmas.append(sigma)
            lines.append(
                f"  {m.name} {m.expression}: sensitivity {m.sensitivity:g}, rho {mn.rho:.6g} "
                f"({mn.rho / noise.rho:.1%}), noise sd {sigma:.4g} (value units), 95% margin "
                f"±{Z95 * sigma:.4g}"
            )
        engine = finalize_engine()
        try:
            margins = reference_sigmas(engine, plan, sigmas)
        finally:
            engine.close()
        for out in plan.outputs:
            if out.name not in margins:
                continue
            where = (
                "any cell"
                if out.kind in ("count", "sum") and len(out.measures) == 1
                else f"a typical cell of {REFERENCE_ROWS} rows (delta method)"
            )
            lines.append(
                f"  output {out.name}: expected 95% margin ±{Z95 * margins[out.name]:.4g} at "
                f"{where}"
            )
    return lines


def descriptor_for(
    contract: Contract,
    req: ExecuteRequest,
    prepared: Prepared,
    epoch: int,
    round_timeout_s: float,
) -> Descriptor:
    """The query descriptor Q (FSA-1 M0) of a prepared query, with a fresh random query id.

    Its deadline is when the hub stops waiting for uploads (round 1).
    """
    plan, noise = prepared.plan, prepared.noise
    n = len(prepared.silos)
    return Descriptor(
        version=PROTOCOL_VERSION,
        fed_id=contract.federation_id,
        roster_version=prepared.roster_version,
        epoch=epoch,
        qid=secrets.token_bytes(16),
        cohort=tuple(s.silo_id for s in prepared.silos),
        threshold=contract.secagg.threshold_for(n),
        n_min=contract.secagg.n_min,
        dimension=dimension(prepared.encoding, plan.cells),
        encoding=prepared.encoding,
        cells=plan.cells,
        sigma_loc=(
            tuple(0.0 for _ in plan.measures)
            if noise is None
            else tuple(mn.sigma_local_encoded for mn in noise.measures)
        ),
        rho_charge="0" if noise is None else repr(noise.rho),
        epsilon_charge=prepared.epsilon,
        analyst=req.analyst,
        plan_hash=plan.plan_hash,
        sql=req.sql,
        params_json=req.params_json,
        deadline_ms=now_ms() + int(round_timeout_s * 1000),
    )
