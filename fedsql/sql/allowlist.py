"""The allowlist: every SQL construct, function, aggregate and CAST type a federated query may use.

This module is the single place that decides which row-level SQL reaches a silo. Anything not
listed here is rejected before any data is touched. Entries are sqlglot expression classes (the
parser normalises spellings: ``ceiling`` is ``Ceil``, ``substr`` is ``Substring``, ``ifnull`` is
``Coalesce``), plus a few DuckDB functions that sqlglot keeps as anonymous calls, by name.

Functions are admitted when they are deterministic, row-local, cheap, and cannot reach outside
the database (no file, network, environment, clock or random access).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

#: The aggregates a query may compute, with their SQL names. Each one is computed by the hub
#: from noisy per-cell counts, sums, sums of squares and histograms (see ``measures``).
AGGREGATES: Mapping[type[exp.Expr], str] = {
    exp.Count: "COUNT",
    exp.Sum: "SUM",
    exp.Avg: "AVG",
    exp.Variance: "VAR_SAMP",
    exp.VariancePop: "VAR_POP",
    exp.Stddev: "STDDEV",
    exp.StddevSamp: "STDDEV_SAMP",
    exp.StddevPop: "STDDEV_POP",
    exp.Median: "MEDIAN",
    exp.PercentileCont: "QUANTILE_CONT",
}

#: Row-level scalar functions, keyed by sqlglot class, with the name shown in messages.
FUNCTIONS: Mapping[type[exp.Expr], str] = {
    # numbers
    exp.Abs: "abs",
    exp.Ceil: "ceil",
    exp.Floor: "floor",
    exp.Round: "round",
    exp.Trunc: "trunc",
    exp.Sign: "sign",
    exp.Sqrt: "sqrt",
    exp.Ln: "ln",
    exp.Log: "log",
    exp.Exp: "exp",
    exp.Pow: "power",
    # NULL handling and choice
    exp.Coalesce: "coalesce",
    exp.Nullif: "nullif",
    exp.Least: "least",
    exp.Greatest: "greatest",
    # text
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Length: "length",
    exp.Substring: "substring",
    exp.Trim: "trim",
    exp.Concat: "concat",
    exp.Left: "left",
    exp.Right: "right",
    exp.Replace: "replace",
    exp.StartsWith: "starts_with",
    exp.Contains: "contains",
    exp.StrPosition: "strpos",
    # dates and times
    exp.Year: "year",
    exp.Quarter: "quarter",
    exp.Month: "month",
    exp.Week: "week",
    exp.Day: "day",
    exp.DayOfWeek: "dayofweek",
    exp.DayOfMonth: "dayofmonth",
    exp.DayOfYear: "dayofyear",
    exp.Hour: "hour",
    exp.Minute: "minute",
    exp.Second: "second",
    exp.Extract: "extract",
    exp.TimestampTrunc: "date_trunc",
    exp.DateTrunc: "date_trunc",
    exp.DateDiff: "date_diff",
}

#: DuckDB functions that sqlglot parses as anonymous calls, allowed by (lower-case) name.
NAMED_FUNCTIONS: frozenset[str] = frozenset({"date_part", "datepart"})

#: Operators and syntactic forms allowed in row-level expressions.
OPERATORS: tuple[type[exp.Expr], ...] = (
    exp.Paren,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.DPipe,
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
    exp.Cast,
    exp.TryCast,
    exp.Case,
    exp.If,
    exp.Interval,
)

#: Leaves: column references, their name parts, and literals.
LEAVES: tuple[type[exp.Expr], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
)

#: Nodes that may hold a bare keyword (``Var``) naming a date part, e.g. ``EXTRACT(year FROM d)``.
DATE_PART_HOLDERS: tuple[type[exp.Expr], ...] = (
    exp.Extract,
    exp.Interval,
    exp.TimestampTrunc,
    exp.DateTrunc,
    exp.DateDiff,
)

#: CAST / TRY_CAST target types and the fedsql column type each one produces.
CAST_TYPES: Mapping[exp.DType, str] = {
    exp.DataType.Type.BOOLEAN: "BOOLEAN",
    exp.DataType.Type.TINYINT: "INTEGER",
    exp.DataType.Type.SMALLINT: "INTEGER",
    exp.DataType.Type.INT: "INTEGER",
    exp.DataType.Type.BIGINT: "BIGINT",
    exp.DataType.Type.FLOAT: "DOUBLE",
    exp.DataType.Type.DOUBLE: "DOUBLE",
    exp.DataType.Type.DECIMAL: "DOUBLE",
    exp.DataType.Type.TEXT: "VARCHAR",
    exp.DataType.Type.VARCHAR: "VARCHAR",
    exp.DataType.Type.DATE: "DATE",
    exp.DataType.Type.TIMESTAMP: "TIMESTAMP",
    exp.DataType.Type.TIMESTAMPNTZ: "TIMESTAMP",
}


def allowed_function_names() -> list[str]:
    """Sorted display names of every allowed scalar function (for error messages).

    >>> names = allowed_function_names()
    >>> "coalesce" in names and "date_part" in names and "getenv" not in names
    True
    """
    return sorted(set(FUNCTIONS.values()) | {"date_part"})


def is_allowed_function(node: exp.Expr) -> bool:
    """True if ``node`` is a call to an allowed scalar function.

    >>> import sqlglot
    >>> is_allowed_function(sqlglot.parse_one("lower(x)", read="duckdb"))
    True
    >>> is_allowed_function(sqlglot.parse_one("getenv('HOME')", read="duckdb"))
    False
    """
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower() in NAMED_FUNCTIONS
    return type(node) in FUNCTIONS


def function_name(node: exp.Expr) -> str:
    """The name of a function call as the analyst would recognise it, upper-case.

    >>> import sqlglot
    >>> function_name(sqlglot.parse_one("read_csv('x')", read="duckdb"))
    'READ_CSV'
    >>> function_name(sqlglot.parse_one("getenv('x')", read="duckdb"))
    'GETENV'
    """
    if isinstance(node, exp.Anonymous):
        return str(node.name).upper()
    if isinstance(node, exp.Func):
        return str(node.sql_name()).upper()
    return node.key.upper()
