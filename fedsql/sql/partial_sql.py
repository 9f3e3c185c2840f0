"""The partial query each silo runs: filter, bound each unit's contribution, aggregate per cell.

Shape (DuckDB dialect; ``$fedsql_salt`` is bound by the silo to a fresh random BIGINT)::

    WITH __rows AS (
      SELECT "<unit>" AS __unit, rowid AS __rid, "<key col>" AS k0, <value> AS a0, ...
      FROM "<table>" WHERE <analyst's WHERE, parameters bound, fallible operations guarded>),
    __capped AS (
      SELECT * FROM __rows
      QUALIFY ROW_NUMBER() OVER (PARTITION BY __unit ORDER BY HASH(__rid, $fedsql_salt)) <= <k>)
    SELECT k0, COUNT(*) AS m0, SUM(a0) AS m1, COUNT(a0) AS m2 FROM __capped GROUP BY k0

A key over the ``silo`` pseudo-column reads ``$fedsql_silo`` where the column would be
(``$fedsql_silo AS k0``); each silo binds it to its own id (see ``silo_key``).

The row cap keeps at most k rows per unit after WHERE, chosen by a keyed hash of the row id, so
the analyst cannot steer which rows count. A summed column's value is clamped to its bounds::

    CASE WHEN "x" IS NULL THEN NULL ELSE LEAST(GREATEST(CAST("x" AS DOUBLE), L), U) END

The NULL guard matters: DuckDB's LEAST / GREATEST skip NULL arguments, so without it a NULL
would become L and be counted and summed.

When the query joins tables on the privacy unit, or reads CTEs, subqueries or semi-joins
(``row_source``), ``__rows`` reads the joined rows instead: every relation under a generated
alias, columns qualified, CTEs and subqueries inlined as derived tables, IN / EXISTS kept as
subqueries correlated on the unit only. The unit is the first relation's, and the row id is one
column per joined relation (``__rid0``, ``__rid1``, ...), hashed together, so it stays unique
after the join; the cap k is the product of the joined relations' caps::

    WITH __rows AS (
      SELECT __s0."patient_id" AS __unit, __s0.rowid AS __rid0, __s1.rowid AS __rid1, ...
      FROM "labs" AS __s0 JOIN "patients" AS __s1 ON __s0."patient_id" = __s1."patient_id"
      WHERE ...),
    __capped AS (
      SELECT * FROM __rows
      QUALIFY ROW_NUMBER() OVER (PARTITION BY __unit
                                 ORDER BY HASH(__rid0, __rid1, $fedsql_salt)) <= <k>)
    ...

In the WHERE condition every operation that can fail on a value (a division by zero, a failed
CAST, an overflow) is wrapped in its own ``TRY`` and gives NULL on that row instead of failing the
query; otherwise whether a query fails would reveal single rows (see ``guard_errors``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from fedsql.sql.group_keys import key_expression
from fedsql.sql.guard_errors import guard_row_errors
from fedsql.sql.measures import MeasureSet, ValueSlot
from fedsql.sql.plan import SALT_PARAM, KeySpace
from fedsql.sql.quantiles import bin_condition, bin_index
from fedsql.sql.query import Query
from fedsql.sql.relations import from_clause
from fedsql.sql.silo_key import silo_placeholder
from fedsql.sql.statement import DIALECT

ROWS_CTE = "__rows"
CAPPED_CTE = "__capped"
UNIT_COLUMN = "__unit"
ROW_ID_COLUMN = "__rid"


def build_partial_sql(
    query: Query, keys: tuple[KeySpace, ...], measures: MeasureSet, *, cap: bool = True
) -> str:
    """The silo's partial query for a resolved query.

    Args:
        query: The resolved query.
        keys: Its key spaces (``k0``, ...).
        measures: Its measures and value slots.
        cap: Keep at most k rows per unit. Without the cap the query is only safe at a silo that
            has verified that no unit has more than k rows in the table (a single-table query can
            only keep fewer rows per unit than the table has).

    Returns:
        DuckDB SQL returning one row per non-empty group: key columns then measure columns.
    """
    values = [(slot.name, slot_value(slot)) for slot in measures.slots]
    rows, row_ids = unit_rows(query, keys, values)
    capped = capped_rows(row_ids, query.table.max_rows_per_unit, cap=cap)

    outputs: list[exp.Expr] = [exp.column(key.name) for key in keys]
    for measure in measures.measures:
        outputs.append(exp.alias_(_measure_aggregate(measure.name, measures), measure.name))
    partial = exp.select(*outputs).from_(CAPPED_CTE)
    if keys:
        partial = partial.group_by(*(exp.column(key.name) for key in keys))
    partial = partial.with_(ROWS_CTE, as_=rows).with_(CAPPED_CTE, as_=capped)
    return partial.sql(DIALECT, pretty=True, comments=False)


def unit_rows(
    query: Query,
    keys: tuple[KeySpace, ...],
    values: Sequence[tuple[str, exp.Expr]],
    filters: Sequence[exp.Expr] = (),
) -> tuple[exp.Select, list[str]]:
    """The ``__rows`` CTE: unit, row id(s), keys and per-row values of the rows WHERE keeps.

    One contract table is read as itself; joined rows as in the module docstring.

    Args:
        query: The resolved query.
        keys: Its key spaces (``k0``, ...).
        values: Name and expression of each per-row value, over the query's columns quoted
            (as :func:`slot_value` writes them).
        filters: Further row conditions, over the query's columns quoted, ANDed to WHERE.

    Returns:
        The SELECT and its row-id columns (hashed together by :func:`capped_rows`).
    """
    if query.joined:
        assert query.source is not None
        scope = query.source.scope
        row_ids = [f"{ROW_ID_COLUMN}{index}" for index in range(len(scope.row_ids()))]
        projections: list[exp.Expr] = [exp.alias_(scope.relations[0].unit.copy(), UNIT_COLUMN)]
        projections += [
            exp.alias_(rid, name) for rid, name in zip(scope.row_ids(), row_ids, strict=True)
        ]
        read = scope.to_sql
        item, joins = from_clause(scope)
    else:
        row_ids = [ROW_ID_COLUMN]
        projections = [
            exp.alias_(_quoted(query.table.unit), UNIT_COLUMN),
            exp.alias_(exp.column("rowid"), ROW_ID_COLUMN),
        ]

        def read(expression: exp.Expr) -> exp.Expr:
            return expression

        item, joins = exp.Table(this=exp.to_identifier(query.table.name, quoted=True)), []
    projections += [exp.alias_(read(_key_value(query, key)), key.name) for key in keys]
    projections += [exp.alias_(read(value), name) for name, value in values]
    rows = exp.select(*projections).from_(item)
    for join in joins:
        rows = rows.join(join)
    if query.where is not None:
        rows = rows.where(read(guard_row_errors(quote_columns(query.where))))
    for condition in filters:
        rows = rows.where(read(condition))
    return rows, row_ids


def capped_rows(row_ids: Sequence[str], k: int, *, cap: bool = True) -> exp.Select:
    """The ``__capped`` CTE: at most ``k`` rows per unit, by a keyed hash of the row ids.

    Args:
        row_ids: The row-id columns of ``__rows``.
        k: The cap (the product of the joined relations' caps).
        cap: False for every row of ``__rows`` (see :func:`build_partial_sql`).

    Returns:
        The SELECT over ``__rows``.
    """
    rank = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column(UNIT_COLUMN)],
        order=exp.Order(
            expressions=[
                exp.Ordered(
                    this=exp.Anonymous(
                        this="HASH",
                        expressions=[
                            *(exp.column(rid) for rid in row_ids),
                            exp.Placeholder(this=SALT_PARAM),
                        ],
                    ),
                    nulls_first=False,
                )
            ]
        ),
    )
    capped = exp.select(exp.Star()).from_(ROWS_CTE)
    if cap:
        capped = capped.qualify(exp.LTE(this=rank, expression=exp.Literal.number(k)))
    return capped


def _key_value(query: Query, key: KeySpace) -> exp.Expr:
    """The row-level value of a key; the ``silo`` pseudo-column becomes ``$fedsql_silo``."""
    expression = key_expression(key)
    return silo_placeholder(expression) if query.per_silo else expression


def slot_value(slot: ValueSlot, value_sql: exp.Expr | None = None) -> exp.Expr:
    """The per-row value of a slot: its expression (errors guarded), clamped when it is summed.

    ``value_sql`` reads the value (default: the slot's expression over quoted columns).

    >>> import sqlglot
    >>> from fedsql.catalog import Bounds
    >>> slot = ValueSlot("a0", "bmi", sqlglot.parse_one("bmi"), Bounds(10.0, 70.0), False)
    >>> slot_value(slot).sql("duckdb")
    'CASE WHEN "bmi" IS NULL THEN NULL ELSE LEAST(GREATEST(CAST("bmi" AS DOUBLE), 10.0), 70.0) END'
    """
    column = (
        value_sql if value_sql is not None else guard_row_errors(quote_columns(slot.expression))
    )
    if slot.clamp is None:
        return column
    if slot.integral:
        lo: exp.Expr = exp.Literal.number(int(slot.clamp.lo))
        hi: exp.Expr = exp.Literal.number(int(slot.clamp.hi))
        typed = exp.Cast(this=column.copy(), to=exp.DataType.build("BIGINT"))
    else:
        lo = exp.Literal.number(repr(float(slot.clamp.lo)))
        hi = exp.Literal.number(repr(float(slot.clamp.hi)))
        typed = exp.Cast(this=column.copy(), to=exp.DataType.build("DOUBLE"))
    floor = exp.Greatest(this=typed, expressions=[lo], ignore_nulls=True)
    clamped = exp.Least(this=floor, expressions=[hi], ignore_nulls=True)
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=column, expression=exp.Null()), true=exp.Null())],
        default=clamped,
    )


def quote_columns(expression: exp.Expr) -> exp.Expr:
    """A copy of a resolved expression with every column reference quoted.

    >>> import sqlglot
    >>> quote_columns(sqlglot.parse_one("age > 3 AND lower(sex) = 'f'")).sql("duckdb")
    '"age" > 3 AND LOWER("sex") = \\'f\\''
    """

    def quote(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            return _quoted(str(node.name))
        return node

    return expression.transform(quote)


def _measure_aggregate(name: str, measures: MeasureSet) -> exp.Expr:
    """The aggregate computing measure ``name`` over the capped rows."""
    kind, source = measures.key_of[name]
    if source is None:
        return exp.Count(this=exp.Star())
    value_slot = measures.slot_of[source]
    slot = exp.column(value_slot.name)
    j = bin_index(kind)
    if j is not None:
        assert value_slot.clamp is not None
        condition = bin_condition(slot, value_slot.clamp, j)
        return exp.Count(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))]))
    if kind == "count":
        return exp.Count(this=slot)
    if kind == "distinct":
        return exp.Count(this=exp.Distinct(expressions=[slot]))
    if kind == "sumsq":
        return exp.Sum(this=exp.Mul(this=slot, expression=slot.copy()))
    return exp.Sum(this=slot)


def _quoted(name: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True))
