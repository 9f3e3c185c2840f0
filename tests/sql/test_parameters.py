"""Parameter binding: values become typed literals in the syntax tree, never text.

Wrong counts, names and types are refused; a bound string is only ever one string literal.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Mapping, Sequence

import duckdb
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from fedsql.errors import DataError, ProgrammingError, QueryRejected
from fedsql.sql import plan_query
from fedsql.sql.parameters import to_literal

from .testbed import CONTRACT, VISIBLE, federated_answer, partial_rows

COUNT_BY_NAME = "SELECT COUNT(*) FROM patients WHERE name = ?"

#: One in-memory DuckDB to evaluate literals in (property tests run many examples).
_DUCK = duckdb.connect()


def _string_literals(sql: str) -> list[str]:
    """String literals of the (single) statement in ``sql``, parsed back with sqlglot."""
    trees = sqlglot.parse(sql, read="duckdb")
    assert len(trees) == 1 and trees[0] is not None
    return [str(n.this) for n in trees[0].find_all(exp.Literal) if n.is_string]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT COUNT(*) FROM patients WHERE age > ? AND sex = ?", [40, "F"]),
        ("SELECT COUNT(*) FROM patients WHERE age > $1 AND sex = $2", [40, "F"]),
        ("SELECT COUNT(*) FROM patients WHERE sex = $2 AND age > $1", (40, "F")),
        ("SELECT COUNT(*) FROM patients WHERE age > $a AND sex = $s", {"a": 40, "s": "F"}),
        ("SELECT COUNT(*) FROM patients WHERE age > :a AND sex = :s", {"s": "F", "a": 40}),
        (
            "SELECT COUNT(*) FROM patients WHERE age > $a AND sex = $s AND $a > 0",
            {"a": 40, "s": "F"},
        ),
    ],
)
def test_every_placeholder_style_binds_the_same_literals(
    sql: str, params: Sequence[object] | Mapping[str, object]
) -> None:
    plan = plan_query(sql, params, CONTRACT, VISIBLE)
    assert '"age" > 40' in plan.partial_sql
    assert "\"sex\" = 'F'" in plan.partial_sql
    assert "?" not in plan.partial_sql and "$a" not in plan.partial_sql


def test_qmark_parameters_bind_in_text_order_even_where_the_tree_reorders() -> None:
    # sqlglot stores date_diff's operands swapped; binding must follow the text
    sql = (
        "SELECT COUNT(*) FROM visits WHERE date_diff('day', ?, visit_date) > ? AND dept = ? LIMIT ?"
    )
    plan = plan_query(sql, [dt.date(2024, 1, 2), 3, "er", 7], CONTRACT, VISIBLE)
    assert "TRY(DATE_DIFF('DAY', CAST('2024-01-02' AS DATE), \"visit_date\")) > 3" in (
        plan.partial_sql
    )
    assert "\"dept\" = 'er'" in plan.partial_sql
    assert plan.finalize_sql.rstrip().endswith("LIMIT 7")


def test_plan_records_parameters_canonically() -> None:
    seq = plan_query(COUNT_BY_NAME, ["Ann"], CONTRACT, VISIBLE)
    named = plan_query(
        "SELECT COUNT(*) FROM patients WHERE name = $n AND age > $a",
        {"n": "Ann", "a": 3},
        CONTRACT,
        VISIBLE,
    )
    assert seq.params == ("Ann",)
    assert named.params == (("a", 3), ("n", "Ann"))
    assert plan_query("SELECT COUNT(*) FROM patients", None, CONTRACT, VISIBLE).params == ()


@pytest.mark.parametrize(
    ("sql", "params", "fragment"),
    [
        (COUNT_BY_NAME, None, "1 parameter placeholder(s) but no parameters"),
        (COUNT_BY_NAME, [], "1 ? placeholder(s) but 0 parameter(s)"),
        (COUNT_BY_NAME, ["a", "b"], "1 ? placeholder(s) but 2 parameter(s)"),
        (COUNT_BY_NAME, {"n": "a"}, "take a sequence"),
        (COUNT_BY_NAME, "Ann", "not str"),
        (COUNT_BY_NAME, b"Ann", "not bytes"),
        (COUNT_BY_NAME, 42, "not int"),
        ("SELECT COUNT(*) FROM patients WHERE name = $n", ["a"], "take a mapping"),
        ("SELECT COUNT(*) FROM patients WHERE name = $n", {"m": "a"}, "no value given for"),
        ("SELECT COUNT(*) FROM patients WHERE name = $n", {"n": "a", "x": 1}, "not used"),
        ("SELECT COUNT(*) FROM patients WHERE name = $n", {1: "a"}, "names must be strings"),
        ("SELECT COUNT(*) FROM patients WHERE name = ? AND sex = $s", ["a"], "mixes"),
        ("SELECT COUNT(*) FROM patients WHERE name = ? AND sex = $1", ["a", "b"], "mixes"),
        ("SELECT COUNT(*) FROM patients WHERE name = $2", ["a", "b"], "number them $1..$2"),
        ("SELECT COUNT(*) FROM patients", [1], "no parameter placeholders"),
        ("SELECT COUNT(*) FROM patients", {"a": 1}, "no parameter placeholders"),
    ],
)
def test_mismatched_parameters_are_programming_errors(
    sql: str, params: object, fragment: str
) -> None:
    with pytest.raises(ProgrammingError) as caught:
        plan_query(sql, params, CONTRACT, VISIBLE)  # type: ignore[arg-type]
    assert type(caught.value) is ProgrammingError
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([1, 2], "unsupported type list"),
        ({"a": 1}, "unsupported type dict"),
        (decimal.Decimal("1.5"), "unsupported type Decimal"),
        (b"bytes", "unsupported type bytes"),
        (object(), "unsupported type object"),
        (1 + 2j, "unsupported type complex"),
        (dt.time(12, 0), "unsupported type time"),
        (math.nan, "non-finite"),
        (math.inf, "non-finite"),
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "timezone-aware"),
    ],
)
def test_unsupported_values_are_data_errors(value: object, fragment: str) -> None:
    with pytest.raises(DataError, match=fragment):
        plan_query(COUNT_BY_NAME, [value], CONTRACT, VISIBLE)


def test_empty_parameters_are_fine_without_placeholders() -> None:
    empties: list[Sequence[object] | Mapping[str, object] | None] = [None, [], (), {}]
    for params in empties:
        plan_query("SELECT COUNT(*) FROM patients", params, CONTRACT, VISIBLE)


INJECTIONS = [
    "'; DROP TABLE patients; --",
    "' OR '1'='1",
    "Ann' --",
    "x'); DELETE FROM patients; SELECT ('",
    "*/ DROP TABLE patients /*",
    "\\'; DROP TABLE patients; --",
    "$fedsql_salt",
    "?",
    "$$; DROP TABLE patients; $$",
    "a\nb; DROP TABLE patients",
    "O'Brien",
    "\x00",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_bound_string_is_always_one_literal(clinic: duckdb.DuckDBPyConnection, value: str) -> None:
    plan = plan_query(COUNT_BY_NAME, [value], CONTRACT, VISIBLE)
    assert value in _string_literals(plan.partial_sql)
    answer = federated_answer(clinic, plan)
    expected = clinic.execute(COUNT_BY_NAME, [value]).fetchall()
    assert [row[:-1] for row in answer.rows] == expected
    # the clinic's tables are all still there
    tables = clinic.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary")
    assert sorted(row[0] for row in tables.fetchall()) == ["labs", "patients", "visits"]


def test_string_parameter_matches_quoted_names(clinic: duckdb.DuckDBPyConnection) -> None:
    plan = plan_query(COUNT_BY_NAME, ["O'Brien"], CONTRACT, VISIBLE)
    _, rows = partial_rows(clinic, plan)
    expected = clinic.execute(COUNT_BY_NAME, ["O'Brien"]).fetchone()
    assert expected is not None and expected[0] > 0
    assert rows == [expected]


def test_a_parameter_never_becomes_sql(clinic: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(QueryRejected):
        plan_query("SELECT COUNT(*) FROM patients GROUP BY ?", [1], CONTRACT, VISIBLE)
    with pytest.raises(QueryRejected, match="LIMIT must be"):
        plan_query("SELECT COUNT(*) FROM patients LIMIT ?", ["2"], CONTRACT, VISIBLE)
    with pytest.raises(QueryRejected, match="LIMIT must be"):
        plan_query("SELECT COUNT(*) FROM patients LIMIT ?", [-1], CONTRACT, VISIBLE)
    plan = plan_query("SELECT COUNT(*) FROM patients LIMIT ?", [0], CONTRACT, VISIBLE)
    assert federated_answer(clinic, plan).rows == []


@pytest.mark.parametrize(
    ("value", "duckdb_type"),
    [
        (7, "INTEGER"),
        (-7, "INTEGER"),
        (2**40, "BIGINT"),
        (0.1, "DOUBLE"),
        (-2.5e-300, "DOUBLE"),
        (True, "BOOLEAN"),
        ("x", "VARCHAR"),
        (dt.date(2024, 2, 29), "DATE"),
        (dt.datetime(2024, 2, 29, 13, 45, 1, 250), "TIMESTAMP"),
        (None, '"NULL"'),
    ],
)
def test_literals_keep_type_and_value(value: object, duckdb_type: str) -> None:
    sql = to_literal(value).sql("duckdb")
    got, kind = _DUCK.execute(f"SELECT {sql} AS v, typeof({sql})").fetchone()  # type: ignore[misc]
    assert got == value
    assert kind == duckdb_type


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_any_text_round_trips_through_a_string_literal(value: str) -> None:
    sql = to_literal(value).sql("duckdb")
    assert _DUCK.execute(f"SELECT {sql}").fetchone() == (value,)
    assert _string_literals(f"SELECT {sql}") == [value]


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False))
)
def test_any_number_round_trips_exactly(value: float) -> None:
    sql = to_literal(value).sql("duckdb")
    got = _DUCK.execute(f"SELECT {sql}").fetchone()
    assert got is not None
    assert got[0] == value and type(got[0]) is type(value)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_planned_string_filter_finds_exactly_the_literal(value: str) -> None:
    plan = plan_query(COUNT_BY_NAME, [value], CONTRACT, VISIBLE)
    assert _string_literals(plan.partial_sql) == [value]
