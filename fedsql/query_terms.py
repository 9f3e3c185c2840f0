"""What the hub and every silo derive alike from a plan: measure privacy specs and encodings.

Both roles must compute exactly the same noise calibration and fixed-point encoding for a
query (a silo refuses a request whose layout or noise differ from its own), so the derivation
lives once, here, between the roles and the services they combine.
"""

from __future__ import annotations

from fedsql.catalog import Contract
from fedsql.privacy.calibrate import MeasureSpec, NoisePlan
from fedsql.secagg.encoding import CoordinateSpec, spec_for_measure
from fedsql.sql.plan import FederatedPlan

__all__ = ["encoding_for", "measure_specs"]


def measure_specs(plan: FederatedPlan) -> list[MeasureSpec]:
    """The privacy view of a plan's measures."""
    return [
        MeasureSpec(
            name=m.name,
            sensitivity=m.sensitivity,
            clip=m.clip,
            integral=m.integral,
            cells=plan.cells,
            row_cap=plan.row_cap,
            share=m.share,
            group=m.group,
        )
        for m in plan.measures
    ]


def encoding_for(
    contract: Contract, plan: FederatedPlan, noise: NoisePlan | None, n: int
) -> tuple[CoordinateSpec, ...]:
    """Per-measure fixed-point encoding: bound = clip x rows per silo, fraction bits, noise.

    Args:
        contract: The federation contract (its ``max_rows_per_silo``).
        plan: The query's plan.
        noise: Its noise plan, or None when noise is off (tests).
        n: The cohort size.

    Returns:
        One coordinate spec per measure, in plan order.
    """
    return tuple(
        spec_for_measure(
            m.clip,
            m.integral,
            contract.secagg.max_rows_per_silo,
            n,
            None if noise is None else noise.measures[j].frac_bits,
            0.0 if noise is None else noise.measures[j].sigma_local_encoded,
        )
        for j, m in enumerate(plan.measures)
    )
