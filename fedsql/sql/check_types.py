"""Type check of row-level conditions: refuse implicit conversions that can fail on a row's value.

DuckDB converts a VARCHAR value implicitly where a number, date or truth value is expected
(``name = 1``, ``WHERE name``, ``d = name``) and a DATE to TIMESTAMP when they meet; those
conversions can fail on some values, and inside AND, OR, CASE or COALESCE they cannot be guarded
row by row (see ``guard_errors``). The analyst writes the conversion explicitly instead (a CAST,
which is guarded), or compares like with like. Constants are converted when DuckDB plans the query,
so a literal on either side (``age = '40'``, ``d > '2024-01-01'``) is fine.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.catalog import Table
from fedsql.errors import QueryRejected
from fedsql.sql.output_types import infer_type
from fedsql.sql.query import Query

_FAMILY: dict[str, str] = {
    "INTEGER": "number",
    "BIGINT": "number",
    "DOUBLE": "number",
    "BOOLEAN": "number",
    "VARCHAR": "text",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "INTERVAL": "interval",
}

#: Comparisons and how to name them in messages.
_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "the comparison =",
    exp.NEQ: "the comparison <>",
    exp.GT: "the comparison >",
    exp.GTE: "the comparison >=",
    exp.LT: "the comparison <",
    exp.LTE: "the comparison <=",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM",
    exp.NullSafeNEQ: "IS DISTINCT FROM",
    exp.Nullif: "NULLIF",
}


def check_row_types(query: Query) -> None:
    """Refuse implicit conversions of row values in WHERE, group keys and aggregate arguments.

    Args:
        query: The resolved query (FILTER conditions already moved into aggregate arguments).

    Raises:
        QueryRejected: A VARCHAR, DATE or TIMESTAMP value where a condition is expected, or a
            row value that DuckDB would have to convert to another type to compare or combine.
    """
    checker = _Checker(query.table)
    if query.where is not None:
        checker.check(query.where)
    for key in query.group_by:
        checker.walk(key)
    for node in query.aggregates():
        argument = node.this
        if isinstance(argument, exp.Distinct):
            argument = argument.expressions[0] if argument.expressions else None
        if argument is not None and not isinstance(argument, exp.Star):
            checker.walk(argument)


def check_condition(where: exp.Expr, table: Table) -> None:
    """Refuse implicit conversions of row values in one resolved row-level condition.

    Args:
        where: A condition whose columns are (virtual) columns of ``table``.
        table: The table (or joined rows) the condition reads.

    Raises:
        QueryRejected: As :func:`check_row_types`.
    """
    _Checker(table).check(where)


def check_value(expression: exp.Expr, table: Table) -> None:
    """Refuse implicit conversions inside a row-level value (a subquery's SELECT item).

    Args:
        expression: A resolved expression over (virtual) columns of ``table``.
        table: The table (or joined rows) it reads.

    Raises:
        QueryRejected: As :func:`check_row_types`, for every condition and operation inside.
    """
    _Checker(table).check(expression, condition=False)


class _Checker:
    """Walks one row-level expression with the table's column types at hand."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def _type(self, node: exp.Expr) -> str | None:
        def column_type(name: str) -> str:
            column = self.table.column(name)
            assert column is not None
            return column.type

        def no_aggregates(_: exp.AggFunc) -> str:
            raise AssertionError("row-level expressions hold no aggregates")

        if isinstance(node, exp.Null):
            return None
        return infer_type(node, column_type, no_aggregates)

    def check(self, where: exp.Expr, *, condition: bool = True) -> None:
        if condition:
            self._condition(where, "WHERE")
        self.walk(where)

    def walk(self, expression: exp.Expr) -> None:
        """Check every condition and comparison inside a row-level expression."""
        for node in expression.walk():
            if isinstance(node, exp.And | exp.Or):
                self._condition(node.this, "AND / OR")
                self._condition(node.expression, "AND / OR")
            elif isinstance(node, exp.Not):
                self._condition(node.this, "NOT")
            elif isinstance(node, exp.Is) and isinstance(node.expression, exp.Boolean):
                self._condition(node.this, "IS TRUE / IS FALSE")
            elif isinstance(node, exp.Case):
                for branch in node.args.get("ifs") or []:
                    self._condition(branch.this, "CASE WHEN")
                results = [b.args.get("true") for b in node.args.get("ifs") or []]
                self._same_kind([*results, node.args.get("default")], "CASE")
            elif isinstance(node, exp.If) and not isinstance(node.parent, exp.Case):
                self._condition(node.this, "IF")
                self._same_kind([node.args.get("true"), node.args.get("false")], "IF")
            elif type(node) in _COMPARISONS:
                self._same_kind([node.this, node.expression], _COMPARISONS[type(node)])
            elif isinstance(node, exp.In):
                self._same_kind([node.this, *node.expressions], "IN")
            elif isinstance(node, exp.Between):
                self._same_kind([node.this, node.args.get("low"), node.args.get("high")], "BETWEEN")
            elif isinstance(node, exp.Coalesce | exp.Least | exp.Greatest):
                self._same_kind([node.this, *node.expressions], node.key.upper())
            elif isinstance(node, exp.Anonymous) and str(node.name).lower() in (
                "date_part",
                "datepart",
            ):
                self._constant(node.expressions[0] if node.expressions else None, "date_part")

    def _condition(self, node: exp.Expr, where: str) -> None:
        kind = self._type(node)
        if _FAMILY.get(kind or "") in ("text", "date", "timestamp", "interval") and _reads_row(
            node
        ):
            raise QueryRejected(
                f"{where} needs a true/false condition, but {_shown(node)} is {kind}; compare "
                f"it instead (e.g. {_shown(node)} = ...)"
            )

    def _same_kind(self, operands: list[exp.Expr | None], what: str) -> None:
        typed = [
            (node, _FAMILY.get(kind, kind))
            for node in operands
            if node is not None and (kind := self._type(node)) is not None
        ]
        for node, family in typed:
            if not _reads_row(node):
                continue
            others = {f for other, f in typed if other is not node and f != family}
            if family == "text" and others:
                raise QueryRejected(
                    f"{what} would convert the text value {_shown(node)} to a "
                    f"{sorted(others)[0]}, which fails on some values; compare like with like "
                    f"or convert explicitly, e.g. TRY_CAST({_shown(node)} AS INTEGER)"
                )
            if family == "date" and "timestamp" in others:
                raise QueryRejected(
                    f"{what} mixes the DATE value {_shown(node)} with a TIMESTAMP; convert "
                    f"explicitly, e.g. CAST({_shown(node)} AS TIMESTAMP)"
                )

    def _constant(self, node: exp.Expr | None, what: str) -> None:
        if node is not None and _reads_row(node):
            raise QueryRejected(f"the first argument of {what} must be a literal, e.g. 'year'")


def _reads_row(node: exp.Expr) -> bool:
    """True if the expression depends on a row (reads a column)."""
    return node.find(exp.Column) is not None


def _shown(node: exp.Expr) -> str:
    """The expression as the analyst would write it (for messages)."""
    return node.sql("duckdb", comments=False)
