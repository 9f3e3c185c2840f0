"""What the hub and every silo derive alike from a plan: measure privacy specs and encodings.

Both roles must compute exactly the same noise calibration and fixed-point encoding for a
query (a silo refuses a request whose layout or noise differ from its own), so the derivation
lives once, here, between the roles and the services they combine.

Encoding choice: a measure is sent in one coordinate when its overflow band fits 2^62, and
otherwise in two 32-bit limbs (:mod:`fedsql.secagg.encoding`); a measure that does not fit in
two limbs either is left at two, for :func:`fedsql.secagg.encoding.check_plan` to reject with
its explanation. Fraction bits come from noise calibration. Without noise (test mode) integral
measures use none and other measures the finest precision, up to ``EXACT_FRAC_BITS``, that one
coordinate allows, or two limbs when one coordinate would allow fewer fraction bits than noise
calibration may use (``fedsql.privacy.calibrate.MAX_FRAC_BITS``).
"""

from __future__ import annotations

import math

from fedsql.catalog import Contract
from fedsql.privacy.calibrate import MAX_FRAC_BITS, MeasureSpec, NoisePlan
from fedsql.secagg.encoding import HEADROOM, LIMB_BITS, CoordinateSpec, band
from fedsql.sql.plan import FederatedPlan

__all__ = ["EXACT_FRAC_BITS", "encoding_for", "measure_specs", "spec_for_measure"]

#: Largest fraction precision used when no noise is added (test mode).
EXACT_FRAC_BITS = 40


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


def _finest_frac_bits(bound: float, n: int, limbs: int) -> int:
    """The most fraction bits (0..EXACT_FRAC_BITS) that keep ``n`` silos' noise-free sum in
    ``limbs`` coordinates, one bit short of the limit for the rounding of the bound."""
    if n * bound <= 0:
        return EXACT_FRAC_BITS
    room = HEADROOM << (LIMB_BITS * (limbs - 1))
    bits = math.floor(math.log2(room / (n * bound))) - limbs
    return max(0, min(EXACT_FRAC_BITS, bits))


def spec_for_measure(
    clip: float,
    integral: bool,
    rows_per_silo: int,
    n: int,
    frac_bits: int | None,
    sigma_local: float,
) -> CoordinateSpec:
    """The encoding of one measure, as hub and silos both derive it from the plan.

    Args:
        clip: Largest |value| one row adds (1 for counts, B for sums).
        integral: Rows add whole numbers.
        rows_per_silo: The contract's bound on rows a silo may sum.
        n: Cohort size.
        frac_bits: Fraction bits chosen by noise calibration, or None when no noise is added
            (see the module docstring).
        sigma_local: Each silo's noise scale in encoded units (0 without noise).

    Returns:
        The coordinate spec, with the total noise of ``n`` shares, in one limb if its band fits
        2^62 and otherwise in two.

    >>> spec_for_measure(1.0, True, 1000, 4, None, 0.0).frac_bits
    0
    >>> spec_for_measure(70.0, False, 10**8, 4, None, 0.0).frac_bits
    26
    >>> big = spec_for_measure(5000.0**2, False, 10**8, 4, None, 0.0)
    >>> big.limbs, big.frac_bits
    (2, 38)
    >>> spec_for_measure(1e12, True, 10**8, 4, 0, 10.0).limbs
    2
    """
    bound = clip * rows_per_silo
    sigma_total = math.sqrt(n) * sigma_local
    if frac_bits is None:
        frac_bits = 0 if integral else _finest_frac_bits(bound, n, 1)
        if not integral and frac_bits < MAX_FRAC_BITS:
            frac_bits = max(frac_bits, _finest_frac_bits(bound, n, 2))
    one = CoordinateSpec(bound=bound, frac_bits=frac_bits, sigma_total=sigma_total)
    if band(one, n) <= HEADROOM:
        return one
    return CoordinateSpec(bound=bound, frac_bits=frac_bits, sigma_total=sigma_total, limbs=2)


def encoding_for(
    contract: Contract, plan: FederatedPlan, noise: NoisePlan | None, n: int
) -> tuple[CoordinateSpec, ...]:
    """Per-measure fixed-point encoding: bound = clip x rows per silo, fraction bits, noise, limbs.

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
