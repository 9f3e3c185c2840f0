"""SQL for a bound table in a source's dialect: the source table or query, mapped to the contract.

A federated table bound to ``public.patient`` with ``patient_id = "id"`` and a values map on
``sex`` reads, in PostgreSQL::

    SELECT "id" AS "patient_id",
           CASE CAST("gender" AS TEXT) WHEN 'female' THEN 'F' ... ELSE NULL END AS "sex"
    FROM public.patient

Only widening casts the source cannot fail on are added here (integers and decimals read as
DOUBLE); anything else was refused at start-up in pushdown mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp, parse_one

from fedsql.catalog import ColumnBinding, KeyValue, Table, TableBinding

#: Column of a bound relation holding a row identity, for the keyed row order of the row cap.
ROW_ID = "__fedsql_rid"


def source_relation(binding: TableBinding, dialect: str) -> exp.Expr:
    """The source of a binding as a FROM item: its table, or its query as a subquery.

    >>> source_relation(TableBinding("t", table="public.patient"), "postgres").sql("postgres")
    'public.patient'
    """
    if binding.table:
        return exp.to_table(binding.table, dialect=dialect)
    query = parse_one(binding.query, read=dialect)
    return exp.Subquery(this=query, alias=exp.TableAlias(this=exp.to_identifier("__src")))


def raw_select(relation: exp.Expr, columns: Sequence[ColumnBinding], dialect: str) -> str:
    """SELECT of the source columns as they are, named for the contract columns (snapshots).

    >>> raw_select(exp.to_table("p"), [ColumnBinding("age", "Age_Y")], "postgres")
    'SELECT "age_y" AS "age" FROM p'
    """
    select = exp.select(
        *(exp.alias_(source_column(col.source), col.name, quoted=True) for col in columns)
    ).from_(relation)
    return select.sql(dialect)


def source_column(name: str) -> exp.Column:
    """A quoted source column (names are matched lower-case, as the policy writes them)."""
    return exp.Column(this=exp.to_identifier(name.lower(), quoted=True))


def literal(value: KeyValue | str) -> exp.Expr:
    """A SQL literal for a mapped value.

    >>> literal(True).sql(), literal(3).sql(), literal("F").sql()
    ('TRUE', '3', "'F'")
    """
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def mapped_column(bound: ColumnBinding, contract_type: str, family: str, dialect: str) -> exp.Expr:
    """The contract value of one bound column, computed in the source.

    Args:
        bound: The column's binding.
        contract_type: Its type in the contract.
        family: The source column's type family (as the connector reports it).
        dialect: The source's sqlglot dialect.

    Returns:
        An expression over the source's columns.
    """
    column: exp.Expr = source_column(bound.source)
    if bound.values:
        text = exp.DataType.build("VARCHAR")
        column = exp.Case(
            this=exp.Cast(this=column, to=text),
            ifs=[
                exp.If(this=exp.Literal.string(src), true=literal(value))
                for src, value in bound.values
            ],
            default=exp.Null(),
        )
    elif contract_type == "DOUBLE" and family in ("integer", "decimal"):
        column = exp.Cast(this=column, to=exp.DataType.build("DOUBLE"))
    if dialect == "mysql" and contract_type == "VARCHAR":
        # Compare, group and match strings case- and accent-sensitively, as DuckDB does.
        utf8 = parse_one("CAST(x AS CHAR CHARACTER SET utf8mb4)", read="mysql")
        utf8.set("this", column)
        column = exp.Collate(this=utf8, expression=exp.var("utf8mb4_bin"))
    return column


def bound_select(
    table: Table,
    binding: TableBinding,
    relation: exp.Expr,
    columns: Sequence[str],
    families: dict[str, str],
    dialect: str,
    row_id: exp.Expr | None,
) -> exp.Select:
    """The bound table in the source: contract columns, and a row identity when asked for.

    Args:
        table: The contract table.
        binding: Its binding.
        relation: The source table or query as a FROM item.
        columns: The shared columns.
        families: Source column -> type family.
        dialect: The source's sqlglot dialect.
        row_id: An expression giving each row an identity (for the keyed row order), or None.

    Returns:
        The SELECT, to be used as a subquery named for the federated table.
    """
    projections: list[exp.Expr] = []
    for name in columns:
        contract_column = table.column(name)
        assert contract_column is not None
        bound = binding.column(name)
        family = families.get(bound.source.lower(), "any")
        expression = mapped_column(bound, contract_column.type, family, dialect)
        projections.append(exp.alias_(expression, name, quoted=True))
    if row_id is not None:
        projections.append(exp.alias_(row_id, ROW_ID, quoted=True))
    return exp.select(*projections).from_(relation)
