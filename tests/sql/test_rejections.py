"""Rejections: every refused query fails at planning time, before any data is touched.

Each has the right error class and a message that names the construct and what to do instead.
"""

from __future__ import annotations

import pytest

from fedsql.errors import (
    Error,
    NotSupportedError,
    ProgrammingError,
    QueryRejected,
    SQLSyntaxError,
    UnknownObject,
)
from fedsql.sql import plan_query

from .testbed import CONTRACT, VISIBLE

S, N, Q, U = SQLSyntaxError, NotSupportedError, QueryRejected, UnknownObject

#: (query, error class, fragment of the message). The class must match exactly.
REJECTIONS: list[tuple[str, type[Error], str]] = [
    # not SQL
    ("SELECT COUNT(* FROM patients", S, "syntax error"),
    ("SELECT COUNT(*) FROM patients WHERE name = 'open", S, "could not be read"),
    ("SELEC COUNT(*) FROM patients", S, "does not begin a SQL statement"),
    ("", S, "empty"),
    ("  ; -- nothing\n", S, "empty"),
    # statements a read-only aggregate engine never runs
    ("CREATE TABLE x AS SELECT * FROM patients", N, "DDL statement CREATE"),
    ("DROP TABLE patients", N, "DDL statement DROP"),
    ("ALTER TABLE patients ADD COLUMN y INT", N, "DDL statement ALTER"),
    ("INSERT INTO patients VALUES (1)", N, "DML statement INSERT"),
    ("UPDATE patients SET age = 1", N, "DML statement UPDATE"),
    ("DELETE FROM patients", N, "DML statement DELETE"),
    ("MERGE INTO patients USING visits ON 1 = 1 WHEN MATCHED THEN DELETE", N, "MERGE"),
    ("PRAGMA database_list", N, "PRAGMA"),
    ("SET enable_external_access = true", N, "SET statement"),
    ("COPY patients TO 'out.csv'", N, "COPY"),
    ("ATTACH 'other.db' AS other", N, "ATTACH"),
    ("DETACH other", N, "DETACH"),
    ("INSTALL httpfs", N, "INSTALL"),
    ("LOAD httpfs", N, "LOAD"),
    ("USE other", N, "USE"),
    ("EXPORT DATABASE 'dump'", N, "EXPORT"),
    ("IMPORT DATABASE 'dump'", N, "IMPORT"),
    ("CALL pragma_version()", N, "CALL"),
    ("DESCRIBE patients", N, "DESCRIBE"),
    ("EXPLAIN SELECT COUNT(*) FROM patients", N, "EXPLAIN"),
    ("CHECKPOINT", N, "CHECKPOINT"),
    ("BEGIN TRANSACTION", N, "transaction"),
    # more than one statement
    ("SELECT COUNT(*) FROM patients; SELECT COUNT(*) FROM visits", Q, "2 statements"),
    ("SELECT COUNT(*) FROM patients; DROP TABLE patients", Q, "exactly one SELECT"),
    # row-level outputs
    ("SELECT * FROM patients", Q, "SELECT * is not supported"),
    ("SELECT p.* FROM patients p", Q, "t.* is not supported"),
    ("SELECT COUNT(*), * FROM patients", Q, "SELECT *"),
    ("FROM patients", Q, "FROM-first"),
    ("FROM patients SELECT COUNT(*)", Q, "FROM-first"),
    ("SELECT age FROM patients", Q, "neither a group key nor inside an aggregate"),
    ("SELECT age, COUNT(*) FROM patients GROUP BY sex", Q, "add it to GROUP BY"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY sex ORDER BY age", Q, "column age in ORDER BY"),
    ("SELECT sex FROM patients GROUP BY sex HAVING age > 3", Q, "column age in HAVING"),
    ("SELECT 1 FROM patients", Q, "computes no aggregate"),
    ("SELECT sex FROM patients GROUP BY sex", Q, "computes no aggregate"),
    ("SELECT COUNT(*)", Q, "no FROM clause"),
    # the privacy unit
    ("SELECT patient_id, COUNT(*) FROM patients GROUP BY patient_id", Q, "privacy unit"),
    ("SELECT patient_id FROM patients", Q, "privacy unit column of patients"),
    ("SELECT SUM(patient_id) FROM patients", Q, "privacy unit column"),
    ("SELECT AVG(patient_id) FROM visits", Q, "privacy unit column"),
    ("SELECT COUNT(patient_id) FROM patients", Q, "write COUNT(*)"),
    ("SELECT COUNT(DISTINCT sex) FROM patients", Q, "only COUNT(DISTINCT patient_id)"),
    # functions and table functions outside the allowlist
    ("SELECT getenv('HOME'), COUNT(*) FROM patients", Q, "function GETENV is not allowed"),
    ("SELECT COUNT(*) FROM patients WHERE md5(name) = 'x'", Q, "function MD5 is not allowed"),
    ("SELECT COUNT(*) FROM patients WHERE random() < 0.5", Q, "function RAND"),
    ("SELECT COUNT(*) FROM patients WHERE birth_date < current_date", Q, "CURRENT_DATE"),
    ("SELECT COUNT(*) FROM patients WHERE regexp_matches(name, 'a')", Q, "REGEXP"),
    ("SELECT COUNT(*) FROM patients WHERE read_text('x') IS NULL", Q, "READ_TEXT"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", Q, "table function read_csv"),
    ("SELECT COUNT(*) FROM read_parquet('x.parquet') AS p", Q, "table function read_parquet"),
    ("SELECT COUNT(*) FROM range(10)", Q, "table function"),
    ("SELECT COUNT(*) FROM glob('*')", Q, "table function glob"),
    # more than one table, or not a plain SELECT
    ("SELECT COUNT(*) FROM visits a JOIN visits b USING (cost)", Q, "on the privacy unit"),
    ("SELECT COUNT(*) FROM patients, visits", Q, "a join without ON"),
    ("SELECT COUNT(*) FROM (SELECT * FROM patients LIMIT 5)", Q, "LIMIT inside subquery"),
    ("SELECT COUNT(*) FROM patients WHERE age > (SELECT 1)", Q, "subqueries are not supported"),
    ("SELECT COUNT(*) FROM patients WHERE sex IN (SELECT 'F')", Q, "must test the privacy unit"),
    ("SELECT COUNT(*) FROM patients WHERE EXISTS (SELECT 1)", Q, "no FROM clause"),
    ("WITH t AS (SELECT 1) SELECT COUNT(*) FROM patients", Q, "no FROM clause"),
    ("SELECT COUNT(*) FROM patients UNION SELECT COUNT(*) FROM visits", Q, "UNION"),
    ("SELECT COUNT(*) FROM patients INTERSECT SELECT COUNT(*) FROM visits", Q, "INTERSECT"),
    ("SELECT COUNT(*) FROM patients EXCEPT SELECT COUNT(*) FROM visits", Q, "EXCEPT"),
    ("(SELECT COUNT(*) FROM patients)", Q, "parenthesized"),
    ("VALUES (1)", Q, "VALUES"),
    ("SELECT COUNT(*) OVER () FROM patients", Q, "window functions"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY sex QUALIFY COUNT(*) > 1", Q, "QUALIFY"),
    ("SELECT COUNT(*) FROM patients USING SAMPLE 10%", Q, "SAMPLE"),
    ("SELECT COUNT(*) FROM patients TABLESAMPLE 10%", Q, "SAMPLE"),
    ("SELECT DISTINCT sex FROM patients", Q, "SELECT DISTINCT"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY GROUPING SETS ((sex), ())", Q, "GROUPING SETS"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY ROLLUP (sex)", Q, "ROLLUP"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY CUBE (sex)", Q, "CUBE"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY ALL", Q, "GROUP BY ALL"),
    ("SELECT COUNT(*) FROM patients ORDER BY ALL", Q, "ORDER BY ALL"),
    ("SELECT COUNT(*) FROM patients AS p(a, b)", Q, "column aliases on the table"),
    ("SELECT COUNT(*) FROM patients AT (VERSION => 1)", Q, "table modifiers"),
    ("SELECT COUNT(*) INTO copy FROM patients", Q, "SELECT INTO"),
    # aggregates
    ("SELECT MIN(age) FROM patients", Q, "would release one patient's value"),
    ("SELECT sex, MAX(bmi) FROM patients GROUP BY sex", Q, "quantile"),
    ("SELECT MODE(age) FROM patients", Q, "aggregate MODE is not supported"),
    ("SELECT STDDEV(name) FROM patients", Q, "needs a numeric value"),
    ("SELECT COUNT(*) FROM patients WHERE COUNT(*) > 1", Q, "not allowed in WHERE"),
    ("SELECT COUNT(*) FROM patients GROUP BY COUNT(*)", Q, "not allowed in GROUP BY"),
    ("SELECT SUM(COUNT(*)) FROM patients", Q, "nested aggregates"),
    ("SELECT COUNT(*) FILTER (WHERE COUNT(*) > 3) FROM patients", Q, "inside FILTER"),
    ("SELECT COUNT(1) FROM patients", Q, "write COUNT(*)"),
    ("SELECT COUNT() FROM patients", Q, "write COUNT(*)"),
    ("SELECT SUM(income) FROM patients", Q, "add `bounds = [lo, hi]`"),
    ("SELECT AVG(name) FROM patients", Q, "needs a numeric value"),
    ("SELECT SUM(age * income) FROM patients", Q, "patients.income has no bounds"),
    ("SELECT AVG(age / bmi) FROM patients", Q, "divides by a row value"),
    # group keys
    ("SELECT name, COUNT(*) FROM patients GROUP BY name", Q, "add `domain` to column name"),
    ("SELECT COUNT(*) FROM patients GROUP BY bmi", Q, "has no domain in the contract"),
    ("SELECT COUNT(*) FROM patients GROUP BY bmi + 1", Q, "patients.bmi (read by bmi + 1)"),
    ("SELECT bmi // 10 AS band, COUNT(*) FROM patients GROUP BY band", Q, "has no domain"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY 3", Q, "out of range"),
    ("SELECT sex, COUNT(*) FROM patients GROUP BY 2", Q, "groups on an aggregate"),
    # clauses with non-literal or odd row counts
    ("SELECT COUNT(*) FROM patients LIMIT 1 + 1", Q, "non-negative integer literal"),
    ("SELECT COUNT(*) FROM patients LIMIT -1", Q, "non-negative integer literal"),
    ("SELECT COUNT(*) FROM patients LIMIT 10%", Q, "PERCENT"),
    ("SELECT COUNT(*) FROM patients OFFSET 1.5", Q, "non-negative integer literal"),
    ("SELECT COUNT(*) FROM patients FETCH FIRST 1 ROWS ONLY", Q, "FETCH"),
    # expressions
    ("SELECT COUNT(*) AS n FROM patients WHERE n > 1", Q, "output alias 'n'"),
    ("SELECT COUNT(*) FROM patients WHERE sex IN (name, 'x')", Q, "list of literals"),
    ("SELECT COUNT(*) FROM patients WHERE CAST(age AS BLOB) IS NULL", Q, "CAST to BLOB"),
    ("SELECT COUNT(*) FROM patients WHERE [1, 2] IS NULL", Q, "list literals"),
    ("SELECT COUNT(*) FROM patients WHERE name SIMILAR TO 'x'", Q, "SIMILAR TO"),
    ("SELECT COUNT(*) FROM patients WHERE name GLOB 'x*'", Q, "GLOB"),
    ("SELECT COUNT(*) FROM patients WHERE {'a': 1} IS NULL", Q, "struct literals"),
    ("SELECT COUNT(*) AS a, SUM(age) AS a FROM patients ORDER BY a", Q, "distinct aliases"),
    ("SELECT COUNT(*) FROM patients WHERE " + "(" * 200 + "age > 1" + ")" * 200, Q, "too deeply"),
    # implicit conversions of row values that can fail (and so reveal a row)
    ("SELECT COUNT(*) FROM patients WHERE name = 1", Q, "convert the text value name"),
    ("SELECT COUNT(*) FROM patients WHERE sex IN (1, 2)", Q, "IN would convert the text value"),
    ("SELECT COUNT(*) FROM patients WHERE nullif(name, 1) IS NULL", Q, "NULLIF would convert"),
    ("SELECT COUNT(*) FROM patients WHERE name", Q, "WHERE needs a true/false condition"),
    ("SELECT COUNT(*) FROM patients WHERE smoker OR name", Q, "AND / OR needs a true/false"),
    ("SELECT COUNT(*) FROM patients WHERE NOT lower(name)", Q, "NOT needs a true/false"),
    ("SELECT COUNT(*) FROM patients WHERE CASE WHEN name THEN true END", Q, "CASE WHEN needs"),
    (
        "SELECT COUNT(*) FROM patients WHERE birth_date = TIMESTAMP '2020-01-01 10:00:00'",
        Q,
        "mixes the DATE value birth_date with a TIMESTAMP",
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE coalesce(visit_date, visit_date + INTERVAL 1 DAY) "
        "IS NULL",
        Q,
        "COALESCE mixes the DATE value",
    ),
    ("SELECT COUNT(*) FROM patients WHERE date_part(name, birth_date) = 1", Q, "must be a literal"),
    # unknown or unshared objects
    ("SELECT COUNT(*) FROM nope", U, "unknown table 'nope'; tables you may query: labs"),
    ("SELECT COUNT(*) FROM genomes", U, "table genomes is not shared"),
    ('SELECT COUNT(*) FROM "Genomes"', U, "table genomes is not shared"),
    ("SELECT COUNT(*) FROM main.patients", U, "qualified table name"),
    ("SELECT COUNT(*) FROM other.db.patients", U, "qualified table name"),
    ('SELECT COUNT(*) FROM "main"."patients"', U, "qualified table name"),
    ("SELECT COUNT(*) FROM 'patients.csv'", U, "unknown table 'patients.csv'"),
    ("SELECT COUNT(zip) FROM patients", U, "column patients.zip is not shared"),
    ("SELECT COUNT(*) FROM patients WHERE zip = '12345'", U, "column patients.zip is not shared"),
    ("SELECT COUNT(*) FROM patients WHERE \"ZIP\" = '1'", U, "column patients.zip is not shared"),
    ("SELECT COUNT(*) FROM patients WHERE ZiP IS NULL", U, "patients.zip is not shared"),
    ("SELECT COUNT(*) FROM visits GROUP BY note", U, "visits.note is not shared"),
    ("SELECT COUNT(*) AS n FROM patients ORDER BY zip", U, "patients.zip is not shared"),
    ("SELECT COUNT(nope) FROM patients", U, "unknown column 'nope' in table patients"),
    ("SELECT COUNT(*) FROM patients p WHERE patients.age > 1", U, "unknown table reference"),
    ("SELECT COUNT(*) FROM patients WHERE v.age > 1", U, "the query reads patients"),
    ("SELECT COUNT(*) FROM patients WHERE main.patients.age > 1", U, "qualified column"),
    # the silo pseudo-column is only a grouping key
    ("SELECT COUNT(*) FROM patients WHERE silo = 'clinic-a'", Q, "cannot be used in WHERE"),
    ("SELECT COUNT(DISTINCT silo) FROM patients", Q, "only a grouping key"),
    ("SELECT SUM(CASE WHEN silo = 'clinic-a' THEN 1 END) FROM patients", Q, "aggregate's argument"),
    ("SELECT COUNT(*) FILTER (WHERE SILO = 'clinic-a') FROM patients", Q, "only a grouping key"),
    ("SELECT silo, COUNT(*) FROM patients", Q, "add GROUP BY silo"),
    ("SELECT COUNT(*) FROM patients ORDER BY silo", Q, "add GROUP BY silo"),
    (
        "SELECT silo, COUNT(*) FROM patients p JOIN visits v ON p.patient_id = v.patient_id "
        "AND silo = 'clinic-a' GROUP BY silo",
        Q,
        "privacy unit alone",
    ),
    (
        "SELECT silo, COUNT(*) FROM (SELECT patient_id FROM patients WHERE silo = 'clinic-a') "
        "GROUP BY silo",
        Q,
        "cannot be used in a join, CTE or subquery",
    ),
    ("SELECT p.silo, COUNT(*) FROM patients p GROUP BY p.silo", U, "unknown column 'silo'"),
    (
        "SELECT silo, LINEAR_REGRESSION(bmi, age) FROM patients GROUP BY silo",
        Q,
        "per-clinic models are not supported",
    ),
]


@pytest.mark.parametrize(
    ("sql", "error", "fragment"), REJECTIONS, ids=[f"r{i:03d}" for i in range(len(REJECTIONS))]
)
def test_query_is_rejected_with_class_and_advice(
    sql: str, error: type[Error], fragment: str
) -> None:
    with pytest.raises(Error) as caught:
        plan_query(sql, None, CONTRACT, VISIBLE)
    assert type(caught.value) is error, caught.value
    assert fragment in str(caught.value)


def test_rejection_table_covers_every_error_class() -> None:
    classes = {error for _, error, _ in REJECTIONS}
    assert classes == {SQLSyntaxError, NotSupportedError, QueryRejected, UnknownObject}
    assert len(REJECTIONS) >= 40


def test_errors_fit_the_dbapi_tree() -> None:
    assert issubclass(UnknownObject, QueryRejected)
    assert issubclass(QueryRejected, ProgrammingError)
    assert issubclass(SQLSyntaxError, ProgrammingError)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM patients WHERE zip = 'x'",
        "SELECT COUNT(*) FROM genomes",
    ],
)
def test_visibility_decides_acceptance(sql: str) -> None:
    everything = {t.name: t.column_names for t in CONTRACT.tables}
    plan_query(sql, None, CONTRACT, everything)
    with pytest.raises(UnknownObject):
        plan_query(sql, None, CONTRACT, VISIBLE)


def test_visible_names_compare_case_insensitively() -> None:
    shouting = {"PATIENTS": ("Patient_ID", "SEX")}
    plan = plan_query("SELECT sex, COUNT(*) FROM patients GROUP BY sex", None, CONTRACT, shouting)
    assert plan.columns == (("patients", "sex"),)
    with pytest.raises(UnknownObject, match="shared columns: patient_id, sex"):
        plan_query("SELECT COUNT(age) FROM patients", None, CONTRACT, shouting)
