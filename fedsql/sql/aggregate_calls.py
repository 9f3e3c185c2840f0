"""Aggregate calls: FILTER rewritten into CASE, and each call read as (function, argument).

``agg(x) FILTER (WHERE c)`` is ``agg(CASE WHEN c THEN x END)`` for every supported aggregate
(they all skip NULLs), and ``COUNT(*) FILTER (WHERE c)`` is ``COUNT(CASE WHEN c THEN 1 END)``.
After :func:`rewrite_filters` no ``Filter`` node is left, so every later step sees plain calls
whose argument is a row expression (the FILTER condition included).

:func:`aggregate_call` names what a call computes: ``COUNT`` (argument None for ``COUNT(*)``),
``COUNT_DISTINCT`` (of the privacy unit, possibly under a FILTER condition), ``SUM``, ``AVG``,
``VAR_SAMP``, ``VAR_POP``, ``STDDEV_SAMP`` and ``STDDEV_POP``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from fedsql.sql.allowlist import AGGREGATES
from fedsql.sql.query import Query


@dataclass(frozen=True)
class AggregateCall:
    """What one aggregate call computes: its function name and row-level argument."""

    function: str
    argument: exp.Expr | None


def rewrite_filters(query: Query) -> None:
    """Replace every ``agg(...) FILTER (WHERE c)`` in the query's post-aggregation expressions.

    The privacy unit column read only as the argument of ``COUNT(DISTINCT ...)`` is then no
    longer listed among the columns the query reads (``referenced``): it counts units the way
    the row cap does, and is neither filtered nor output.

    Args:
        query: The resolved query; its outputs, HAVING and ORDER BY are rewritten in place.

    >>> import sqlglot
    >>> from fedsql.catalog import Column, Table
    >>> from fedsql.sql.query import Output
    >>> t = Table("t", "id", 1, (Column("id", "BIGINT"), Column("age", "INTEGER")))
    >>> q = Query(t, [Output("n", sqlglot.parse_one("COUNT(*) FILTER (WHERE age > 65)"))])
    >>> rewrite_filters(q)
    >>> q.outputs[0].expression.sql("duckdb")
    'COUNT(CASE WHEN age > 65 THEN 1 END)'
    """
    for output in query.outputs:
        output.expression = _rewrite(output.expression)
    if query.having is not None:
        query.having = _rewrite(query.having)
    for ordered in query.order:
        ordered.set("this", _rewrite(ordered.this))
    unit = query.table.unit
    if unit in query.referenced and not any(
        str(column.name) == unit
        for expression in _row_level_reads(query)
        for column in expression.find_all(exp.Column)
    ):
        query.referenced.discard(unit)


def _row_level_reads(query: Query) -> list[exp.Expr]:
    """Every expression of the query that reads rows, except COUNT(DISTINCT unit)'s unit."""
    found: list[exp.Expr] = [*query.group_by]
    if query.where is not None:
        found.append(query.where)
    for node in query.aggregates():
        argument = node.this
        if isinstance(argument, exp.Distinct):
            for inner in argument.expressions:
                inner = inner.unnest()
                if isinstance(inner, exp.Case):
                    found.extend(branch.this for branch in inner.args.get("ifs") or [])
                elif not isinstance(inner, exp.Column):
                    found.append(inner)
        elif argument is not None:
            found.append(argument)
    for _, expression in query.post_aggregation():
        found.extend(
            node
            for node in expression.walk(prune=lambda n: isinstance(n, exp.AggFunc))
            if isinstance(node, exp.Column)
        )
    return found


def _rewrite(expression: exp.Expr) -> exp.Expr:
    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Filter) or not isinstance(node.this, exp.AggFunc):
            return node
        call = node.this.copy()
        condition = node.expression.this.copy()
        argument = call.this
        if isinstance(call, exp.Count) and isinstance(argument, exp.Star):
            value: exp.Expr = exp.Literal.number(1)
        elif isinstance(argument, exp.Distinct):
            value = argument.expressions[0].copy()
        else:
            value = argument.copy()
        guarded = exp.Case(ifs=[exp.If(this=condition, true=value)])
        if isinstance(argument, exp.Distinct):
            call.set("this", exp.Distinct(expressions=[guarded]))
        else:
            call.set("this", guarded)
        return call

    return expression.transform(replace)


def aggregate_call(node: exp.AggFunc) -> AggregateCall:
    """The function and argument of a (FILTER-free) aggregate call.

    Args:
        node: An aggregate on the allowlist.

    Returns:
        The call; ``argument`` is None for ``COUNT(*)``.

    >>> import sqlglot
    >>> aggregate_call(sqlglot.parse_one("COUNT(DISTINCT patient_id)")).function
    'COUNT_DISTINCT'
    >>> aggregate_call(sqlglot.parse_one("stddev(bmi)")).function
    'STDDEV_SAMP'
    """
    name = AGGREGATES[type(node)]
    argument = node.this
    if isinstance(node, exp.Count) and isinstance(argument, exp.Star):
        return AggregateCall("COUNT", None)
    if isinstance(argument, exp.Distinct):
        inner = argument.expressions[0] if argument.expressions else None
        return AggregateCall(f"{name}_DISTINCT", None if inner is None else inner.unnest())
    if name == "STDDEV":
        name = "STDDEV_SAMP"
    return AggregateCall(name, None if argument is None else argument.unnest())
