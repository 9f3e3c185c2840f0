"""Expression check: every node of every clause is on the allowlist and aggregates stand right.

Aggregates may appear in SELECT, HAVING and ORDER BY only, unnested; DISTINCT only in COUNT (of
the privacy unit, checked after name resolution), FILTER (WHERE ...) on any of them; every
function, operator, literal and CAST type must be one the allowlist admits.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.errors import QueryRejected
from fedsql.sql.allowlist import (
    AGGREGATES,
    CAST_TYPES,
    DATE_PART_HOLDERS,
    LEAVES,
    OPERATORS,
    allowed_function_names,
    function_name,
    is_allowed_function,
)

_WHERE_AGGREGATE = "filter groups on aggregates with HAVING instead"

#: Refused constructs that are not function calls, with what to tell the analyst.
_CONSTRUCTS: dict[type[exp.Expr], str] = {
    exp.Array: "list literals ([...]) are not supported",
    exp.Struct: "struct literals ({...}) are not supported",
    exp.Bracket: "subscripts (x[...]) are not supported",
    exp.Lambda: "lambda functions are not supported",
    exp.Collate: "COLLATE is not supported; use lower() or ILIKE for case-insensitive matches",
    exp.Unnest: "UNNEST is not supported",
    exp.Tuple: "row values ((a, b)) are not supported; compare columns one by one",
    exp.Dot: "field access (a.b.c) is not supported",
    exp.ByteString: "escape strings (e'...') are not supported; use a plain string literal",
    exp.Parameter: "session parameters are not supported",
    exp.SessionParameter: "session parameters are not supported",
    exp.Any: "ANY / SOME is not supported; use IN (...)",
    exp.All: "ALL (...) is not supported; combine comparisons with AND",
    exp.Glob: "GLOB is not supported; use LIKE",
    exp.SimilarTo: "SIMILAR TO is not supported; use LIKE or ILIKE",
    exp.RegexpLike: "regular expressions (REGEXP_MATCHES) are not supported; use LIKE or ILIKE",
}
_REFUSED = tuple(_CONSTRUCTS)


def check_expressions(select: exp.Select) -> None:
    """Check every expression of the SELECT against the allowlist, clause by clause.

    Args:
        select: The parsed SELECT with parameters bound (clauses already checked).

    Raises:
        QueryRejected: ``SELECT *``, a function outside the allowlist, a window function, a
            subquery, MIN/MAX or another unsupported aggregate, DISTINCT inside an aggregate
            other than COUNT, an aggregate in a FILTER condition, a nested aggregate, an
            aggregate in WHERE or GROUP BY, a CAST to an unsupported type, a non-literal IN
            list, ...

    >>> import sqlglot
    >>> check_expressions(sqlglot.parse_one("SELECT AVG(x) FROM t WHERE y > 1", read="duckdb"))
    >>> check_expressions(sqlglot.parse_one("SELECT MAX(x) FROM t", read="duckdb"))
    Traceback (most recent call last):
    fedsql.errors.QueryRejected: MAX in SELECT is not supported: it would release one patient's \
value. Use a quantile instead (MEDIAN(col) or QUANTILE_CONT(col, 0.95), from a noisy histogram), \
or COUNT(*) with a WHERE threshold
    """
    for item in select.expressions:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            _reject_star(item)
        _check(item.this if isinstance(item, exp.Alias) else item, "SELECT", aggregates=True)
    where = select.args.get("where")
    if where is not None:
        _check(where.this, "WHERE", aggregates=False, subqueries=True)
    group = select.args.get("group")
    if group is not None:
        for key in group.expressions:
            _check(key, "GROUP BY", aggregates=False)
    having = select.args.get("having")
    if having is not None:
        _check(having.this, "HAVING", aggregates=True)
    order = select.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            if isinstance(ordered.this, exp.Var) and ordered.this.name.upper() == "ALL":
                raise QueryRejected("ORDER BY ALL is not supported; list the sort keys")
            _check(ordered.this, "ORDER BY", aggregates=True)


def is_semi_join(node: exp.Expr) -> bool:
    """True for ``x [NOT] IN (SELECT ...)`` and ``EXISTS (SELECT ...)`` (checked by row_source).

    >>> import sqlglot
    >>> is_semi_join(sqlglot.parse_one("a IN (SELECT b FROM t)", read="duckdb"))
    True
    >>> is_semi_join(sqlglot.parse_one("a IN (1, 2)", read="duckdb"))
    False
    """
    return isinstance(node, exp.Exists) or (
        isinstance(node, exp.In) and node.args.get("query") is not None
    )


def check_row_level(expression: exp.Expr, clause: str, *, subqueries: bool = False) -> None:
    """Check a row-level expression of a subquery (no aggregates) against the allowlist.

    Args:
        expression: A SELECT item or WHERE condition of a subquery or CTE.
        clause: Where it stands, for messages.
        subqueries: Leave IN / EXISTS subqueries to ``row_source`` (WHERE conditions only).

    Raises:
        QueryRejected: As :func:`check_expressions`; aggregates are refused too.
    """
    _check(expression, clause, aggregates=False, subqueries=subqueries)


def _check(root: exp.Expr, clause: str, *, aggregates: bool, subqueries: bool = False) -> None:
    """Walk one clause expression and refuse the first node that is not allowed.

    With ``subqueries``, IN / EXISTS subqueries are skipped: ``row_source`` checks them.
    """

    def prune(node: exp.Expr) -> bool:
        return isinstance(node, exp.DataType) or (subqueries and is_semi_join(node))

    for node in root.walk(prune=prune):
        if subqueries and is_semi_join(node):
            if isinstance(node, exp.In):
                _check(node.this, clause, aggregates=aggregates)
            continue
        if isinstance(node, exp.AggFunc):
            _check_aggregate(node, clause, aggregates=aggregates)
        elif isinstance(node, exp.Filter):
            if not isinstance(node.this, exp.AggFunc):
                raise QueryRejected(f"FILTER applies to aggregates only (in {clause})")
        elif isinstance(node, exp.Where) and isinstance(node.parent, exp.Filter):
            if node.find(exp.AggFunc) is not None:
                raise QueryRejected(
                    "an aggregate inside FILTER (WHERE ...) is not allowed; FILTER conditions "
                    "are row-level"
                )
        elif isinstance(node, exp.Distinct) and isinstance(node.parent, exp.Count):
            if len(node.expressions) != 1:
                raise QueryRejected("COUNT(DISTINCT ...) takes one column, the privacy unit")
        elif isinstance(node, exp.Window):
            raise QueryRejected(
                f"window functions (OVER ...) are not supported in {clause}; "
                "aggregate with GROUP BY instead"
            )
        elif isinstance(node, exp.Subquery | exp.Query | exp.Exists):
            raise QueryRejected(
                f"subqueries are not supported in {clause}; use them in FROM, or in WHERE as "
                "unit [NOT] IN (SELECT unit ...) or [NOT] EXISTS (SELECT ... WHERE "
                "inner.unit = outer.unit ...)"
            )
        elif isinstance(node, exp.Star):
            if not (isinstance(node.parent, exp.Count) and node.arg_key == "this"):
                _reject_star(node)
        elif isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                _reject_star(node)
        elif isinstance(node, exp.Identifier):
            if not isinstance(node.parent, exp.Column):
                raise QueryRejected(f"{_describe(node.parent or node)} (in {clause})")
        elif isinstance(node, exp.DataType):
            _check_cast_type(node, clause)
        elif isinstance(node, exp.Var):
            if not isinstance(node.parent, DATE_PART_HOLDERS):
                raise QueryRejected(f"the keyword {node.name.upper()} is not supported in {clause}")
        elif isinstance(node, exp.Placeholder):
            raise QueryRejected("the query has an unbound parameter placeholder")
        elif isinstance(node, exp.In):
            _check_in_list(node, clause)
        elif isinstance(node, OPERATORS + LEAVES):
            continue
        elif isinstance(node, _REFUSED):
            raise QueryRejected(f"{_describe(node)} (in {clause})")
        elif isinstance(node, exp.Func):
            if not is_allowed_function(node):
                raise QueryRejected(
                    f"function {function_name(node)} is not allowed (in {clause}); allowed "
                    f"functions: {', '.join(allowed_function_names())}"
                )
        else:
            raise QueryRejected(f"{_describe(node)} (in {clause})")


def _check_aggregate(node: exp.AggFunc, clause: str, *, aggregates: bool) -> None:
    """An aggregate must be COUNT/SUM/AVG, placed where aggregates may be, not nested."""
    name = AGGREGATES.get(type(node))
    if isinstance(node, exp.Min | exp.Max):
        raise QueryRejected(
            f"{function_name(node)} in {clause} is not supported: it would release one "
            "patient's value. Use a quantile instead (MEDIAN(col) or QUANTILE_CONT(col, 0.95), "
            "from a noisy histogram), or COUNT(*) with a WHERE threshold"
        )
    if isinstance(node, exp.Quantile | exp.PercentileDisc):
        raise QueryRejected(
            f"{function_name(node)} in {clause} is not supported: a discrete quantile is one "
            "patient's value. Use QUANTILE_CONT(col, q) or MEDIAN(col)"
        )
    if name is None:
        raise QueryRejected(
            f"aggregate {function_name(node)} is not supported (in {clause}); use COUNT, "
            "COUNT(DISTINCT unit), SUM, AVG, VAR_SAMP, VAR_POP, STDDEV_SAMP, STDDEV_POP, MEDIAN "
            "or QUANTILE_CONT"
        )
    if not aggregates:
        advice = _WHERE_AGGREGATE if clause == "WHERE" else "group by columns"
        raise QueryRejected(f"aggregate {name} is not allowed in {clause}; {advice}")
    if node.find_ancestor(exp.AggFunc, exp.Filter) is not None and not (
        isinstance(node.parent, exp.Filter) and node.arg_key == "this"
    ):
        raise QueryRejected(f"nested aggregates ({name} inside another aggregate) are not allowed")
    if isinstance(node.this, exp.Distinct) and not isinstance(node, exp.Count):
        raise QueryRejected(
            f"{name}(DISTINCT ...) is not supported; only COUNT(DISTINCT <unit>) is, to count "
            f"patients. Use {name} without DISTINCT"
        )


def _check_cast_type(node: exp.DataType, clause: str) -> None:
    """A data type may appear only as the target of CAST / TRY_CAST, and only a simple one."""
    if not isinstance(node.parent, exp.Cast | exp.TryCast):
        raise QueryRejected(f"type {node.sql('duckdb')} is not allowed here (in {clause})")
    if node.this not in CAST_TYPES:
        raise QueryRejected(
            f"CAST to {node.sql('duckdb')} is not supported (in {clause}); cast to BOOLEAN, "
            "INTEGER, BIGINT, DOUBLE, DECIMAL, VARCHAR, DATE or TIMESTAMP"
        )


def _check_in_list(node: exp.In, clause: str) -> None:
    """IN takes a list of literals: no columns or aggregates among its items."""
    for item in node.expressions:
        if item.find(exp.Column, exp.AggFunc) is not None:
            raise QueryRejected(
                f"IN (...) in {clause} takes a list of literals, not columns or aggregates; "
                "combine comparisons with OR instead"
            )


def _reject_star(node: exp.Expr) -> None:
    """Refuse ``*`` and ``t.*``."""
    shown = "t.*" if isinstance(node, exp.Column) else "SELECT *"
    raise QueryRejected(
        f"{shown} is not supported: only aggregates leave a clinic; name them, "
        "e.g. SELECT COUNT(*), AVG(age)"
    )


def _describe(node: exp.Expr) -> str:
    """What to tell the analyst about a refused construct.

    >>> _describe(exp.Array())
    'list literals ([...]) are not supported'
    >>> _describe(exp.Pivot())
    'PIVOT is not supported'
    """
    for cls, text in _CONSTRUCTS.items():
        if isinstance(node, cls):
            return text
    return f"{node.key.upper()} is not supported"
