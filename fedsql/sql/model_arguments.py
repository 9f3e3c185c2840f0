"""Model arguments: the target and features of a model aggregate, as bounded columns.

The model call is planned through a surrogate SELECT in which each argument is read by a
``COUNT``, so the ordinary checks resolve every argument to a column of the query's rows: a
table's column, or over joins, CTEs and subqueries a column of the joined rows (``l.value``,
``p.age``). Each must then be numeric with finite contract bounds (the bounds of the contract
column it passes through unchanged) or BOOLEAN; a logistic model's target BOOLEAN or bounded to
[0, 1]. A column a subquery computes has no contract bounds.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.catalog import Bounds, Column
from fedsql.errors import QueryRejected
from fedsql.sql.plan import ModelKind
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT

__all__ = [
    "argument_bounds",
    "argument_column",
    "check_arguments",
    "check_not_unit",
    "surrogate_select",
]

_ARG_PREFIX = "__fedsql_arg"


def surrogate_select(
    select: exp.Select, item_index: int, arguments: list[exp.Expr], name: str
) -> tuple[exp.Select, list[int]]:
    """The SELECT with the model replaced by COUNT(*) and each argument read by a COUNT.

    The ordinary checks then validate WHERE, GROUP BY, the joins and every name, and resolve
    each argument to a column of the query's rows.

    Args:
        select: The analyst's SELECT (parameters bound).
        item_index: The SELECT-list position of the model call.
        arguments: The model call's target and features, as written.
        name: The model function's name, for messages.

    Returns:
        The surrogate SELECT and the SELECT-list position of each argument's COUNT.

    Raises:
        QueryRejected: An argument is not a plain column.
    """
    surrogate = select.copy()
    items = list(surrogate.expressions)
    items[item_index] = exp.Count(this=exp.Star())
    positions = []
    for i, argument in enumerate(arguments):
        if not isinstance(argument.unnest(), exp.Column):
            raise QueryRejected(
                f"{name} takes plain columns, not the expression {argument.sql(DIALECT)}: each "
                "is bounded by its contract bounds"
            )
        positions.append(len(items))
        items.append(exp.alias_(exp.Count(this=argument.unnest().copy()), f"{_ARG_PREFIX}{i}"))
    surrogate.set("expressions", items)
    return surrogate, positions


def argument_column(query: Query, position: int) -> Column:
    """The column (of the query's rows, by its resolved name) the surrogate's COUNT reads.

    Args:
        query: The resolved surrogate query.
        position: The output position of the argument's COUNT.

    Returns:
        The column, with its contract type and bounds.
    """
    node = query.outputs[position].expression
    assert isinstance(node, exp.Count)
    column = query.table.column(str(node.this.name))
    assert column is not None
    return column


def check_not_unit(query: Query, positions: list[int], name: str) -> None:
    """No argument may be the privacy unit column: a patient's id is not a measurement.

    Raises:
        QueryRejected: An argument reads the unit column (named in the message).
    """
    unit = query.table.unit
    for position in positions:
        node = query.outputs[position].expression
        argument = node.this if isinstance(node, exp.Count) else None
        if isinstance(argument, exp.Column) and str(argument.name) == unit:
            raise QueryRejected(
                f"{name} cannot take {unit}, the privacy unit column, as its target or a "
                "feature: it identifies a patient and is not a measurement"
            )


def argument_bounds(column: Column) -> Bounds:
    """The interval an argument is clamped to: its bounds, [0, 1] for a BOOLEAN.

    >>> argument_bounds(Column("smoker", "BOOLEAN"))
    Bounds(lo=0.0, hi=1.0)
    """
    return column.bounds if column.bounds is not None else Bounds(0.0, 1.0)


def check_arguments(query: Query, columns: list[Column], kind: ModelKind, name: str) -> None:
    """Target and features must be bounded numbers (or BOOLEAN), distinct.

    Over joins, CTEs and subqueries a column's bounds are those of the contract column it
    passes through unchanged; a column a subquery computes has none (unless it is BOOLEAN).

    Args:
        query: The resolved surrogate query.
        columns: The target's column then the features'.
        kind: The model kind (a logistic target must be BOOLEAN or bounded to [0, 1]).
        name: The model function's name, for messages.

    Raises:
        QueryRejected: A column named twice, not numeric, or without finite bounds; a logistic
            target that is not a truth value. Messages name the contract column.
    """
    seen: set[str] = set()
    for position, column in enumerate(columns):
        role = "target" if position == 0 else "feature"
        where = _contract_name(query, column.name)
        if column.name in seen:
            raise QueryRejected(f"{name} names column {column.name} twice")
        seen.add(column.name)
        if role == "target" and kind == "logistic":
            lo_hi = (column.bounds.lo, column.bounds.hi) if column.bounds else None
            if column.type != "BOOLEAN" and lo_hi != (0, 1):
                raise QueryRejected(
                    f"the target of {name} must be BOOLEAN (or a number with bounds [0, 1]); "
                    f"{where or column.name} is {column.type}"
                )
            continue
        if column.type == "BOOLEAN":
            continue
        if not column.is_numeric:
            raise QueryRejected(
                f"{name}: the {role} {where or column.name} must be numeric or BOOLEAN"
            )
        if column.bounds is None:
            if where is None:
                raise QueryRejected(
                    f"{name} over {column.name} is not supported: a subquery computes "
                    f"{column.name}, so it has no contract bounds and the model has no known "
                    "sensitivity; use a contract column that has bounds"
                )
            raise QueryRejected(
                f"column {where} has no bounds in the contract, so {name} over it has no known "
                "sensitivity; add `bounds = [lo, hi]` to it"
            )
        if not column.bounds.hi > column.bounds.lo:
            raise QueryRejected(
                f"column {where or column.name} has empty bounds; {name} cannot rescale it"
            )


def _contract_name(query: Query, name: str) -> str | None:
    """``table.column`` of the contract column a query column is, or None when computed."""
    if not query.joined:
        return f"{query.table.name}.{name}"
    assert query.source is not None
    origin = dict(query.source.scope.virtual_columns())[name].origin
    return ".".join(origin) if origin is not None else None
