"""Explanation: plain-language lines on what a plan computes and how it is bounded.

Table and row cap, each measure with its clamp bounds and sensitivity, the budget split across
measures, key spaces and their sizes, cells and the partial vector length d.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.catalog import SILO_COLUMN
from fedsql.sql.measures import MeasureSet
from fedsql.sql.plan import KeySpace, Measure, OutputColumn
from fedsql.sql.quantiles import HISTOGRAM_BINS, bin_width
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
    groups: dict[str, list[Measure]] = {}
    for measure in measures.measures:
        if measure.group:
            groups.setdefault(measure.group, []).append(measure)
    for measure in measures.measures:
        if not measure.group:
            lines.append(_measure_line(measure, measures, k))
        elif measure is groups[measure.group][0]:
            lines.append(_histogram_line(groups[measure.group], measures, k))
    total = sum(m.share for m in measures.measures)
    parts = []
    for measure in measures.measures:
        if not measure.group:
            parts.append(f"{measure.name} {measure.share / total:.1%}")
        elif measure is groups[measure.group][0]:
            members = groups[measure.group]
            share = sum(m.share for m in members) / total
            parts.append(f"{members[0].name}..{members[-1].name} {share:.1%}")
    split = ", ".join(parts)
    lines.append(
        f"budget split: rho_j proportional to sqrt(w_j) * sensitivity_j, w_j = (uses of "
        f"measure j) / (typical per-row value)^2, which minimises the summed squared relative "
        f"error at a typical cell: {split}"
    )
    cells = 1
    for key in keys:
        cells *= len(key.values)
        if key.source == SILO_COLUMN and query.per_silo:
            lines.append(
                f"key {key.name} = {SILO_COLUMN} ({key.sql_type}): {len(key.values)} clinic id(s) "
                "from the contract's silos list, not from data; per-clinic breakdown: each silo "
                "fills only its own id's cells (every clinic in the cohort must allow it, "
                "queries.allow_per_clinic)"
            )
            continue
        derived = "" if table.column(key.source) is not None else ", evaluated over them"
        lines.append(
            f"key {key.name} = {key.source} ({key.sql_type}): {len(key.values)} value(s) from "
            f"the contract domain{derived}, not from data"
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


def _measure_line(measure: Measure, measures: MeasureSet, k: int) -> str:
    """One line on a measure: what one row adds and its L2 sensitivity."""
    note = " (hidden: used to suppress small cells)" if measure.hidden else ""
    head = f"measure {measure.name} = {measure.expression}{note}"
    if measure.kind == "count":
        return f"{head}: each row adds at most 1; L2 sensitivity k = {_number(measure.sensitivity)}"
    if measure.kind == "distinct":
        return (
            f"{head}: a patient adds at most 1 to each of at most min(k, cells) cells; L2 "
            f"sensitivity sqrt(min(k, cells)) = {measure.sensitivity:.6g}"
        )
    source = measures.key_of[measure.name][1]
    assert source is not None
    slot = measures.slot_of[source]
    assert slot.clamp is not None
    lo, hi = _number(slot.clamp.lo), _number(slot.clamp.hi)
    origin = (
        "contract bounds"
        if isinstance(slot.expression, exp.Column)
        else "derived from the contract bounds by interval arithmetic"
    )
    if measure.kind == "sum":
        return (
            f"{head}: values clamped to [{lo}, {hi}] ({origin}), B = {_number(measure.clip)}; "
            f"L2 sensitivity k * B = {k} * {_number(measure.clip)} = "
            f"{_number(measure.sensitivity)}"
        )
    return (
        f"{head}: values clamped to [{lo}, {hi}] ({origin}) then squared, B^2 = "
        f"{_number(measure.clip)}; L2 sensitivity k * B^2 = {k} * {_number(measure.clip)} = "
        f"{_number(measure.sensitivity)}"
    )


def _histogram_line(members: list[Measure], measures: MeasureSet, k: int) -> str:
    """One line on a quantile histogram (a measure group)."""
    source = measures.key_of[members[0].name][1]
    assert source is not None
    slot = measures.slot_of[source]
    assert slot.clamp is not None
    return (
        f"measures {members[0].name}..{members[-1].name} = histogram of {source}: "
        f"{HISTOGRAM_BINS} bins of width {bin_width(slot.clamp):.6g} over "
        f"[{_number(slot.clamp.lo)}, {_number(slot.clamp.hi)}] (values clamped to it); each row "
        f"adds 1 to one bin, so the whole histogram has L2 sensitivity k = {k} and is noised "
        f"as one vector"
    )


def _number(value: float | None) -> str:
    """Integers without a trailing .0, other values as Python prints them.

    >>> _number(3.0), _number(2.5), _number(None)
    ('3', '2.5', '-')
    """
    if value is None:
        return "-"
    return str(int(value)) if float(value).is_integer() else repr(float(value))
