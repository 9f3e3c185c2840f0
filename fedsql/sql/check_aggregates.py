"""Aggregate check: every aggregate reads a row expression that fedsql can bound, never the unit.

Contribution bounding needs to know, per aggregate, the largest amount one row can add: 1 for
counts, and for SUM, AVG, VAR and STDDEV the largest magnitude of the argument, derived from the
contract ``bounds`` of the columns it reads (``value_bounds``). The privacy unit column is never
summed, averaged or counted row by row; ``COUNT(DISTINCT <unit>)`` (optionally with FILTER)
counts patients.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.catalog import Table
from fedsql.errors import QueryRejected
from fedsql.sql.aggregate_calls import AggregateCall, aggregate_call
from fedsql.sql.quantiles import quantile_level
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT
from fedsql.sql.value_bounds import Interval, value_interval

#: Aggregates computed from the argument's clamped value (they need bounds): sums of it, or a
#: histogram over its interval.
SUMMED = frozenset(
    {"SUM", "AVG", "VAR_SAMP", "VAR_POP", "STDDEV_SAMP", "STDDEV_POP", "MEDIAN", "QUANTILE_CONT"}
)


def check_aggregates(query: Query) -> None:
    """Check the arguments of every aggregate, and that the query aggregates at all.

    Args:
        query: The resolved query, FILTER clauses rewritten (``rewrite_filters``).

    Raises:
        QueryRejected: No aggregate anywhere; COUNT() or COUNT(1); several arguments; the unit
            column inside an aggregate other than COUNT(DISTINCT unit); COUNT(DISTINCT) of
            anything else; SUM / AVG / VAR / STDDEV over a value without bounds.
    """
    found = False
    for node in query.aggregates():
        found = True
        check_call(node, query.table)
    if not found:
        raise QueryRejected(
            "the query computes no aggregate; only aggregates leave a clinic. Use COUNT(*), "
            "COUNT(DISTINCT unit), SUM, AVG, VAR_SAMP or STDDEV_SAMP"
        )


def check_call(node: exp.AggFunc, table: Table) -> tuple[AggregateCall, Interval | None]:
    """Check one aggregate call and derive the interval of its summed argument.

    Args:
        node: A resolved, FILTER-free aggregate call.
        table: The table the query reads.

    Returns:
        The call and, for the summed aggregates, the interval its argument is clamped to.

    Raises:
        QueryRejected: The call is not allowed (see :func:`check_aggregates`).
    """
    call = aggregate_call(node)
    name = call.function
    if node.expressions:
        raise QueryRejected(f"{name} takes one argument, not several")
    if node.this is None:
        raise QueryRejected(f"{name}() needs an argument; write {name}(*)")
    if call.function == "COUNT" and call.argument is None:
        return call, None
    argument = call.argument
    if argument is None:
        raise QueryRejected(f"{name}() needs an argument; write {name}(*)")
    if isinstance(argument, exp.Literal | exp.Null | exp.Boolean):
        raise QueryRejected(
            f"{name}({argument.sql(DIALECT)}) is not supported; "
            + ("write COUNT(*) to count rows" if name == "COUNT" else f"{name} a column")
        )
    if name == "COUNT_DISTINCT":
        _check_distinct(argument, table)
        return call, None
    if _reads_unit(argument, table):
        if name == "COUNT":
            raise QueryRejected(
                f"COUNT({argument.sql(DIALECT)}) counts rows of the privacy unit column; write "
                f"COUNT(*) to count rows or COUNT(DISTINCT {table.unit}) to count patients"
            )
        raise QueryRejected(
            f"{name}({argument.sql(DIALECT)}) is not allowed: {table.unit} is the privacy unit "
            f"column of {table.name}"
        )
    if name == "COUNT":
        return call, None
    if name == "QUANTILE_CONT":
        quantile_level(node)
    interval = value_interval(argument, table, name)
    if interval is None:
        raise QueryRejected(f"{name}({argument.sql(DIALECT)}) is always NULL; {name} a column")
    return call, interval


def _check_distinct(argument: exp.Expr, table: Table) -> None:
    """COUNT(DISTINCT x): x is the unit column, or CASE WHEN c THEN unit END from a FILTER."""
    value = argument
    if (
        isinstance(argument, exp.Case)
        and len(argument.args.get("ifs") or []) == 1
        and argument.args.get("default") is None
    ):
        branch = argument.args["ifs"][0]
        if _reads_unit(branch.this, table):
            raise QueryRejected(
                f"the FILTER condition of COUNT(DISTINCT {table.unit}) cannot read "
                f"{table.unit}; filter on other columns"
            )
        value = branch.args["true"].unnest()
    if not (isinstance(value, exp.Column) and str(value.name) == table.unit):
        raise QueryRejected(
            f"COUNT(DISTINCT {argument.sql(DIALECT)}) is not supported: only COUNT(DISTINCT "
            f"{table.unit}) (the privacy unit, to count patients) has a known sensitivity; "
            "count groups with GROUP BY instead"
        )


def _reads_unit(expression: exp.Expr, table: Table) -> bool:
    return any(str(c.name) == table.unit for c in expression.find_all(exp.Column))
