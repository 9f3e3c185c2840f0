"""Budget split: each measure's share of one query's privacy cost, chosen to minimise error.

A query spends one rho (zCDP) across its measures: measure j with L2 sensitivity Delta_j and
cost rho_j gets noise sigma_j = Delta_j / sqrt(2 rho_j), and sum_j rho_j = rho.

Objective: the sum of squared relative errors of what the analyst asked for, at a typical cell.
Every output reads its measures through counts, sums and ratios of them (COUNT, SUM,
AVG = S / C, prevalence = SUM(case) / COUNT(*), VAR from sums of squares); to first order the
relative variance of such an output is the sum over the measures it reads of
sigma_j² / value_j², and at a cell of n typical rows value_j = n * t_j, where t_j is the value
one typical row adds (``typical``: 1 for counts, the midpoint v = (|L| + |U|) / 2 of the clamp
interval's magnitudes for sums, v² + ((U - L) / 4)² for sums of squares). So fedsql minimises

    sum_j w_j sigma_j²   with   w_j = u_j / t_j²,

where u_j is the number of SELECT items, HAVING and ORDER BY expressions that read measure j
(the hidden COUNT(*) used only to suppress small cells gets ``HIDDEN_WEIGHT``; a quantile's
histogram, one measure group noised as one vector, is weighted like one count and its share is
spread evenly over its bins). Substituting
sigma_j² = Delta_j² / (2 rho_j) and minimising under sum_j rho_j = rho (Lagrange) gives

    rho_j = rho * sqrt(w_j) Delta_j / sum_i sqrt(w_i) Delta_i.

For AVG this puts about twice the budget on the sum as on the count when the values span
[0, B]; an equal split is the special case of equal sqrt(w_j) Delta_j.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from fedsql.sql.plan import Measure

#: Weight of a hidden measure (COUNT(*) kept only to suppress small cells): its relative error
#: matters a quarter as much as a released count's.
HIDDEN_WEIGHT = 0.25


def measure_shares(measures: Sequence[Measure], uses: Mapping[str, int]) -> dict[str, float]:
    """Each measure's share of the query's rho, normalised to sum to 1.

    Args:
        measures: The query's measures, with ``sensitivity`` and ``typical`` set.
        uses: Measure name -> how many post-aggregation expressions read it.

    Returns:
        Measure name -> share in (0, 1].

    >>> count = Measure("m0", "count", "COUNT(*)", 1.0, 1.0, True)
    >>> total = Measure("m1", "sum", "SUM(x)", 100.0, 100.0, True, typical=50.0)
    >>> measure_shares([count, total], {"m0": 1, "m1": 1})
    {'m0': 0.3333333333333333, 'm1': 0.6666666666666666}
    """
    raw: dict[str, float] = {}
    members: dict[str, int] = {}
    for measure in measures:
        if measure.group:
            members[measure.group] = members.get(measure.group, 0) + 1
    for measure in measures:
        used = uses.get(measure.name, 0)
        weight = float(used) if used > 0 else HIDDEN_WEIGHT
        typical = max(abs(measure.typical), 1e-12)
        raw[measure.name] = math.sqrt(weight) / typical * measure.sensitivity
        if measure.group:
            # a group is one vector: its share is split evenly among its members
            raw[measure.name] /= members[measure.group]
    total = sum(raw.values())
    if not total > 0.0 or not math.isfinite(total):
        return {name: 1.0 / len(raw) for name in raw}
    return {name: value / total for name, value in raw.items()}


def typical_value(kind: str, lo: float, hi: float) -> float:
    """The value one typical row adds to a sum (``sum``) or a sum of squares (``sumsq``).

    Args:
        kind: ``sum`` or ``sumsq``.
        lo: Lower end of the clamp interval.
        hi: Upper end.

    Returns:
        v = (|lo| + |hi|) / 2 for a sum; v² + ((hi - lo) / 4)² for a sum of squares.

    >>> typical_value("sum", 0, 110), typical_value("sumsq", 0, 4)
    (55.0, 5.0)
    """
    middle = (abs(lo) + abs(hi)) / 2.0
    if kind == "sum":
        return middle
    return middle * middle + ((hi - lo) / 4.0) ** 2
