"""The silo's policy guard: re-plan every request under this clinic's policy and admit or refuse it.

Nothing here touches patient data: every check runs on the request, the contract and the policy.
A request is admitted only when the silo's own plan has the hub's plan hash, the epsilon is within
the clinic's cap, approval allows it, and the noise and encoding the hub asks for are exactly the
ones this silo computes for itself. The split of each noise share into a base part, which always
stays in the total, and an extra part, removed only when every cohort member answers, is this
silo's own (from the contract and the cohort size); the hub cannot choose it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedsql.catalog import Contract, SiloPolicy
from fedsql.errors import ProtocolError, QueryRejected
from fedsql.privacy.accounting import epsilon_to_micro
from fedsql.privacy.calibrate import MIN_SIGMA_LOCAL, MeasureNoise, NoisePlan, plan_noise
from fedsql.query_terms import encoding_for, measure_specs
from fedsql.secagg.encoding import CoordinateSpec, check_plan, dimension
from fedsql.sql.plan import FederatedPlan
from fedsql.sql.plan_cache import plan_cached
from fedsql.transport.messages import QueryRequest


@dataclass(frozen=True)
class Admission:
    """What the guard hands to the engine for an admitted request."""

    plan: FederatedPlan
    noise: NoisePlan | None
    encoding: tuple[CoordinateSpec, ...]
    epsilon_micro: int


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _check_split(mine: MeasureNoise) -> None:
    """Refuse a noise split this silo must not upload: a base part below the safe minimum, or
    base and extra parts that do not make up the whole share."""
    whole = math.hypot(mine.sigma_base_encoded, mine.sigma_extra_encoded)
    if mine.sigma_base_encoded < MIN_SIGMA_LOCAL or not math.isclose(
        whole, mine.sigma_local_encoded, rel_tol=1e-9
    ):
        raise QueryRejected(
            f"the noise of measure {mine.name!r} cannot be split safely; lower epsilon"
        )


def admit(
    request: QueryRequest,
    contract: Contract,
    policy: SiloPolicy,
    *,
    testing: bool,
) -> Admission:
    """Decide whether this silo will run ``request``.

    Args:
        request: The hub's query descriptor (M0).
        contract: The federation contract this silo enrolled with.
        policy: The clinic's policy.
        testing: True only for a silo started in test mode, which alone accepts noise-off queries.

    Returns:
        The admitted plan, noise plan and encoding.

    Raises:
        QueryRejected: The query is not allowed under this clinic's policy.
        ProtocolError: The request disagrees with what this silo computes for it.
    """
    if request.fed_id != contract.federation_id:
        raise ProtocolError("the request is for another federation")
    if policy.approval == "deny":
        raise QueryRejected("this clinic currently refuses all queries (approval mode deny)")
    plan = plan_cached(request.sql, request.params_json, contract, policy.shared)
    if plan.plan_hash != request.plan_hash:
        raise ProtocolError("the hub's plan differs from the plan this silo compiled; refusing")
    micro = epsilon_to_micro(request.epsilon_charge)
    cap = epsilon_to_micro(repr(policy.max_epsilon_per_query))
    if micro > cap:
        raise QueryRejected(
            f"epsilon {request.epsilon_charge} is above this clinic's per-query cap of "
            f"{policy.max_epsilon_per_query:g}"
        )
    n = len(request.cohort)
    params_ = contract.secagg
    if request.threshold != params_.threshold_for(n) or request.n_min != params_.n_min:
        raise ProtocolError("the secure-aggregation threshold differs from the contract's")
    if len(request.sigma_loc) != len(plan.measures) or request.cells != plan.cells:
        raise ProtocolError("the request's vector layout differs from the plan's")
    noise: NoisePlan | None
    if all(s == 0.0 for s in request.sigma_loc):
        if not testing:
            raise QueryRejected(
                "noise-off queries are refused: this silo was not started for testing"
            )
        noise = None
    else:
        noise = plan_noise(
            float(request.epsilon_charge),
            contract.delta,
            measure_specs(plan),
            params_.m_min(n),
            params_.m_all(n),
        )
        for asked, mine in zip(request.sigma_loc, noise.measures, strict=True):
            if not _close(asked, mine.sigma_local_encoded):
                raise ProtocolError(
                    "the noise the hub asks for differs from this silo's calibration"
                )
            _check_split(mine)
    encoding = encoding_for(contract, plan, noise, n)
    if len(request.encoding) != len(encoding) or any(
        e.frac_bits != mine.frac_bits or e.limbs != mine.limbs or not _close(e.bound, mine.bound)
        for e, mine in zip(request.encoding, encoding, strict=True)
    ):
        raise ProtocolError("the encoding the hub asks for differs from this silo's")
    if request.dimension != dimension(encoding, plan.cells):
        raise ProtocolError("the request's vector layout differs from the plan's")
    check_plan(encoding, n)
    return Admission(plan=plan, noise=noise, encoding=encoding, epsilon_micro=micro)
