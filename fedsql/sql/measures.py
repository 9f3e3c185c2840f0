"""Measures: the deduplicated partial aggregates per cell, their bounding and sensitivity.

``m0`` is always ``COUNT(*)`` (hidden when the query did not ask for it: the hub needs it to
suppress small cells). Further measures follow in order of first use. AVG(col) is computed as
SUM(col) / COUNT(col), so it contributes (and shares) a sum and a count measure.

Per privacy unit at most k rows reach the aggregate (k = ``max_rows_per_unit``), so one unit
changes a count's cell vector by at most k in L2 norm, and a sum's by at most k * B where each
row's value is clamped to the column's bounds [L, U] and B = max(|L|, |U|).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from fedsql.catalog import Bounds, Column
from fedsql.sql.check_aggregates import aggregate_column
from fedsql.sql.plan import Measure
from fedsql.sql.query import Query

#: Identity of a measure: its kind and the column it reads (None for COUNT(*)).
MeasureKey = tuple[str, str | None]


@dataclass(frozen=True)
class ValueSlot:
    """One per-row value the partial query computes (``a0``, ``a1``, ...) for aggregates."""

    name: str
    column: Column
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
        """The measures an aggregate reads: one for COUNT and SUM, (sum, count) for AVG."""
        column = _argument_name(node)
        if isinstance(node, exp.Count):
            return (self.by_key[("count", column)],)
        if isinstance(node, exp.Sum):
            return (self.by_key[("sum", column)],)
        return (self.by_key[("sum", column)], self.by_key[("count", column)])

    @property
    def count_measure(self) -> Measure:
        """The COUNT(*) measure used for suppression."""
        return self.by_key[("count", None)]


def collect_measures(query: Query) -> MeasureSet:
    """Build the deduplicated measures of a checked query.

    Args:
        query: The resolved query whose aggregates passed ``check_aggregates``.

    Returns:
        The measures (``m0`` = COUNT(*), then first-use order) and value slots.
    """
    table = query.table
    k = table.max_rows_per_unit
    uses: list[tuple[str, Column | None]] = []
    count_star_used = False
    for node in query.aggregates():
        column = aggregate_column(node, table)
        if isinstance(node, exp.Count):
            uses.append(("count", column))
            count_star_used = count_star_used or column is None
        elif isinstance(node, exp.Sum):
            uses.append(("sum", column))
        else:
            uses.extend([("sum", column), ("count", column)])

    summed = {c.name for kind, c in uses if kind == "sum" and c is not None}
    result = MeasureSet()
    for _, column in uses:
        if column is not None and column.name not in result.slot_of:
            clamp = column.bounds if column.name in summed else None
            slot = ValueSlot(
                name=f"a{len(result.slots)}",
                column=column,
                clamp=clamp,
                integral=clamp is not None and _integral(column, clamp),
            )
            result.slots.append(slot)
            result.slot_of[column.name] = slot

    def add(key: MeasureKey, measure: Measure) -> None:
        result.by_key[key] = measure
        result.key_of[measure.name] = key
        result.measures.append(measure)

    count_star = Measure("m0", "count", "COUNT(*)", float(k), 1.0, True, not count_star_used)
    add(("count", None), count_star)
    for kind, column in uses:
        if column is None or (kind, column.name) in result.by_key:
            continue
        name = f"m{len(result.measures)}"
        if kind == "count":
            add(
                (kind, column.name),
                Measure(name, "count", f"COUNT({column.name})", float(k), 1.0, True),
            )
            continue
        slot = result.slot_of[column.name]
        assert slot.clamp is not None, "summed columns are clamped"
        magnitude = float(slot.clamp.magnitude)
        add(
            (kind, column.name),
            Measure(name, "sum", f"SUM({column.name})", k * magnitude, magnitude, slot.integral),
        )
    return result


def _integral(column: Column, bounds: Bounds) -> bool:
    """True when every clamped value of the column is an integer.

    >>> _integral(Column("n", "INTEGER"), Bounds(0, 10))
    True
    >>> _integral(Column("n", "INTEGER"), Bounds(0, 10.5))
    False
    >>> _integral(Column("x", "DOUBLE"), Bounds(0, 10))
    False
    """
    return (
        column.type in ("INTEGER", "BIGINT")
        and float(bounds.lo).is_integer()
        and float(bounds.hi).is_integer()
    )


def _argument_name(node: exp.AggFunc) -> str | None:
    """The column name an aggregate reads, or None for COUNT(*)."""
    argument = node.this
    if isinstance(argument, exp.Star):
        return None
    argument = argument.unnest()
    assert isinstance(argument, exp.Column)
    return str(argument.name)
