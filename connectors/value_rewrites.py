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
