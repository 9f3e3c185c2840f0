"""Error guards: row-level operations that can fail on a value are wrapped in ``TRY``, one by one.

Whether a silo's partial query fails must not depend on the data: an analyst could otherwise
learn one patient's value from ``1 // (CASE WHEN <condition on that patient> THEN 0 ELSE 1 END)``.
So every operation that DuckDB can abort on at run time (integer overflow, division by zero, a
failed CAST, an out-of-range substring or date) evaluates to NULL on that row instead.

Each such operation gets its own ``TRY``, never a whole condition. DuckDB evaluates a ``TRY`` that
caught an error again row by row, without the short-circuits of AND, OR, CASE and COALESCE; a
``TRY`` around a whole condition would then change the outcome of other rows in the same vector
(one patient's failing row could drop many others), which breaks the per-unit sensitivity. With a
``TRY`` on each failing operation, every row's value depends on that row alone. Implicit casts,
which DuckDB performs inside AND / OR / CASE / COALESCE and cannot be guarded there, are refused
beforehand by ``check_types``.
"""

from __future__ import annotations

from sqlglot import exp

#: Operations DuckDB can abort on at run time for some input values.
FALLIBLE: tuple[type[exp.Expr], ...] = (
    exp.Add,  # integer and decimal overflow, date out of range
    exp.Sub,
    exp.Mul,
    exp.Neg,
    exp.IntDiv,  # division by zero, overflow
    exp.Mod,
    exp.Abs,  # abs of the smallest integer
    exp.Cast,  # conversion errors
    exp.Substring,  # offsets and lengths out of range
    exp.Left,
    exp.Right,
    exp.TimestampTrunc,  # dates outside the timestamp range
    exp.DateTrunc,
    exp.DateDiff,
    exp.Escape,  # an escape that is not one character
)


def may_fail(node: exp.Expr) -> bool:
    """True if ``node`` is an operation that can fail at run time on a value read from a row.

    >>> import sqlglot
    >>> may_fail(sqlglot.parse_one("a // b", read="duckdb"))
    True
    >>> may_fail(sqlglot.parse_one("1 // 0", read="duckdb"))  # constant: fails at planning
    False
    >>> may_fail(sqlglot.parse_one("a / b", read="duckdb"))  # DuckDB gives inf or NULL
    False
    """
    fallible = isinstance(node, FALLIBLE) or (
        isinstance(node, exp.Anonymous) and str(node.name).lower() in ("date_part", "datepart")
    )
    return fallible and node.find(exp.Column) is not None


def guard_row_errors(expression: exp.Expr) -> exp.Expr:
    """A copy of a row-level expression with every fallible operation wrapped in ``TRY``.

    Args:
        expression: A resolved, type-checked row-level expression (e.g. the WHERE condition).

    Returns:
        The guarded copy; values are unchanged on every row where nothing fails.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("a > 0 OR 1 // (b - c) > 2", read="duckdb")
    >>> guard_row_errors(tree).sql("duckdb")
    'a > 0 OR TRY(1 // (TRY(b - c))) > 2'
    """
    root = expression.copy()
    for node in reversed(list(root.walk(bfs=False))):
        if not may_fail(node):
            continue
        wrapper = exp.Try()
        if node is root:
            wrapper.set("this", node)
            root = wrapper
        else:
            node.replace(wrapper)
            wrapper.set("this", node)
    return root
