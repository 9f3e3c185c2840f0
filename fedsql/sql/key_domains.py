"""Key domains of derived group keys: an expression's values over the public domains it reads.

A derived key (``age // 10``, ``year(visit_date)``, a CASE band, ``age >= 65``, an expression
over several key columns) has as its public domain the set of values the expression takes when
every column it reads runs over its contract ``domain`` plus NULL (a row's column may be NULL).
The values are computed at plan time by DuckDB, the engine the silos run the same (guarded)
expression with, over an in-memory cross product of those domain values; nothing is read from
data. Evaluation is deterministic: the values are ordered by the first input combination (in
mixed-radix domain order, NULL last) that yields them, so bands come out in the order of the
column's domain (``'0-17'``, ``'18-64'``, ``'65+'``) and ``year(d)`` ascending.

The work is bounded: the cross product may have at most ``MAX_EVALUATIONS`` rows.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from fedsql.catalog import Column, KeyValue
from fedsql.errors import QueryRejected
from fedsql.sql.statement import DIALECT

#: Most input combinations (product of the read domains' sizes, NULL included) evaluated per key.
MAX_EVALUATIONS = 1_000_000

#: The Arrow type of each contract column type.
ARROW_TYPES: dict[str, pa.DataType] = {
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "VARCHAR": pa.string(),
    "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"),
    "BOOLEAN": pa.bool_(),
}
_ORDINAL = "__ord"
_VALUE = "__value"

_lock = threading.Lock()
_engine: duckdb.DuckDBPyConnection | None = None


def _connection() -> duckdb.DuckDBPyConnection:
    """A cursor on the module's in-memory DuckDB (no file or network access)."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = duckdb.connect(config={"enable_external_access": False, "threads": 1})
        return _engine.cursor()


def evaluate_key_domain(
    expression: exp.Expr, columns: Sequence[Column], shown: str
) -> tuple[KeyValue, ...]:
    """The distinct values of a guarded row expression over its columns' public domains.

    Args:
        expression: The expression as the silo runs it: columns quoted by contract name,
            fallible operations guarded with TRY.
        columns: The contract columns it reads, each with a domain.
        shown: The key as the analyst wrote it (for messages).

    Returns:
        Its values in first-appearance order (NULL included when the expression yields it).

    Raises:
        QueryRejected: The cross product of the domains is larger than ``MAX_EVALUATIONS``.

    >>> import sqlglot
    >>> from fedsql.catalog import Domain
    >>> age = Column("age", "INTEGER", domain=Domain("int_range", lo=0, hi=30))
    >>> evaluate_key_domain(sqlglot.parse_one('"age" // 10', read="duckdb"), [age], "age // 10")
    (0, 1, 2, 3, None)
    """
    size = 1
    for column in columns:
        assert column.domain is not None, "key columns have domains"
        size *= column.domain.size + 1
    if size > MAX_EVALUATIONS:
        raise QueryRejected(
            f"the group key {shown} reads domains with {size} value combinations, more than "
            f"{MAX_EVALUATIONS}; group by fewer or coarser columns"
        )
    select = exp.select(
        exp.alias_(expression.copy(), _VALUE),
        exp.alias_(exp.Min(this=exp.column(_ORDINAL)), _ORDINAL),
    )
    tables: list[tuple[str, pa.Table]] = []
    ordinal: exp.Expr = exp.Literal.number(0)
    for index, column in enumerate(columns):
        assert column.domain is not None
        values: list[Any] = [*column.domain.keys(), None]
        name = f"__domain{index}"
        tables.append(
            (
                name,
                pa.table(
                    {
                        column.name: pa.array(values, type=ARROW_TYPES[column.type]),
                        f"{_ORDINAL}{index}": pa.array(range(len(values)), type=pa.int64()),
                    }
                ),
            )
        )
        ordinal = exp.Add(
            this=exp.Mul(this=ordinal, expression=exp.Literal.number(len(values))),
            expression=exp.column(f"{_ORDINAL}{index}"),
        )
    source: exp.Select = exp.select(exp.alias_(ordinal, _ORDINAL))
    if tables:
        source = exp.select(exp.Star(), exp.alias_(ordinal, _ORDINAL)).from_(tables[0][0])
        for name, _ in tables[1:]:
            source = source.join(name, join_type="cross")
    select = select.from_(exp.alias_(exp.Subquery(this=source), "__inputs"))
    select = select.group_by(exp.column(_VALUE)).order_by(exp.column(_ORDINAL))
    cursor = _connection()
    try:
        for name, table in tables:
            cursor.register(name, table)
        rows = cursor.execute(select.sql(DIALECT)).fetchall()
    finally:
        cursor.close()
    return tuple(row[0] for row in rows)
