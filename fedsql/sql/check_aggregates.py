"""Aggregate check: each COUNT / SUM / AVG takes ``*`` or one plain column that fedsql can bound.

Contribution bounding needs to know, per aggregate, the largest amount one row can add. That is
1 for counts and B = max(|lo|, |hi|) of the column's contract ``bounds`` for sums, so SUM and
AVG need a numeric column with bounds, and arguments must be plain columns (an expression over a
column has no declared bounds). The privacy unit column is never summed, averaged or counted.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.catalog import Column, Table
from fedsql.errors import QueryRejected
from fedsql.sql.allowlist import AGGREGATES
from fedsql.sql.query import Query


def check_aggregates(query: Query) -> None:
    """Check the arguments of every aggregate, and that the query aggregates at all.

    Args:
        query: The resolved query.

    Raises:
        QueryRejected: No aggregate anywhere; COUNT() or COUNT(1); an argument that is not a
            plain column; the unit column inside an aggregate; SUM/AVG over a non-numeric
            column or a column without bounds.
    """
    found = False
    for node in query.aggregates():
        found = True
        aggregate_column(node, query.table)
    if not found:
        raise QueryRejected(
            "the query computes no aggregate; only aggregates leave a clinic. Use COUNT(*), "
            "COUNT(col), SUM(col) or AVG(col)"
        )


def aggregate_column(node: exp.AggFunc, table: Table) -> Column | None:
    """The contract column an aggregate reads, or None for ``COUNT(*)``; checks it is allowed.

    Args:
        node: A resolved COUNT, SUM or AVG call.
        table: The table the query reads.

    Returns:
        The column argument, or None for ``COUNT(*)``.

    Raises:
        QueryRejected: The argument is missing, not a plain column, the unit column, or (for
            SUM / AVG) not numeric or without bounds.
    """
    name = AGGREGATES[type(node)]
    argument = node.this
    if isinstance(node, exp.Count) and isinstance(argument, exp.Star):
        return None
    if argument is None:
        raise QueryRejected(f"{name}() needs an argument; write {name}(*)")
    if node.expressions:
        raise QueryRejected(f"{name} takes one column, not several")
    argument = argument.unnest()
    if isinstance(argument, exp.Literal | exp.Null | exp.Boolean):
        raise QueryRejected(
            f"{name}({argument.sql('duckdb')}) is not supported; "
            + ("write COUNT(*) to count rows" if name == "COUNT" else f"{name} a column")
        )
    if not isinstance(argument, exp.Column):
        raise QueryRejected(
            f"{name} takes a plain column, not the expression {argument.sql('duckdb')}: each "
            f"column is bounded by its contract bounds. Move arithmetic outside the aggregate "
            f"(e.g. 2 * SUM(cost) instead of SUM(2 * cost))"
        )
    column = table.column(str(argument.name))
    assert column is not None, "resolved columns exist"
    if column.name == table.unit:
        if name == "COUNT":
            raise QueryRejected(
                f"COUNT({column.name}) counts rows of the privacy unit column; write COUNT(*) "
                "(COUNT(DISTINCT unit) is coming later)"
            )
        raise QueryRejected(
            f"{name}({column.name}) is not allowed: {column.name} is the privacy unit column "
            f"of {table.name}"
        )
    if name == "COUNT":
        return column
    if not column.is_numeric:
        raise QueryRejected(
            f"{name} needs a numeric column; {table.name}.{column.name} is {column.type}"
        )
    if column.bounds is None:
        raise QueryRejected(
            f"column {table.name}.{column.name} has no bounds in the contract, so {name} over "
            f"it has no known sensitivity; add `bounds = [lo, hi]` to it"
        )
    return column
