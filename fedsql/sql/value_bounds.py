"""Value bounds: the interval a row-level aggregate argument can take, from the contract bounds.

SUM, AVG, VAR and STDDEV need, for their sensitivity, the largest magnitude one row can add.
For a plain column that is its contract ``bounds``; for an expression (``CASE WHEN diabetic THEN
1 ELSE 0 END``, ``cost / 100``, ``age - 18``, ``age >= 65``) it is derived by interval
arithmetic over the bounds of the columns it reads: sums and differences add interval ends,
products take the extremes of the end products, CASE / IF / COALESCE / LEAST / GREATEST take the
hull of their branches, a truth value is [0, 1]. Division is bounded only by a non-zero constant.

The silo clamps each row's value of the argument to this interval before summing, so the
sensitivity holds whatever the data (a value outside its column's bounds cannot escape the
interval); conditions inside the expression see the row's own values, like WHERE.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlglot import exp

from fedsql.catalog import Table
from fedsql.errors import QueryRejected
from fedsql.sql.output_types import BOOLEAN_NODES
from fedsql.sql.statement import DIALECT

_INTEGER_CASTS = ("INTEGER", "BIGINT")
_NUMERIC_CASTS = (
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.DECIMAL,
)


@dataclass(frozen=True)
class Interval:
    """Closed interval ``[lo, hi]`` of a row value; ``integral`` when every value is an integer."""

    lo: float
    hi: float
    integral: bool

    def hull(self, other: Interval) -> Interval:
        """The smallest interval holding both."""
        return Interval(
            min(self.lo, other.lo), max(self.hi, other.hi), self.integral and other.integral
        )


def value_interval(expression: exp.Expr, table: Table, function: str) -> Interval | None:
    """The interval of a resolved row expression's values, or None when it is always NULL.

    Args:
        expression: A resolved aggregate argument (columns by contract name).
        table: The table it reads.
        function: The aggregate it feeds (for messages), e.g. ``SUM``.

    Returns:
        The interval; None for an expression that can only be NULL.

    Raises:
        QueryRejected: The expression reads a numeric column without bounds (the message names
            it), a non-numeric value, or uses an operation that cannot be bounded.

    >>> import sqlglot
    >>> from fedsql.catalog import Bounds, Column
    >>> t = Table("t", "id", 1, (Column("id", "BIGINT"), Column("x", "INTEGER", Bounds(0, 10))))
    >>> value_interval(sqlglot.parse_one("CASE WHEN x > 5 THEN x * 2 ELSE -1 END"), t, "SUM")
    Interval(lo=-1.0, hi=20.0, integral=True)
    """
    return _Bounder(table, function, expression).interval(expression)


class _Bounder:
    """Interval arithmetic over one expression, with the table's bounds at hand."""

    def __init__(self, table: Table, function: str, root: exp.Expr) -> None:
        self.table = table
        self.function = function
        self.root = root

    def _reject(self, node: exp.Expr, why: str) -> QueryRejected:
        shown = self.root.sql(DIALECT, comments=False)
        return QueryRejected(
            f"{self.function}({shown}) has no known bound: {why}. fedsql bounds + - * by "
            "values, / and // by non-zero constants, CASE, IF, COALESCE, LEAST, GREATEST, ABS, "
            "ROUND, FLOOR, CEIL, CAST and conditions over columns with contract bounds"
        )

    def interval(self, node: exp.Expr) -> Interval | None:
        if isinstance(node, exp.Paren):
            return self.interval(node.this)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, (exp.Boolean, *BOOLEAN_NODES)):
            return Interval(0.0, 1.0, True)
        if isinstance(node, exp.Literal):
            if node.is_string:
                raise self._reject(node, f"the text {node.sql(DIALECT)} is not a number")
            value = float(node.name)
            return Interval(value, value, node.is_int)
        if isinstance(node, exp.Column):
            return self._column(node)
        if isinstance(node, exp.Neg):
            inner = self.interval(node.this)
            return None if inner is None else Interval(-inner.hi, -inner.lo, inner.integral)
        if isinstance(node, exp.Add | exp.Sub | exp.Mul):
            return self._arithmetic(node)
        if isinstance(node, exp.Div | exp.IntDiv | exp.Mod):
            return self._division(node)
        if isinstance(node, exp.Case):
            branches = [i.args.get("true") for i in node.args.get("ifs") or []]
            return self._hull([*branches, node.args.get("default")])
        if isinstance(node, exp.If):
            return self._hull([node.args.get("true"), node.args.get("false")])
        if isinstance(node, exp.Coalesce | exp.Least | exp.Greatest):
            return self._hull([node.this, *node.expressions])
        if isinstance(node, exp.Abs):
            inner = self.interval(node.this)
            if inner is None:
                return None
            low = 0.0 if inner.lo <= 0.0 <= inner.hi else min(abs(inner.lo), abs(inner.hi))
            return Interval(low, max(abs(inner.lo), abs(inner.hi)), inner.integral)
        if isinstance(node, exp.Sign):
            return Interval(-1.0, 1.0, True)
        if isinstance(node, exp.Round | exp.Floor | exp.Ceil | exp.Trunc):
            inner = self.interval(node.this)
            if inner is None:
                return None
            return Interval(math.floor(inner.lo), math.ceil(inner.hi), inner.integral)
        if isinstance(node, exp.Cast | exp.TryCast):
            return self._cast(node)
        raise self._reject(node, f"{node.sql(DIALECT, comments=False)} cannot be bounded")

    def _column(self, node: exp.Column) -> Interval:
        column = self.table.column(str(node.name))
        assert column is not None, "resolved columns exist"
        if column.type == "BOOLEAN":
            return Interval(0.0, 1.0, True)
        if not column.is_numeric:
            raise QueryRejected(
                f"{self.function} needs a numeric value; {self.table.name}.{column.name} is "
                f"{column.type}"
            )
        if column.bounds is None:
            raise QueryRejected(
                f"column {self.table.name}.{column.name} has no bounds in the contract, so "
                f"{self.function} over it has no known sensitivity; add `bounds = [lo, hi]` to it"
            )
        lo, hi = float(column.bounds.lo), float(column.bounds.hi)
        integral = column.type in _INTEGER_CASTS and lo.is_integer() and hi.is_integer()
        return Interval(lo, hi, integral)

    def _hull(self, nodes: list[exp.Expr | None]) -> Interval | None:
        found: Interval | None = None
        for node in nodes:
            if node is None:
                continue
            inner = self.interval(node)
            if inner is not None:
                found = inner if found is None else found.hull(inner)
        return found

    def _arithmetic(self, node: exp.Expr) -> Interval | None:
        left, right = self.interval(node.this), self.interval(node.expression)
        if left is None or right is None:
            return None
        integral = left.integral and right.integral
        if isinstance(node, exp.Add):
            return Interval(left.lo + right.lo, left.hi + right.hi, integral)
        if isinstance(node, exp.Sub):
            return Interval(left.lo - right.hi, left.hi - right.lo, integral)
        ends = [a * b for a in (left.lo, left.hi) for b in (right.lo, right.hi)]
        return Interval(min(ends), max(ends), integral)

    def _division(self, node: exp.Expr) -> Interval | None:
        left, right = self.interval(node.this), self.interval(node.expression)
        if right is not None and not (right.lo == right.hi and right.lo != 0.0):
            raise self._reject(node, "it divides by a row value, which may be near zero")
        if left is None or right is None:
            return None
        d = right.lo
        if isinstance(node, exp.Mod):
            if not (left.integral and right.integral):
                raise self._reject(node, "% is bounded only over integers")
            top = abs(d) - 1
            return Interval(-top if left.lo < 0 else 0.0, top if left.hi > 0 else 0.0, True)
        ends = sorted((left.lo / d, left.hi / d))
        if isinstance(node, exp.IntDiv):
            return Interval(math.floor(ends[0]), math.ceil(ends[1]), left.integral)
        return Interval(ends[0], ends[1], False)

    def _cast(self, node: exp.Expr) -> Interval | None:
        target = node.args["to"].this
        if target == exp.DataType.Type.BOOLEAN:
            return Interval(0.0, 1.0, True)
        if target not in _NUMERIC_CASTS:
            raise self._reject(node, f"it casts to {node.args['to'].sql(DIALECT)}")
        inner = self.interval(node.this)
        if inner is None:
            return None
        if target in (
            exp.DataType.Type.TINYINT,
            exp.DataType.Type.SMALLINT,
            exp.DataType.Type.INT,
            exp.DataType.Type.BIGINT,
        ):
            return Interval(math.floor(inner.lo), math.ceil(inner.hi), True)
        return Interval(inner.lo, inner.hi, False)
