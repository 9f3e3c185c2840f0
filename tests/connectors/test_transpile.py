"""The partial query rewritten for a source keeps its bounding, clamping and error guards."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from connectors.binding_sql import bound_select
from connectors.transpile import (
    SaltedHash,
    check_pushdown_safe,
    mysql_hash,
    postgres_hash,
    transpile_partial,
    uses_row_cap,
)
from fedsql.catalog import ColumnBinding, Contract, TableBinding
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.errors import QueryRejected
from fedsql.sql.plan import SALT_PARAM
from fedsql.sql.planner import plan_query
from tests.connectors.conftest import MARIADB, PG_ADMIN, server_down


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def _relations(
    contract: Contract, dialect: str, capped: bool, query: str = ""
) -> dict[str, exp.Expr]:
    table = contract.table("patients")
    assert table is not None
    binding = TableBinding(
        "patients",
        table="" if query else "public.patient",
        query=query,
        columns=(ColumnBinding("patient_id", "id"), ColumnBinding("age", "age_years")),
    )
    row_id = exp.Window(this=exp.RowNumber()) if capped else None
    relation: exp.Expr = exp.to_table("public.patient")
    if query:
        relation = exp.Subquery(
            this=sqlglot.parse_one(query, read=dialect), alias=exp.TableAlias(this="__src")
        )
    select = bound_select(table, binding, relation, table.column_names, {}, dialect, row_id)
    return {"patients": select}


def _visits(contract: Contract, dialect: str) -> dict[str, exp.Expr]:
    """The visits table bound to ``public.visits`` under its contract names."""
    table = contract.table("visits")
    assert table is not None
    binding = TableBinding("visits", table="public.visits", query="", columns=())
    select = bound_select(
        table,
        binding,
        exp.to_table("public.visits"),
        table.column_names,
        {},
        dialect,
        exp.Window(this=exp.RowNumber()),
    )
    return {"visits": select}


def _types(contract: Contract) -> dict[str, dict[str, str]]:
    return {t.name: {c.name: c.type for c in t.columns} for t in contract.tables}


def _partial(contract: Contract, sql: str, capped: bool = True) -> str:
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(sql, None, contract, visible)
    return plan.partial_sql if capped else plan.partial_sql_uncapped


@pytest.mark.parametrize(
    ("dialect", "salted"), [("postgres", postgres_hash), ("mysql", mysql_hash)]
)
def test_the_row_cap_and_clamps_survive_and_the_salt_is_inlined(
    contract: Contract, dialect: str, salted: object
) -> None:
    partial = _partial(contract, "SELECT sex, SUM(age) FROM patients GROUP BY sex")
    assert uses_row_cap(partial)
    out = transpile_partial(partial, _relations(contract, dialect, True), dialect, salted, 77)  # type: ignore[arg-type]
    tree = sqlglot.parse_one(out, read=dialect)
    assert "QUALIFY" not in out and "$fedsql_salt" not in out and "rowid" not in out.lower()
    assert "_w <= 1" in out and "77" in out
    assert "LEAST(GREATEST(" in out
    assert tree.find(exp.Window) is not None
    # The outer sum is returned as a double, the bound table read under the federated name.
    assert "CAST(SUM(a0) AS DOUBLE" in out
    assert "public.patient" in out


def test_uncapped_queries_read_no_row_identity(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients", capped=False)
    assert not uses_row_cap(partial)
    out = transpile_partial(
        partial, _relations(contract, "postgres", False), "postgres", postgres_hash, 1
    )
    assert "__rid" not in out and "__fedsql_rid" not in out


def test_modulo_and_integer_division_are_guarded_with_nullif(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients WHERE age % 10 = 0")
    assert "TRY(" in partial
    out = transpile_partial(
        partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
    )
    assert "TRY" not in out and "NULLIF(10, 0)" in out


@pytest.mark.parametrize("where", ["age + 1 > 40", "CAST(sex AS INTEGER) = 1", "age * 2 > 100"])
def test_other_guarded_operations_are_refused(contract: Contract, where: str) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    with pytest.raises(QueryRejected, match="cannot guard"):
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )


def test_a_table_without_binding_is_refused(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM visits")
    with pytest.raises(QueryRejected, match="table visits has no binding"):
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("bmi / age > 1", "/ by anything but a constant"),
        ("sqrt(bmi) > 5", "SQRT"),
        ("dayofweek(CAST('2020-01-01' AS DATE)) = 1 AND age > 3", "DAYOFWEEK"),
        ("sex LIKE 'F\\%'", "LIKE with a backslash"),
    ],
)
def test_operations_that_could_fail_or_differ_elsewhere_are_refused(
    contract: Contract, where: str, named: str
) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    with pytest.raises(QueryRejected, match="cannot guard") as caught:
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )
    assert named in str(caught.value)


SELF_JOIN = (
    "SELECT p.sex, COUNT(*) FROM patients p LEFT JOIN patients q ON q.patient_id = p.patient_id "
    "WHERE q.bmi IS NULL GROUP BY p.sex"
)


@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_joined_relations_keep_their_aliases_and_each_its_own_row_identity(
    contract: Contract, dialect: str
) -> None:
    partial = _partial(contract, SELF_JOIN)
    salted = postgres_hash if dialect == "postgres" else mysql_hash
    out = transpile_partial(partial, _relations(contract, dialect, True), dialect, salted, 5)
    tree = sqlglot.parse_one(out, read=dialect)
    join = tree.find(exp.Join)
    assert join is not None and join.side == "LEFT"
    aliases = {s.alias for s in tree.find_all(exp.Subquery) if s.alias.startswith("__s")}
    assert aliases == {"__s0", "__s1"}
    row_ids = {(c.table, c.name) for c in tree.find_all(exp.Column) if c.name == "__fedsql_rid"}
    assert row_ids == {("__s0", "__fedsql_rid"), ("__s1", "__fedsql_rid")}
    # Both identities are hashed together; the right one is NULL where the LEFT JOIN has no
    # match, so it is read as empty text and the keyed hash never turns NULL.
    assert out.count("COALESCE(CAST(__rid1 AS") >= 1 and "rowid" not in out.lower()


def test_semi_join_and_derived_relations_read_no_row_identity_they_do_not_hash(
    contract: Contract,
) -> None:
    sql = (
        "SELECT sex, COUNT(*) FROM patients p WHERE EXISTS (SELECT 1 FROM patients q WHERE "
        "q.patient_id = p.patient_id AND q.age > 60) AND p.patient_id NOT IN (SELECT "
        "patient_id FROM patients WHERE bmi > 40) GROUP BY sex"
    )
    out = transpile_partial(
        _partial(contract, sql),
        _relations(contract, "postgres", True),
        "postgres",
        postgres_hash,
        1,
    )
    tree = sqlglot.parse_one(out, read="postgres")
    assert tree.find(exp.Exists) is None and len(list(tree.find_all(exp.In))) == 2
    assert out.count('AS "__fedsql_rid"') == 1  # the outer relation's only
    distinct = (
        "SELECT t.sex, COUNT(*) FROM (SELECT DISTINCT patient_id, sex FROM patients) t "
        "GROUP BY t.sex"
    )
    out = transpile_partial(
        _partial(contract, distinct),
        _relations(contract, "postgres", True),
        "postgres",
        postgres_hash,
        1,
    )
    assert "SELECT DISTINCT" in out and "__fedsql_rid" not in out


def test_uncapped_joined_queries_read_no_row_identity(contract: Contract) -> None:
    out = transpile_partial(
        _partial(contract, SELF_JOIN, capped=False),
        _relations(contract, "postgres", False),
        "postgres",
        postgres_hash,
        1,
    )
    assert "__rid" not in out and "__fedsql_rid" not in out and "rowid" not in out.lower()


def test_the_sum_of_squares_of_a_clamped_slot_and_count_distinct_are_accepted(
    contract: Contract,
) -> None:
    sql = "SELECT sex, VAR_POP(age), COUNT(DISTINCT patient_id) FROM patients GROUP BY sex"
    partial = _partial(contract, sql)
    check_pushdown_safe(sqlglot.parse_one(partial, read="duckdb"))
    out = transpile_partial(partial, _relations(contract, "mysql", True), "mysql", mysql_hash, 1)
    assert "SUM(a0 * a0) AS DOUBLE" in out and "COUNT(DISTINCT a1)" in out


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT COUNT(*) FROM t WHERE a > (SELECT b FROM u)", "a subquery used as a value"),
        ("SELECT (SELECT b FROM u) AS k0, COUNT(*) FROM t GROUP BY k0", "used as a value"),
        ("SELECT COUNT(*) FROM t RIGHT JOIN u ON t.a = u.a", "this kind of JOIN"),
        ("SELECT COUNT(*) FROM t FULL JOIN u ON t.a = u.a", "this kind of JOIN"),
        ("SELECT COUNT(*) FROM t JOIN u USING (a)", "this kind of JOIN"),
        ("SELECT COUNT(*) FROM t, u", "this kind of JOIN"),
        ("SELECT COUNT(*) FROM t ASOF JOIN u ON t.a >= u.a", "this kind of JOIN"),
        ("SELECT COUNT(*) FROM (SELECT DISTINCT ON (a) a FROM t) s", "DISTINCT ON"),
        ("SELECT SUM(a0 * a1) FROM t", "MUL"),
        ("SELECT COUNT(*) FROM t WHERE a0 * a0 > 4", "MUL"),
        ("SELECT SUM(t.a0 * t.a0) FROM t", "MUL"),
        ("SELECT SUM(age * age) FROM t", "MUL"),
    ],
)
def test_joins_subqueries_distinct_and_products_outside_the_planner_shapes_are_refused(
    sql: str, named: str
) -> None:
    with pytest.raises(QueryRejected, match="this clinic runs queries in its own database") as e:
        check_pushdown_safe(sqlglot.parse_one(sql, read="duckdb"))
    assert named in str(e.value)


# Six patients: a NULL unit, negative ages and bmi (clamped before they are summed or
# squared), a NULL bmi, sex and zip.
ROWS = [
    (1, "a", 30, "F", "z", 20.0),
    (2, "b", 50, "M", "z", None),
    (3, "c", -7, "M", None, 30.0),
    (4, "d", 45, "F", "y", 35.5),
    (None, "e", 60, "F", "z", 25.0),
    (5, "f", 20, None, "x", -3.5),
]
SEMANTICS = [
    # NOT IN over a list holding NULL (the NULL unit is 60 > 40) keeps no row anywhere.
    "SELECT COUNT(*) FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM patients "
    "WHERE age > 40)",
    "SELECT sex, COUNT(*) FROM patients WHERE patient_id NOT IN (SELECT patient_id FROM "
    "patients WHERE age < 40) GROUP BY sex",
    "SELECT sex, COUNT(*) FROM patients p WHERE NOT EXISTS (SELECT 1 FROM patients q WHERE "
    "q.patient_id = p.patient_id AND q.age > 40) GROUP BY sex",
    "SELECT sex, COUNT(*) FROM patients p WHERE EXISTS (SELECT 1 FROM patients q WHERE "
    "q.patient_id = p.patient_id AND q.age < 40) GROUP BY sex",
    SELF_JOIN,
    "SELECT sex, VAR_POP(age), SUM(age), VAR_SAMP(bmi) FROM patients GROUP BY sex",
    "SELECT COUNT(DISTINCT patient_id), COUNT(*) FROM patients",
    "SELECT t.sex, COUNT(*) FROM (SELECT DISTINCT patient_id, sex FROM patients) t GROUP BY t.sex",
    # Arithmetic on a DOUBLE, with NULL and negative values and a negative constant.
    "SELECT AVG(bmi - 25) AS excess, SUM(age >= 65), SUM(bmi + -30.5) FROM patients",
    "SELECT sex, COUNT(*) FROM patients WHERE 40 - bmi > 5 GROUP BY sex",
    # Division by a constant: integers divide as DOUBLE (PostgreSQL and MySQL would divide
    # them as integers), NULL and negative values and a negative divisor included.
    "SELECT SUM(bmi / 4), AVG(age / 3), SUM(bmi / -2.5) FROM patients",
    "SELECT sex, COUNT(*) FROM patients WHERE age / 7 > 4 GROUP BY sex",
    # || propagates NULL (sex, zip) in every engine; booleans print as true / false.
    "SELECT sex || '/' || CAST(diabetic AS VARCHAR) AS g, COUNT(*) FROM patients GROUP BY g",
    "SELECT sex, COUNT(*) FROM patients WHERE zip || ':' || CAST(age AS VARCHAR) IN "
    "('z:30', 'x:20', 'z:-7') GROUP BY sex",
]


def _source_query() -> str:
    def value(v: object) -> str:
        if v is None:
            return "NULL"
        return f"'{v}'" if isinstance(v, str) else str(v)

    names = ("id", "name", "age_years", "sex", "zip", "bmi")
    selects = [
        "SELECT "
        + ", ".join(f"{value(v)} AS {n}" for v, n in zip(row, names, strict=True))
        + f", {'TRUE' if i % 2 else 'FALSE'} AS diabetic"
        for i, row in enumerate(ROWS)
    ]
    return " UNION ALL ".join(selects)


def _normal(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out = [tuple(float(v) if isinstance(v, Decimal | int | float) else v for v in r) for r in rows]
    return sorted(out, key=repr)


def _run_postgres(sql: str) -> list[tuple[Any, ...]]:
    import adbc_driver_postgresql.dbapi as adbc_pg

    try:
        conn = adbc_pg.connect(PG_ADMIN)
    except Exception as exc:
        server_down("PostgreSQL at 127.0.0.1:5432", exc)
    with conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(r) for r in cursor.fetchall()]


def _run_mariadb(sql: str) -> list[tuple[Any, ...]]:
    import pymysql

    host, port = MARIADB
    try:
        conn = pymysql.connect(host=host, port=port, user="root", password="")
    except Exception as exc:
        server_down("MariaDB at 127.0.0.1:3306", exc)
    with conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return [tuple(r) for r in cursor.fetchall()]


@pytest.mark.parametrize("sql", SEMANTICS)
@pytest.mark.parametrize("dialect", ["postgres", "mysql"])
def test_nulls_negative_values_and_semi_joins_answer_like_duckdb_in_the_source(
    contract: Contract, dialect: str, sql: str
) -> None:
    plan = plan_query(sql, None, contract, {t.name: t.column_names for t in contract.tables})
    with duckdb.connect() as own:
        own.execute(
            "CREATE TABLE patients (patient_id BIGINT, name VARCHAR, age INTEGER, sex VARCHAR, "
            "zip VARCHAR, bmi DOUBLE, diabetic BOOLEAN)"
        )
        own.executemany(
            "INSERT INTO patients VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*r, i % 2 == 1) for i, r in enumerate(ROWS)],
        )
        params = {SALT_PARAM: 3} if f"${SALT_PARAM}" in plan.partial_sql else {}
        want = own.execute(plan.partial_sql, params).fetchall()
    salted: SaltedHash = postgres_hash if dialect == "postgres" else mysql_hash
    relations = _relations(contract, dialect, True, _source_query())
    out = transpile_partial(plan.partial_sql, relations, dialect, salted, 3, _types(contract))
    got = (_run_postgres if dialect == "postgres" else _run_mariadb)(out)
    assert want, "the DuckDB reference answered no group"
    assert len(got) == len(want), (got, want)
    for g, w in zip(_normal(got), _normal(want), strict=True):
        for a, b in zip(g, w, strict=True):
            if isinstance(b, float) and isinstance(a, float):
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (got, want)
            else:
                assert a == b, (got, want)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("age + 1 > 40", "cannot guard ADD"),  # integer overflow differs between engines
        ("bmi - bmi > 1", "cannot guard SUB"),  # two doubles can overflow to inf
        ("bmi + 1e300 > 1", "cannot guard ADD"),
        ("bmi * 2 > 50", "MUL could fail"),
        ("CAST(bmi AS VARCHAR) = '20.0'", "cannot guard CAST"),  # doubles print differently
        ("sex || CAST(age AS VARCHAR) || zip = 'x'", ""),
        ("sex || name = 'x'", ""),
    ],
)
def test_arithmetic_casts_and_concatenation_are_run_only_where_every_engine_agrees(
    contract: Contract, where: str, message: str
) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    relations = _relations(contract, "postgres", True)
    if not message:
        out = transpile_partial(partial, relations, "postgres", postgres_hash, 1, _types(contract))
        assert "TRY" not in out
        return
    with pytest.raises(QueryRejected, match=message):
        transpile_partial(partial, relations, "postgres", postgres_hash, 1, _types(contract))


def test_concatenating_a_value_that_is_not_text_is_refused(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients WHERE age || 'x' = '1x'")
    relations = _relations(contract, "mysql", True)
    with pytest.raises(QueryRejected, match=r"\|\| over a value that is not text"):
        transpile_partial(partial, relations, "mysql", mysql_hash, 1, _types(contract))


def test_without_column_types_no_type_dependent_operation_runs(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients WHERE bmi - 25 > 0")
    with pytest.raises(QueryRejected, match="cannot guard SUB"):
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )


def test_booleans_print_as_duckdb_prints_them_in_mysql(contract: Contract) -> None:
    partial = _partial(
        contract, "SELECT CAST(diabetic AS VARCHAR) AS g, SUM(diabetic) FROM patients GROUP BY g"
    )
    out = transpile_partial(
        partial, _relations(contract, "mysql", True), "mysql", mysql_hash, 1, _types(contract)
    )
    assert "THEN 'true'" in out and "THEN 'false'" in out


def test_an_exists_correlated_on_the_unit_runs_as_a_semi_join_never_null(
    contract: Contract,
) -> None:
    sql = (
        "SELECT COUNT(*) FROM patients p WHERE NOT EXISTS (SELECT 1 FROM patients q WHERE "
        "q.patient_id = p.patient_id AND q.age > 60)"
    )
    out = transpile_partial(
        _partial(contract, sql), _relations(contract, "mysql", True), "mysql", mysql_hash, 1
    )
    tree = sqlglot.parse_one(out, read="mysql")
    assert tree.find(exp.Exists) is None
    semi = tree.find(exp.In)
    assert semi is not None and semi.args.get("query") is not None
    # NULL units on either side are excluded explicitly, so NOT keeps its meaning.
    both = semi.parent
    assert isinstance(both, exp.And) and isinstance(both.this, exp.Not)
    assert both.this.find(exp.Is) is not None  # the outer unit
    assert semi.args["query"].find(exp.Is) is not None  # the inner unit


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("bmi / age > 1", "/ by anything but a constant"),  # a column divisor may be 0 or tiny
        ("bmi / 0.5 > 1", "/ by anything but a constant"),  # could overflow to inf
        ("sex / 2 > 1", "/ over anything but a numeric column"),
    ],
)
def test_division_runs_only_by_a_constant_of_magnitude_at_least_one(
    contract: Contract, where: str, message: str
) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    relations = _relations(contract, "postgres", True)
    with pytest.raises(QueryRejected, match=message):
        transpile_partial(partial, relations, "postgres", postgres_hash, 1, _types(contract))


def test_a_tiny_dividend_divides_to_zero_instead_of_failing_on_underflow(
    contract: Contract,
) -> None:
    partial = _partial(contract, "SELECT SUM(bmi / 100) FROM patients")
    out = transpile_partial(
        partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1,
        _types(contract),
    )  # fmt: skip
    assert 'WHEN ABS(CAST("bmi" AS DOUBLE PRECISION)) < 1e-300' in out
    # PostgreSQL itself refuses the underflow the guard avoids.
    with pytest.raises(Exception, match="underflow"):
        _run_postgres("SELECT CAST('5e-324' AS DOUBLE PRECISION) / 100")
    assert _run_postgres(
        "SELECT CASE WHEN ABS(CAST('5e-324' AS DOUBLE PRECISION)) < 1e-300 THEN 0.0 "
        "ELSE CAST('5e-324' AS DOUBLE PRECISION) / 100 END"
    ) == [(0.0,)]


@pytest.mark.parametrize(
    ("dialect", "unit", "expected"),
    [
        ("postgres", "month", "CAST(DATE_TRUNC('month', CAST("),
        ("postgres", "week", "CAST(DATE_TRUNC('week', CAST("),
        ("mysql", "year", "CAST(DATE_FORMAT("),
    ],
)
def test_date_trunc_of_a_date_is_a_plain_timestamp_in_every_source(
    contract: Contract, dialect: str, unit: str, expected: str
) -> None:
    partial = _partial(
        contract, f"SELECT date_trunc('{unit}', visit_date) AS m, COUNT(*) FROM visits GROUP BY m"
    )
    salted = postgres_hash if dialect == "postgres" else mysql_hash
    out = transpile_partial(
        partial, _visits(contract, dialect), dialect, salted, 1, _types(contract)
    )
    assert expected in out and "TRY" not in out


def test_a_date_trunc_unit_the_source_cannot_match_is_refused(contract: Contract) -> None:
    partial = _partial(
        contract, "SELECT date_trunc('quarter', visit_date) AS q, COUNT(*) FROM visits GROUP BY q"
    )
    with pytest.raises(QueryRejected, match="cannot guard TIMESTAMPTRUNC"):
        transpile_partial(
            partial, _visits(contract, "mysql"), "mysql", mysql_hash, 1, _types(contract)
        )
    # In PostgreSQL the truncated date is a plain TIMESTAMP: no session time zone enters.
    rows = _run_postgres(
        "SELECT CAST(DATE_TRUNC('month', CAST(DATE '2024-03-15' AS TIMESTAMP)) AS TIMESTAMP), "
        "pg_typeof(DATE_TRUNC('month', CAST(DATE '2024-03-15' AS TIMESTAMP)))::text"
    )
    assert rows == [(datetime.datetime(2024, 3, 1, 0, 0), "timestamp without time zone")]
