"""Measures: the deduplicated partial aggregates per cell, their bounding and sensitivity.

``m0`` is always ``COUNT(*)`` (hidden when the query did not ask for it: the hub needs it to
suppress small cells). Further measures follow in order of first use. Each aggregate of the
query is computed by the hub from measures over one value slot (its argument, ``a0``, ``a1``..):

* ``COUNT(x)`` -> count of x;  ``SUM(x)`` -> sum of x;  ``AVG(x)`` -> sum and count of x
* ``VAR_*(x)`` and ``STDDEV_*(x)`` -> sum of squares, sum and count of x
* ``COUNT(DISTINCT unit)`` -> a distinct count of the unit (under its FILTER condition, if any)
* ``MEDIAN(x)``, ``QUANTILE_CONT(x, q)`` -> a histogram of x over its interval (``quantiles``)

Per privacy unit at most k rows reach the aggregate (k = ``max_rows_per_unit``). A summed value
is clamped to its interval [L, U] (``value_bounds``) with B = max(|L|, |U|), so one unit changes
a cell vector, in L2 norm, by at most: k for a count, k·B for a sum, k·B² for a sum of squares,
sqrt(min(k, cells)) for a distinct count (the unit adds at most 1 to each of at most
min(k, cells) cells), and k for a whole histogram (its bins are one measure group).

Each measure also carries its ``share`` of the query's privacy cost (``budget_split``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from sqlglot import exp

from fedsql.catalog import Bounds
from fedsql.sql.aggregate_calls import aggregate_call
from fedsql.sql.allowlist import AGGREGATES
from fedsql.sql.budget_split import measure_shares, typical_value
from fedsql.sql.check_aggregates import SUMMED, check_call
from fedsql.sql.plan import KeySpace, Measure
from fedsql.sql.quantiles import bin_condition, bin_index, bin_keys
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT

#: Identity of a measure: its kind and the argument it reads (None for COUNT(*)).
MeasureKey = tuple[str, str | None]

#: The measure kinds each aggregate function reads, in the order ``for_aggregate`` returns them.
NEEDS: dict[str, tuple[str, ...]] = {
    "COUNT": ("count",),
    "COUNT_DISTINCT": ("distinct",),
    "SUM": ("sum",),
    "AVG": ("sum", "count"),
    "VAR_SAMP": ("sumsq", "sum", "count"),
    "VAR_POP": ("sumsq", "sum", "count"),
    "STDDEV_SAMP": ("sumsq", "sum", "count"),
    "STDDEV_POP": ("sumsq", "sum", "count"),
    "MEDIAN": bin_keys(),
    "QUANTILE_CONT": bin_keys(),
}


@dataclass(frozen=True)
class ValueSlot:
    """One per-row value the partial query computes (``a0``, ``a1``, ...) for aggregates.

    ``expression`` is the resolved argument; ``clamp`` the interval it is clamped to when it is
    summed (None when it is only counted); ``integral`` says clamped values are integers.
    """

    name: str
    source: str
    expression: exp.Expr
    clamp: Bounds | None
    integral: bool


@dataclass
class MeasureSet:
    """The query's measures, the per-row value slots they read, and how aggregates map to them."""

    measures: list[Measure] = field(default_factory=list)
    slots: list[ValueSlot] = field(default_factory=list)
    by_key: dict[MeasureKey, Measure] = field(default_factory=dict)
    key_of: dict[str, MeasureKey] = field(default_factory=dict)
    slot_of: dict[str, ValueSlot] = field(default_factory=dict)

    def for_aggregate(self, node: exp.AggFunc) -> tuple[Measure, ...]:
        """The measures an aggregate reads, in the order of ``NEEDS``."""
        call = aggregate_call(node)
        source = _source(call.argument)
        return tuple(self.by_key[(kind, source)] for kind in NEEDS[call.function])

    def slot_for(self, node: exp.AggFunc) -> ValueSlot:
        """The value slot an aggregate with an argument reads."""
        source = _source(aggregate_call(node).argument)
        assert source is not None
        return self.slot_of[source]

    @property
    def count_measure(self) -> Measure:
        """The COUNT(*) measure used for suppression."""
        return self.by_key[("count", None)]


