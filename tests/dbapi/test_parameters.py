"""Parameters are bound in the syntax tree: quotes, comments and stacked statements stay values.

Each hostile value is bound to ``sex = ?``. Were it spliced into the SQL text, the quote would
end the string and the rest would run as SQL (``' OR '1'='1`` would count every patient). Bound
as a literal, it is one string no patient's ``sex`` equals, so the count is the one DuckDB gives
for the same parameter over the pooled data: zero, which the federation releases as a suppressed
(None) cell because it is under the minimum group size.
"""

from __future__ import annotations

import duckdb
import pytest

import fedsql

HOSTILE = [
    "F' OR '1'='1",
    "F' OR 1=1 --",
    "F'--",
    "F' /*",
    "*/ OR 1=1 /*",
    "F'; DROP TABLE patients; --",
    "F'; SELECT COUNT(*) FROM patients WHERE sex <> 'x",
    "F\\' OR 1=1 --",
    'F" OR "1"="1',
    "F' UNION ALL SELECT COUNT(*) FROM visits --",
    "F'\nOR sex = 'M",
    "$1",
    "?",
    ":s",
    "' || (SELECT name FROM patients LIMIT 1) || '",
    "F\x00' OR 1=1",
]

COUNT_BY_SEX = "SELECT COUNT(*) AS n FROM patients WHERE sex = ?"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_is_one_string_literal(
    conn: fedsql.Connection, pooled: duckdb.DuckDBPyConnection, value: str
) -> None:
    cur = conn.cursor()
    cur.execute(COUNT_BY_SEX, [value])
    row = pooled.execute(COUNT_BY_SEX, [value]).fetchone()
    assert row is not None and row[0] == 0
    assert cur.fetchall() == [(None,)]
    assert cur.privacy is not None and cur.privacy.suppressed() == [True]


@pytest.mark.parametrize("value", HOSTILE[:6])
def test_hostile_named_value_is_one_string_literal(conn: fedsql.Connection, value: str) -> None:
    cur = conn.cursor()
    sql = "SELECT COUNT(*) AS n FROM patients WHERE sex = $s OR sex = $t"
    cur.execute(sql, {"s": value, "t": value})
    assert cur.fetchall() == [(None,)]


def test_a_plain_value_still_matches(
    conn: fedsql.Connection, pooled: duckdb.DuckDBPyConnection
) -> None:
    cur = conn.cursor()
    cur.execute(COUNT_BY_SEX, ["F"])
    row = pooled.execute(COUNT_BY_SEX, ["F"]).fetchone()
    assert row is not None and row[0] > 100_000
    assert cur.fetchall() == [(row[0],)]


@pytest.mark.parametrize("value", ["F' OR '1'='1", "F'; DROP TABLE patients; --", "F' /* x */"])
def test_the_plan_shows_the_value_as_an_escaped_literal(
    conn: fedsql.Connection, value: str
) -> None:
    plan = "\n".join(conn.cursor().explain(COUNT_BY_SEX, [value]))
    assert _sql_literal(value) in plan
    assert "DROP" not in plan.replace(_sql_literal(value), "")


def test_the_table_survives_a_stacked_drop(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(COUNT_BY_SEX, ["x'; DROP TABLE patients; --"])
    cur.execute("SELECT COUNT(*) AS n FROM patients")
    (total,) = cur.fetchone() or (0,)
    assert total == 250_000


@pytest.mark.parametrize("value", ["40 OR 1=1", "40; DROP TABLE patients", "0) OR (1=1"])
def test_a_string_compared_with_a_number_stays_a_string(
    conn: fedsql.Connection, value: str
) -> None:
    cur = conn.cursor()
    sql = "SELECT COUNT(*) AS n FROM patients WHERE age >= ?"
    plan = "\n".join(cur.explain(sql, [value]))
    assert f'"age" >= {_sql_literal(value)}' in plan
    # The clinics' DuckDB cannot read the text as a number, so nothing is released.
    with pytest.raises(fedsql.DatabaseError):
        cur.execute(sql, [value])
    assert cur.description is None


def test_placeholders_inside_string_literals_are_not_parameters(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) AS n FROM patients WHERE sex = '?' OR sex = ?", ["F"])
    with_literal = cur.fetchall()
    cur.execute(COUNT_BY_SEX, ["F"])
    assert with_literal == cur.fetchall()
    with pytest.raises(fedsql.ProgrammingError):
        cur.execute("SELECT COUNT(*) AS n FROM patients WHERE sex = '?'", ["F"])
