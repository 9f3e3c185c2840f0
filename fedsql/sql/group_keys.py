"""Group keys: GROUP BY columns and expressions become key spaces over public contract domains.

A plain column key has its contract ``domain`` as key space, in the domain's order (rows whose
value is NULL or outside the domain are dropped by the silo). A derived key, an expression over
columns that all have a domain (``age // 10``, ``year(visit_date)``, ``CASE WHEN age < 18 THEN
'child' ELSE 'adult' END``, ``age >= 65``, ``least(age, 90)``, ``sex || region``), has as key
space the values the expression takes over those domains plus NULL, computed at plan time by
``key_domains``. Either way the key space is never read from data, so the length and layout of
every silo's partial vector are known before any row is read.

Every column used after aggregation (outside an aggregate in SELECT, HAVING or ORDER BY) must be
a key or lie inside an expression that is one of the keys.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from fedsql.catalog import SILO_COLUMN, Column, KeyValue, Table
from fedsql.errors import QueryRejected
from fedsql.sql.guard_errors import guard_row_errors
from fedsql.sql.key_domains import evaluate_key_domain
from fedsql.sql.output_types import infer_type
from fedsql.sql.plan import KeySpace
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT

#: Largest number of cells (product of the key domains' sizes) one query may address.
MAX_CELLS = 1_000_000


def key_source(expression: exp.Expr) -> str:
    """The canonical text of a resolved key expression (``KeySpace.source``).

    >>> key_source(sqlglot.parse_one("(age // 10)", read="duckdb"))
    'age // 10'
    """
    return expression.unnest().sql(DIALECT, comments=False)


def key_expression(key: KeySpace) -> exp.Expr:
    """The row-level expression a silo computes for a key: quoted columns, errors guarded.

    >>> key_expression(KeySpace("k0", "BIGINT", (0, 1), "age // 10")).sql("duckdb")
    'TRY("age" // 10)'
    """

    def quote(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return exp.Column(this=exp.to_identifier(str(node.name), quoted=True))
        return node

    parsed = sqlglot.parse_one(key.source, read=DIALECT)
    return guard_row_errors(parsed.transform(quote))


def plan_keys(query: Query) -> tuple[KeySpace, ...]:
    """The key spaces of the query's GROUP BY keys, in GROUP BY order.

    Args:
        query: The resolved query.

    Returns:
        One KeySpace per distinct group key: ``k0``, ``k1``, ... with the domain's keys.

    Raises:
        QueryRejected: A key is or reads the unit column, reads a column without a domain,
            holds an aggregate or reads no column, or the key space has more than
            ``MAX_CELLS`` cells.
    """
    table = query.table
    keys: list[KeySpace] = []
    cells = 1
    for index, expression in enumerate(query.group_by):
        source = key_source(expression)
        if expression.find(exp.AggFunc) is not None:
            raise QueryRejected(
                f"GROUP BY {source} groups on an aggregate; group by columns or expressions "
                "over columns"
            )
        read = _columns_read(expression, table)
        if not read:
            raise QueryRejected(
                f"GROUP BY {source} groups on a constant; group by columns or expressions over "
                "columns (an ordinal must be written as a literal, not a parameter)"
            )
        for column in read:
            if column.name == table.unit:
                raise QueryRejected(_unit_message(table, "grouped on"))
            if column.domain is None:
                where = "" if isinstance(expression, exp.Column) else f" (read by {source})"
                raise QueryRejected(
                    f"cannot GROUP BY {table.name}.{column.name}{where}: it has no domain in "
                    f"the contract, and group keys must come from a public domain; add `domain` "
                    f"to column {column.name} of table {table.name} in the contract"
                )
        values: tuple[KeyValue, ...]
        sql_type: str
        if isinstance(expression, exp.Column):
            column = read[0]
            assert column.domain is not None
            values = column.domain.keys()
            sql_type = column.type
        else:
            sql_type = infer_type(expression, lambda name: _type_of(table, name), _no_aggregate)
            space = KeySpace(name=f"k{index}", sql_type=sql_type, values=(), source=source)
            values = evaluate_key_domain(key_expression(space), read, source)
        cells *= max(1, len(values))
        keys.append(KeySpace(name=f"k{index}", sql_type=sql_type, values=values, source=source))
    if cells > MAX_CELLS:
        raise QueryRejected(
            f"the key space has {cells} cells (product of the key domains' sizes), more than "
            f"{MAX_CELLS}; group by fewer or coarser keys"
        )
    return tuple(keys)


def check_grouped_references(query: Query) -> None:
    """Every column outside an aggregate in SELECT, HAVING and ORDER BY must be within a key.

    A column counts as grouped when it lies inside a subexpression equal to a group key
    (``age // 10 * 10`` with ``GROUP BY age // 10``).

    Raises:
        QueryRejected: A column that is neither within a group key nor aggregated (the unit
            column gets its own message).
    """
    keys = {key_source(k) for k in query.group_by}
    for clause, expression in query.post_aggregation():
        for reference in outside_keys(expression, keys):
            name = str(reference.name)
            if name == query.table.unit:
                raise QueryRejected(_unit_message(query.table, f"used in {clause}"))
            if query.per_silo and name == SILO_COLUMN:
                raise QueryRejected(
                    f"{SILO_COLUMN} in {clause} is the per-clinic pseudo-column, which is only a "
                    f"grouping key; add GROUP BY {SILO_COLUMN}"
                )
            raise QueryRejected(
                f"column {name} in {clause} is neither a group key nor inside an aggregate; "
                f"add it to GROUP BY (it needs a domain) or aggregate it, e.g. COUNT({name})"
            )


def outside_keys(expression: exp.Expr, keys: set[str]) -> list[exp.Column]:
    """Column references of ``expression`` outside aggregates and outside key subexpressions.

    >>> tree = sqlglot.parse_one("age // 10 * 10 + SUM(bmi) + sex", read="duckdb")
    >>> [c.name for c in outside_keys(tree, {"age // 10"})]
    ['sex']
    """

    def stop(node: exp.Expr) -> bool:
        return isinstance(node, exp.AggFunc | exp.Filter) or key_source(node) in keys

    return [
        node
        for node in expression.walk(bfs=False, prune=stop)
        if isinstance(node, exp.Column) and key_source(node) not in keys
    ]


def _columns_read(expression: exp.Expr, table: Table) -> list[Column]:
    """The distinct contract columns an expression reads, in order of first reference."""
    names = dict.fromkeys(str(c.name) for c in expression.find_all(exp.Column, bfs=False))
    found: list[Column] = []
    for name in names:
        column = table.column(name)
        assert column is not None, "resolved columns exist"
        found.append(column)
    return found


def _type_of(table: Table, name: str) -> str:
    column = table.column(name)
    assert column is not None
    return column.type


def _no_aggregate(_: exp.AggFunc) -> str:
    raise AssertionError("group keys hold no aggregates")


def _unit_message(table: Table, how: str) -> str:
    return (
        f"{table.unit} is the privacy unit column of {table.name} and cannot be {how}: results "
        "would describe single patients. Group by an attribute with a domain instead"
    )
