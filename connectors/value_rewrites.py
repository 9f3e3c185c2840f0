"""How a source computes DuckDB's values: error guards, casts, concatenation, by contract types.

DuckDB wraps each operation that can fail on one row in ``TRY``; a source has no such guard, so
each guarded operation is rewritten to one that cannot fail there and gives DuckDB's value, or
refused (see :mod:`connectors.transpile`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from fedsql.errors import QueryRejected

#: Contract types of the columns a query reads: relation alias (and "" for the single table of
#: an unjoined query) -> column -> type.
ColumnTypes = Mapping[str, Mapping[str, str]]
_TEXT_TYPES = (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)
#: The largest constant added to a DOUBLE: adding it to a finite double can never overflow.
_MAX_ADDEND = 1e15


def type_of(node: exp.Expr, types: ColumnTypes) -> str:
    """The contract type of a bound column ("" for anything else).

    >>> type_of(exp.column("bmi", table="p"), {"p": {"bmi": "DOUBLE"}})
    'DOUBLE'
    """
    if not isinstance(node, exp.Column):
        return ""
    return types.get(node.table.lower(), {}).get(node.name.lower(), "")


def _small_number(node: exp.Expr) -> bool:
    """A numeric literal (maybe negated) of magnitude at most :data:`_MAX_ADDEND`."""
    literal = node.this if isinstance(node, exp.Neg) else node
    if not isinstance(literal, exp.Literal) or literal.is_string:
        return False
    try:
        return abs(float(literal.this)) <= _MAX_ADDEND
    except ValueError:
        return False


def _as_double(node: exp.Expr) -> exp.Expr:
    return exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE"))


def _text_of(node: exp.Cast, types: ColumnTypes, dialect: str) -> exp.Expr | None:
    """``CAST(column AS VARCHAR)`` written as the source gives DuckDB's text, or None.

    Integers print alike everywhere; booleans print as ``true`` / ``false`` in DuckDB and
    PostgreSQL but as ``1`` / ``0`` in MySQL, which has no boolean type. Doubles and dates
    print differently between engines: None.
    """
    kind = type_of(node.this, types)
    if not node.to.is_type(*_TEXT_TYPES) or kind not in ("BOOLEAN", "INTEGER", "BIGINT"):
        return None
    if kind == "BOOLEAN" and dialect == "mysql":
        return exp.Case(
            ifs=[
                exp.If(this=node.this.copy(), true=exp.Literal.string("true")),
                exp.If(
                    this=exp.not_(exp.paren(node.this.copy())), true=exp.Literal.string("false")
                ),
            ]
        )
    return node.copy()


#: date_trunc units each source truncates a DATE to exactly as DuckDB does (to a TIMESTAMP).
_TRUNC_UNITS = {
    "postgres": ("year", "quarter", "month", "week", "day"),
    "mysql": ("year", "month", "day"),
    "duckdb": ("year", "quarter", "month", "week", "day"),
}
#: DATE_FORMAT patterns giving the first day of a year / month in MySQL.
_MYSQL_TRUNC = {"year": "%Y-01-01", "month": "%Y-%m-01", "day": "%Y-%m-%d"}


def _date_trunc(node: exp.TimestampTrunc, types: ColumnTypes, dialect: str) -> exp.Expr | None:
    """``date_trunc(unit, <DATE column>)`` as the source computes DuckDB's TIMESTAMP, or None.

    PostgreSQL truncates a plain TIMESTAMP (never a timestamp with time zone, which would depend
    on the session's zone); MySQL has no date_trunc and formats the first day instead. Weeks
    start on Monday in DuckDB and PostgreSQL alike. A date never fails to truncate.
    """
    unit = str(node.unit.name if isinstance(node.unit, exp.Var) else node.unit or "").lower()
    if type_of(node.this, types) != "DATE" or unit not in _TRUNC_UNITS.get(dialect, ()):
        return None
    timestamp = exp.DataType.build("TIMESTAMP")
    if dialect == "mysql":
        formatted = exp.Anonymous(
            this="DATE_FORMAT",
            expressions=[node.this.copy(), exp.Literal.string(_MYSQL_TRUNC[unit])],
        )
        return exp.Cast(this=formatted, to=timestamp)
    truncated = exp.Anonymous(
        this="DATE_TRUNC",
        expressions=[exp.Literal.string(unit), exp.Cast(this=node.this.copy(), to=timestamp)],
    )
    return exp.Cast(this=truncated, to=timestamp)


#: Below this magnitude a DOUBLE divided by a constant may underflow to zero, which PostgreSQL
#: refuses as an error where DuckDB gives zero or a subnormal number.
_TINY = 1e-300


def divide_by_constant(node: exp.Div, types: ColumnTypes) -> exp.Expr:
    """``x / c`` for a numeric column and a constant with ``|c| >= 1``, as DuckDB computes it.

    DuckDB's ``/`` divides as DOUBLE; PostgreSQL and MySQL divide integers as integers, so the
    column is cast to DOUBLE first (IEEE division is the same everywhere). ``|c| >= 1`` means the
    quotient cannot overflow; a DOUBLE below 1e-300 in magnitude gives 0 (PostgreSQL would fail
    on the underflow; DuckDB's result differs from 0 by less than 1e-300).

    Raises:
        QueryRejected: The dividend is not a numeric column.
    """
    if type_of(node.this, types) not in ("DOUBLE", "INTEGER", "BIGINT"):
        raise QueryRejected(
            "this clinic runs queries in its own database, where / over anything but a numeric "
            "column could fail on a single row or give another answer than DuckDB; it cannot "
            "guard it, so the query is refused here"
        )
    dividend = _as_double(node.this)
    quotient = exp.Div(this=dividend, expression=_as_double(node.expression))
    tiny = exp.LT(this=exp.Abs(this=dividend.copy()), expression=exp.Literal.number(repr(_TINY)))
    return exp.Paren(
        this=exp.Case(ifs=[exp.If(this=tiny, true=exp.Literal.number("0.0"))], default=quotient)
    )


def guard(node: exp.Try, types: ColumnTypes, dialect: str) -> exp.Expr:
    """A ``TRY(...)`` of the planner as an expression that cannot fail in the source.

    Args:
        node: The guarded operation.
        types: Column types by relation alias (:func:`types_by_alias`).
        dialect: The source's sqlglot dialect.

    Returns:
        The operation on ``NULLIF(divisor, 0)`` (``%``, ``//``), a DOUBLE plus or minus a
        modest constant, or an integer / boolean printed as DuckDB prints it.

    Raises:
        QueryRejected: The source cannot compute it like DuckDB without failing on a row.
    """
    inner = node.this
    if isinstance(inner, exp.Add | exp.Sub):
        # A DOUBLE column plus or minus a modest constant: IEEE arithmetic, the same value in
        # every engine, and it can neither overflow (which PostgreSQL and MySQL refuse where
        # DuckDB gives inf) nor underflow. Integer sums are refused: their result type and
        # overflow differ (MySQL computes in 64 bits, PostgreSQL fails, DuckDB gives NULL).
        left, right = inner.this, inner.expression
        if (type_of(left, types) == "DOUBLE" and _small_number(right)) or (
            _small_number(left) and type_of(right, types) == "DOUBLE"
        ):
            return exp.Paren(this=type(inner)(this=_as_double(left), expression=_as_double(right)))
    if isinstance(inner, exp.Cast):
        text = _text_of(inner, types, dialect)
        if text is not None:
            return exp.Paren(this=text)
    if isinstance(inner, exp.TimestampTrunc):
        truncated = _date_trunc(inner, types, dialect)
        if truncated is not None:
            return truncated
    if isinstance(inner, exp.Mod | exp.IntDiv):
        divisor = exp.Nullif(this=inner.expression.copy(), expression=exp.Literal.number(0))
        if isinstance(inner, exp.IntDiv):
            # DuckDB's // floors; PostgreSQL's DIV truncates toward zero (and returns NUMERIC)
            # and MySQL's DIV truncates too: floor a DOUBLE quotient to answer like DuckDB.
            numerator = exp.Cast(this=inner.this.copy(), to=exp.DataType.build("DOUBLE"))
            return exp.Paren(this=exp.Floor(this=exp.Div(this=numerator, expression=divisor)))
        guarded = inner.copy()
        guarded.set("expression", divisor)
        return exp.Paren(this=guarded)
    raise QueryRejected(
        f"this clinic runs queries in its own database, which cannot guard "
        f"{type(inner).__name__.upper()} against failing on a single row, so the query is "
        "refused here: rewrite the condition without it (e.g. compare the column with a constant)"
    )


def types_by_alias(tree: exp.Expr, column_types: ColumnTypes) -> dict[str, Mapping[str, str]]:
    """Column types by the alias each bound table is read under ("" for an unjoined one).

    Args:
        tree: The partial query.
        column_types: Federated table -> column -> contract type.

    Returns:
        Alias -> column -> contract type.
    """
    out: dict[str, Mapping[str, str]] = {}
    tables = [t for t in tree.find_all(exp.Table) if t.name.lower() in column_types]
    for table in tables:
        out[table.alias_or_name.lower()] = column_types[table.name.lower()]
    if len(tables) == 1 and not tables[0].alias:
        out[""] = column_types[tables[0].name.lower()]
    return out


def boolean_as_integer(node: exp.Cast, types: ColumnTypes) -> exp.Expr:
    """``CAST(condition AS BIGINT)`` (a summed condition) as ``CASE``: PostgreSQL has no cast
    from boolean to BIGINT, and a condition's truth is 1 / 0 / NULL in every engine.

    >>> from sqlglot import parse_one
    >>> tree = parse_one("CAST(a >= 65 AS BIGINT)")
    >>> boolean_as_integer(tree, {}).sql("postgres")
    'CAST(CASE WHEN a >= 65 THEN 1 WHEN NOT (a >= 65) THEN 0 END AS BIGINT)'
    """
    value = node.this
    boolean = isinstance(value, exp.Predicate | exp.Connector | exp.Not | exp.Boolean)
    if not node.to.is_type(*exp.DataType.INTEGER_TYPES):
        return node
    if not boolean and type_of(value, types) != "BOOLEAN":
        return node
    truth = exp.Case(
        ifs=[
            exp.If(this=value.copy(), true=exp.Literal.number(1)),
            exp.If(this=exp.not_(exp.paren(value.copy())), true=exp.Literal.number(0)),
        ]
    )
    return exp.Cast(this=truth, to=node.to.copy())


def check_concatenation(node: exp.DPipe, types: ColumnTypes) -> None:
    """Refuse ``||`` over anything but text: both sides NULL-propagating (PostgreSQL's ``||``,
    MySQL's ``CONCAT``, as sqlglot writes them), but numbers, dates and booleans print
    differently between engines. Guarded casts of integers and booleans are checked in guard.

    Raises:
        QueryRejected: An operand is not text.
    """
    for operand in (node.this, node.expression):
        if isinstance(operand, exp.DPipe):
            continue
        if isinstance(operand, exp.Literal) and operand.is_string:
            continue
        if type_of(operand, types) == "VARCHAR":
            continue
        if isinstance(operand, exp.Try) and isinstance(operand.this, exp.Cast):
            continue
        raise QueryRejected(
            "this clinic runs queries in its own database, where || over a value that is not "
            "text could give another answer than DuckDB; it cannot guard it, so the query is "
            "refused here: cast the value to VARCHAR"
        )