def collect_measures(query: Query, keys: tuple[KeySpace, ...] = ()) -> MeasureSet:
    """Build the deduplicated measures of a checked query.

    Args:
        query: The resolved query whose aggregates passed ``check_aggregates``.
        keys: Its key spaces (the number of cells bounds a distinct count's sensitivity).

    Returns:
        The measures (``m0`` = COUNT(*), then first-use order) and value slots.
    """
    table = query.table
    k = table.max_rows_per_unit
    cells = 1
    for key in keys:
        cells *= max(1, len(key.values))
    uses: list[tuple[str, str | None]] = []
    slots: dict[str, tuple[exp.Expr, Bounds | None, bool]] = {}
    count_star_used = False
    for node in query.aggregates():
        call, interval = check_call(node, table)
        source = _source(call.argument)
        if source is None:
            count_star_used = True
        else:
            assert call.argument is not None
            expression, clamp, integral = slots.get(source, (call.argument, None, False))
            if call.function in SUMMED:
                assert interval is not None
                clamp, integral = Bounds(interval.lo, interval.hi), interval.integral
            slots[source] = (expression, clamp, integral)
        uses.extend((kind, source) for kind in NEEDS[call.function])

    result = MeasureSet()
    for source, (expression, clamp, integral) in slots.items():
        slot = ValueSlot(f"a{len(result.slots)}", source, expression, clamp, integral)
        result.slots.append(slot)
        result.slot_of[source] = slot

    def add(key: MeasureKey, measure: Measure) -> None:
        result.by_key[key] = measure
        result.key_of[measure.name] = key
        result.measures.append(measure)

    count_star = Measure("m0", "count", "COUNT(*)", float(k), 1.0, True, not count_star_used)
    add(("count", None), count_star)
    for kind, source in uses:
        if (kind, source) in result.by_key:
            continue
        assert source is not None
        name = f"m{len(result.measures)}"
        add((kind, source), _measure(name, kind, result.slot_of[source], k, cells))
    shares = measure_shares(result.measures, _uses(query, result))
    result.measures = [replace(m, share=shares[m.name]) for m in result.measures]
    by_name = {m.name: m for m in result.measures}
    result.by_key = {key: by_name[m.name] for key, m in result.by_key.items()}
    return result


def _uses(query: Query, measures: MeasureSet) -> dict[str, int]:
    """Measure name -> how many SELECT items, HAVING and ORDER BY expressions read it."""
    uses: dict[str, int] = {}
    for _, expression in query.post_aggregation():
        read: set[str] = set()
        for node in expression.find_all(exp.AggFunc):
            if type(node) in AGGREGATES:
                read.update(m.name for m in measures.for_aggregate(node))
        for name in read:
            uses[name] = uses.get(name, 0) + 1
    return uses


def _measure(name: str, kind: str, slot: ValueSlot, k: int, cells: int) -> Measure:
    """The measure of ``kind`` over ``slot`` with its clip and L2 sensitivity."""
    j = bin_index(kind)
    if j is not None:
        assert slot.clamp is not None, "histogram values are clamped"
        condition = bin_condition(slot.expression, slot.clamp, j).sql(DIALECT)
        return Measure(
            name,
            "bin",
            f"COUNT(CASE WHEN {condition} THEN 1 END)",
            float(k),
            1.0,
            True,
            group=f"histogram of {slot.source}",
        )
    if kind == "count":
        return Measure(name, "count", f"COUNT({slot.source})", float(k), 1.0, True)
    if kind == "distinct":
        sensitivity = math.sqrt(min(k, cells))
        return Measure(name, "distinct", f"COUNT(DISTINCT {slot.source})", sensitivity, 1.0, True)
    assert slot.clamp is not None, "summed values are clamped"
    magnitude = float(slot.clamp.magnitude)
    lo, hi = float(slot.clamp.lo), float(slot.clamp.hi)
    if kind == "sum":
        expression, clip = f"SUM({slot.source})", magnitude
    else:
        expression, clip = f"SUM(POWER({slot.source}, 2))", magnitude * magnitude
    return Measure(
        name,
        "sum" if kind == "sum" else "sumsq",
        expression,
        k * clip,
        clip,
        slot.integral,
        typical=typical_value(kind, lo, hi),
    )


def _source(argument: exp.Expr | None) -> str | None:
    """The canonical text identifying an aggregate argument (None for ``*``)."""
    if argument is None:
        return None
    return argument.sql(DIALECT, comments=False)
