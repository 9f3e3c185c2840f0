"""Result types: the fedsql column type (catalog ``ColumnType`` names) of each output expression.

Types are inferred from the allowlisted constructs only, widening where DuckDB could pick a
wider type (integer arithmetic is BIGINT, decimals are DOUBLE). The finalize query casts every
computed (``expr``) output to its inferred type, so the declared type is the delivered type.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from fedsql.sql.allowlist import CAST_TYPES

_INTEGER_TYPES = ("INTEGER", "BIGINT")
_NUMERIC_ORDER = ("INTEGER", "BIGINT", "DOUBLE")

#: Nodes whose value is a truth value (TRUE, FALSE or NULL).
BOOLEAN_NODES: tuple[type[exp.Expr], ...] = (
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Escape,
    exp.StartsWith,
    exp.Contains,
)
_TEXT_NODES: tuple[type[exp.Expr], ...] = (
    exp.DPipe,
    exp.Concat,
    exp.Lower,
    exp.Upper,
    exp.Substring,
    exp.Trim,
    exp.Left,
    exp.Right,
    exp.Replace,
)
_BIGINT_NODES: tuple[type[exp.Expr], ...] = (
    exp.Length,
    exp.Year,
    exp.Quarter,
    exp.Month,
    exp.Week,
    exp.Day,
    exp.DayOfWeek,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.Extract,
    exp.DateDiff,
    exp.StrPosition,
    exp.Sign,
)
_DOUBLE_NODES: tuple[type[exp.Expr], ...] = (
    exp.Ceil,  # DuckDB's ceil / floor return DOUBLE even for integers
    exp.Floor,
    exp.Div,
    exp.Pow,
    exp.Sqrt,
    exp.Ln,
    exp.Log,
    exp.Exp,
)
_SAME_AS_ARGUMENT: tuple[type[exp.Expr], ...] = (
    exp.Abs,
    exp.Round,
    exp.Trunc,
    exp.Neg,
    exp.Paren,
)
_CHOICE_NODES: tuple[type[exp.Expr], ...] = (
    exp.Coalesce,
    exp.Least,
    exp.Greatest,
    exp.Nullif,
)


def infer_type(
    expression: exp.Expr,
    column_type: Callable[[str], str],
    aggregate_type: Callable[[exp.AggFunc], str],
) -> str:
    """The fedsql type of a resolved post-aggregation expression.

    Args:
        expression: A resolved SELECT-list expression (allowlisted constructs only).
        column_type: Type of a (group key) column by name.
        aggregate_type: Type of an aggregate call.

    Returns:
        One of INTEGER, BIGINT, DOUBLE, VARCHAR, DATE, TIMESTAMP, BOOLEAN.

    >>> import sqlglot
    >>> def infer(sql):
    ...     tree = sqlglot.parse_one(sql, read="duckdb")
    ...     return infer_type(tree, lambda c: "INTEGER", lambda a: "BIGINT")
    >>> infer("100.0 * COUNT(*) / 5"), infer("COUNT(*) // 2"), infer("age + 1"), infer("age > 3")
    ('DOUBLE', 'BIGINT', 'BIGINT', 'BOOLEAN')
    """
    found = _infer(expression, column_type, aggregate_type)
    return found or "INTEGER"


def _infer(
    node: exp.Expr,
    column_type: Callable[[str], str],
    aggregate_type: Callable[[exp.AggFunc], str],
) -> str | None:
    """Type of ``node``, or None for an untyped NULL."""

    def sub(child: exp.Expr | None) -> str | None:
        return None if child is None else _infer(child, column_type, aggregate_type)

    if isinstance(node, exp.AggFunc):
        return aggregate_type(node)
    if isinstance(node, exp.Column):
        return column_type(str(node.name))
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, (exp.Boolean, *BOOLEAN_NODES)):
        return "BOOLEAN"
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "VARCHAR"
        return _integer_literal_type(node.name) if node.is_int else "DOUBLE"
    if isinstance(node, exp.Cast | exp.TryCast):
        return CAST_TYPES[node.to.this]
    if isinstance(node, _TEXT_NODES):
        return "VARCHAR"
    if isinstance(node, _BIGINT_NODES) or (
        isinstance(node, exp.Anonymous) and str(node.name).lower() in ("date_part", "datepart")
    ):
        return "BIGINT"
    if isinstance(node, _DOUBLE_NODES):
        return "DOUBLE"
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return "TIMESTAMP"
    if isinstance(node, _SAME_AS_ARGUMENT):
        return sub(node.this)
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Mod | exp.IntDiv):
        return _arithmetic(node, sub(node.this), sub(node.expression))
    if isinstance(node, exp.Interval):
        return "INTERVAL"
    if isinstance(node, _CHOICE_NODES):
        return _common([sub(node.this), *(sub(e) for e in node.expressions)])
    if isinstance(node, exp.Case):
        branches = [sub(i.args.get("true")) for i in node.args.get("ifs") or []]
        return _common([*branches, sub(node.args.get("default"))])
    if isinstance(node, exp.If):
        return _common([sub(node.args.get("true")), sub(node.args.get("false"))])
    return "DOUBLE"


def _integer_literal_type(text: str) -> str:
    """INTEGER for literals that fit 32 bits, else BIGINT.

    >>> _integer_literal_type("7"), _integer_literal_type("3000000000")
    ('INTEGER', 'BIGINT')
    """
    return "INTEGER" if abs(int(text)) < 2**31 else "BIGINT"


def _arithmetic(node: exp.Expr, left: str | None, right: str | None) -> str | None:
    """Result type of + - * % // over two operand types."""
    temporal = {left, right} & {"DATE", "TIMESTAMP"}
    if temporal:
        if isinstance(node, exp.Sub) and left == right:
            return "BIGINT"
        if "INTERVAL" in (left, right) or "TIMESTAMP" in temporal:
            return "TIMESTAMP"
        return "DATE"
    numeric = _common([left, right])
    if numeric in _INTEGER_TYPES:
        return "BIGINT"
    return numeric


def _common(types: list[str | None]) -> str | None:
    """The common supertype of branch types (NULLs ignored); VARCHAR when they disagree.

    Booleans widen to numbers, as in DuckDB.

    >>> _common(["INTEGER", None, "DOUBLE"]), _common(["DATE", "DATE"]), _common([None])
    ('DOUBLE', 'DATE', None)
    >>> _common(["BOOLEAN", "BIGINT"]), _common(["BOOLEAN", "VARCHAR"])
    ('BIGINT', 'VARCHAR')
    """
    present = sorted({t for t in types if t is not None})
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    numeric = [t for t in present if t in _NUMERIC_ORDER]
    if numeric and all(t in _NUMERIC_ORDER or t == "BOOLEAN" for t in present):
        return max(numeric, key=_NUMERIC_ORDER.index)
    if set(present) == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    return "VARCHAR"
