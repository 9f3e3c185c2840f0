"""Explanation: plain-language lines on what a plan computes and how it is bounded.

Table and row cap, each measure with its clamp bounds and sensitivity, key spaces and their sizes,
cells and the partial vector length d.
"""

from __future__ import annotations

from fedsql.sql.measures import MeasureSet
from fedsql.sql.plan import KeySpace, OutputColumn
from fedsql.sql.query import Query

#: Above this partial vector length the explanation warns about noise-sampling time.
LARGE_DIMENSION = 100_000


def explain(
    query: Query,
    keys: tuple[KeySpace, ...],
    measures: MeasureSet,
    outputs: tuple[OutputColumn, ...],
) -> tuple[str, ...]:
    """Human-readable lines describing what the plan computes and how it is bounded.

    Args:
        query: The resolved query.
        keys: Its key spaces.
        measures: Its measures.
        outputs: Its output columns.

    Returns:
        The explanation lines, in a fixed order.
    """
    table = query.table
    k = table.max_rows_per_unit
    lines = [
        f"table {table.name}: privacy unit {table.unit}; each clinic keeps at most k = {k} "
        f"row(s) per unit, chosen by a keyed random order after WHERE (contract "
        f"max_rows_per_unit)",
    ]
    if query.joined:
        assert query.source is not None
        lines = query.source.explanation()
    if query.where is not None:
        lines.append("WHERE runs inside each clinic, before the row cap")
    for measure in measures.measures:
        note = " (hidden: used to suppress small cells)" if measure.hidden else ""
        if measure.kind == "count":
            lines.append(
                f"measure {measure.name} = {measure.expression}{note}: each row adds at most 1; "
                f"L2 sensitivity k = {_number(measure.sensitivity)}"
            )
            continue
        column = measures.key_of[measure.name][1]
        assert column is not None
        slot = measures.slot_of[column]
        assert slot.clamp is not None
        lo, hi = _number(slot.clamp.lo), _number(slot.clamp.hi)
        lines.append(
            f"measure {measure.name} = {measure.expression}{note}: values clamped to "
            f"[{lo}, {hi}] (contract bounds), B = {_number(measure.clip)}; L2 sensitivity "
            f"k * B = {k} * {_number(measure.clip)} = {_number(measure.sensitivity)}"
        )
    cells = 1
    for key in keys:
        cells *= len(key.values)
        lines.append(
            f"key {key.name} = {key.source} ({key.sql_type}): {len(key.values)} value(s) from "
            f"the contract domain, not from data"
        )
    dimension = cells * len(measures.measures)
    lines.append(
        f"cells: {cells}; measures: {len(measures.measures)}; partial vector length d = {dimension}"
    )
    if dimension > LARGE_DIMENSION:
        lines.append(
            f"large partial vector (d = {dimension}): noise sampling and secure aggregation "
            "cost grow with d; consider coarser keys"
        )
    for output in outputs:
        if output.kind == "avg":
            lines.append(
                f"output {output.name} = {output.measures[0]} / {output.measures[1]}, clamped "
                f"to [{_number(output.lower)}, {_number(output.upper)}] (post-processing)"
            )
    return tuple(lines)


def _number(value: float | None) -> str:
    """Integers without a trailing .0, other values as Python prints them.

    >>> _number(3.0), _number(2.5), _number(None)
    ('3', '2.5', '-')
    """
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
