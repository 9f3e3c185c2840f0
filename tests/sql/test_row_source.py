"""Joins on the privacy unit, semi-joins, CTEs and row-level subqueries: answers, caps, refusals.

Noise off, partial SQL at a clinic then finalize SQL over its partials equals DuckDB on the
analyst's SQL (the clinic's data is within every table's row cap, so the cap of the joined rows,
the product of the tables' caps, drops nothing). Every refusal happens at planning, before data.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from fedsql.catalog import Column, Contract, Table
from fedsql.errors import Error, QueryRejected, UnknownObject
from fedsql.sql import plan_query

from .test_oracle import _assert_rows
from .testbed import CONTRACT, LABS, PATIENTS, VISIBLE, VISITS, federated_answer

#: (query, parameters): joins, LEFT joins, IN / EXISTS semi-joins, CTEs, subqueries, DISTINCT.
QUERIES: list[tuple[str, list[Any] | None]] = [
    (
        "SELECT p.sex, AVG(l.delta), COUNT(*) FROM labs l JOIN patients p "
        "ON l.patient_id = p.patient_id WHERE l.test = 'ldl' GROUP BY p.sex",
        None,
    ),
    (
        "SELECT COUNT(*), SUM(cost) FROM visits v LEFT JOIN labs l "
        "ON l.patient_id = v.patient_id WHERE l.patient_id IS NULL",
        None,
    ),
    (
        "SELECT dept, COUNT(*) FROM visits WHERE patient_id IN "
        "(SELECT patient_id FROM labs WHERE test = 'hba1c' AND delta > 0) GROUP BY dept",
        None,
    ),
    (
        "SELECT dept, COUNT(*) FROM visits v WHERE NOT EXISTS "
        "(SELECT 1 FROM labs l WHERE l.patient_id = v.patient_id AND l.score > 3) GROUP BY dept",
        None,
    ),
    (
        "WITH cohort AS (SELECT patient_id FROM patients WHERE smoker) "
        "SELECT v.urgent, COUNT(*), AVG(v.minutes) FROM visits v "
        "JOIN cohort c ON v.patient_id = c.patient_id GROUP BY v.urgent",
        None,
    ),
    ("SELECT COUNT(*) FROM (SELECT * FROM patients WHERE age > 40) p", None),
    (
        "SELECT s.test, COUNT(*) FROM (SELECT DISTINCT patient_id, test FROM labs) s "
        "GROUP BY s.test",
        None,
    ),
    (
        "SELECT region, COUNT(*) FROM patients WHERE patient_id IN "
        "(SELECT DISTINCT patient_id FROM visits WHERE urgent) GROUP BY region",
        None,
    ),
    (
        "SELECT p.region, v.dept, SUM(v.cost) FROM patients p "
        "JOIN visits v ON p.patient_id = v.patient_id "
        "JOIN labs l ON l.patient_id = p.patient_id WHERE l.test = 'crp' GROUP BY p.region, v.dept",
        None,
    ),
    (
        "WITH ldl AS (SELECT patient_id, delta AS d FROM labs WHERE test = 'ldl'), "
        "old AS (SELECT patient_id, age FROM patients WHERE age >= 60) "
        "SELECT COUNT(*), AVG(ldl.d) FROM ldl JOIN old ON ldl.patient_id = old.patient_id",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients p WHERE EXISTS (SELECT 1 FROM visits v "
        "WHERE v.patient_id = p.patient_id AND v.dept = 'onco') "
        "AND p.patient_id NOT IN (SELECT patient_id FROM labs)",
        None,
    ),
    (
        "SELECT smoker, COUNT(*) FROM (SELECT patient_id, smoker, bmi FROM patients "
        "WHERE bmi IS NOT NULL) t WHERE bmi > 30 GROUP BY smoker",
        None,
    ),
    (
        "SELECT COUNT(*), SUM(v.minutes) FROM visits v JOIN visits w "
        "ON v.patient_id = w.patient_id WHERE v.visit_date < w.visit_date",
        None,
    ),
    (
        "SELECT p.sex, COUNT(*), COUNT(l.delta), AVG(l.score) FROM patients p "
        "LEFT JOIN labs l ON p.patient_id = l.patient_id GROUP BY p.sex",
        None,
    ),
    (
        "WITH f AS (SELECT * FROM patients WHERE sex = 'F'), "
        "fl AS (SELECT f.patient_id, l.test FROM f JOIN labs l ON l.patient_id = f.patient_id) "
        "SELECT test, COUNT(*) FROM fl GROUP BY test ORDER BY test",
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN (SELECT patient_id, age // 10 AS decade "
        "FROM patients) p ON p.patient_id = v.patient_id WHERE p.decade = 4",
        None,
    ),
    (
        "SELECT dept, COUNT(*) AS n FROM visits v JOIN patients p ON v.patient_id = p.patient_id "
        "WHERE p.age BETWEEN ? AND ? GROUP BY dept HAVING n > 5 ORDER BY n DESC, dept LIMIT 3",
        [20, 60],
    ),
    (
        "SELECT COUNT(*) FROM labs WHERE patient_id IN (SELECT p.patient_id FROM patients p "
        "JOIN visits v ON v.patient_id = p.patient_id WHERE v.urgent AND p.smoker)",
        None,
    ),
    (
        "SELECT sex, COUNT(*) FROM patients p WHERE EXISTS (SELECT * FROM labs l "
        "WHERE p.patient_id = l.patient_id AND EXISTS (SELECT 1 FROM visits v "
        "WHERE v.patient_id = l.patient_id AND v.dept = 'er')) GROUP BY sex",
        None,
    ),
    (
        "SELECT v.dept, COUNT(*) FROM visits AS v JOIN patients AS p "
        "ON v.patient_id = p.patient_id WHERE p.sex = 'M' AND v.cost > 100 GROUP BY 1 ORDER BY 1",
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits v LEFT JOIN (SELECT DISTINCT patient_id, test FROM labs "
        "WHERE test = 'ldl') l ON l.patient_id = v.patient_id WHERE l.test IS NULL OR v.urgent",
        None,
    ),
]


QUERIES += [
    # a CTE may shadow a table it reads
    (
        "WITH patients AS (SELECT patient_id, age FROM patients WHERE age > 50) "
        "SELECT COUNT(*), AVG(age) FROM patients",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients WHERE patient_id IN "
        "(SELECT patient_id FROM labs WHERE delta > ?) AND age < ?",
        [0, 70],
    ),
    (
        "SELECT a.dept, b.dept, COUNT(*) FROM visits a JOIN visits b "
        "ON a.patient_id = b.patient_id GROUP BY a.dept, b.dept ORDER BY a.dept, b.dept",
        None,
    ),
    (
        "SELECT p.sex, COUNT(*) AS n FROM patients p JOIN labs l ON p.patient_id = l.patient_id "
        "GROUP BY p.sex HAVING AVG(l.score) > -1 ORDER BY AVG(l.delta) DESC",
        None,
    ),
    (
        "SELECT COUNT(*) FROM (SELECT * FROM (SELECT patient_id, cost FROM visits "
        "WHERE cost > 100) a WHERE cost < 4000) b",
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN (SELECT l.* FROM labs l WHERE l.test = 'ldl') x "
        "ON x.patient_id = v.patient_id",
        None,
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE EXISTS (SELECT 1 FROM labs "
        "WHERE labs.patient_id = visits.patient_id)",
        None,
    ),
    (
        "SELECT s.a, COUNT(*) FROM (SELECT patient_id, age AS a FROM patients) s "
        "GROUP BY s.a ORDER BY 1",
        None,
    ),
    # USING joins on the unit, the unqualified unit being the merged column
    (
        "SELECT p.sex, COUNT(*), COUNT(DISTINCT patient_id) FROM patients p "
        "JOIN labs USING (patient_id) GROUP BY p.sex ORDER BY 1",
        None,
    ),
    (
        "SELECT COUNT(*), COUNT(DISTINCT patient_id), COUNT(l.test) FROM visits "
        "LEFT JOIN (SELECT DISTINCT patient_id, test FROM labs WHERE test = 'ldl') l "
        "USING (patient_id) WHERE patient_id > 3",
        None,
    ),
    (
        "SELECT COUNT(*) FROM patients JOIN visits USING (patient_id) "
        "JOIN labs USING (patient_id) WHERE EXISTS (SELECT 1 FROM labs x "
        "WHERE x.patient_id = patients.patient_id AND x.test = 'ldl')",
        None,
    ),
]


@pytest.mark.parametrize(("sql", "params"), QUERIES, ids=[f"j{i:02d}" for i in range(len(QUERIES))])
def test_joined_answer_equals_duckdb_on_the_original_sql(
    clinic: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None
) -> None:
    plan = plan_query(sql, params, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    direct = clinic.execute(sql, params).fetchall()
    ours = answer.rows
    if plan.keys:
        ours = [row for row in ours if answer.cell_counts[row[-1]] != 0]
    _assert_rows([row[:-1] for row in ours], direct, ordered="ORDER BY" in sql)
    assert answer.names[:-1] == [o.name for o in plan.outputs]


@pytest.mark.parametrize(
    ("sql", "cap", "tables"),
    [
        # joins multiply the caps: patients 2, visits 4, labs 6
        (
            "SELECT COUNT(*) FROM labs l JOIN patients p ON l.patient_id = p.patient_id",
            12,
            ("labs", "patients"),
        ),
        (
            "SELECT COUNT(*) FROM visits v LEFT JOIN labs l ON l.patient_id = v.patient_id",
            24,
            ("labs", "visits"),
        ),
        (
            "SELECT COUNT(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id",
            16,
            ("visits",),
        ),
        (
            "SELECT COUNT(*) FROM patients p JOIN visits v ON p.patient_id = v.patient_id "
            "JOIN labs l ON l.patient_id = v.patient_id",
            48,
            ("labs", "patients", "visits"),
        ),
        # semi-joins and row-level subqueries do not
        (
            "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT patient_id FROM labs)",
            4,
            ("labs", "visits"),
        ),
        (
            "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM labs l JOIN patients p "
            "ON l.patient_id = p.patient_id WHERE l.patient_id = v.patient_id)",
            4,
            ("labs", "patients", "visits"),
        ),
        (
            "WITH c AS (SELECT DISTINCT patient_id, test FROM labs) SELECT COUNT(*) FROM c",
            6,
            ("labs",),
        ),
    ],
)
def test_the_row_cap_is_the_product_of_the_joined_caps(
    sql: str, cap: int, tables: tuple[str, ...]
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    assert plan.row_cap == cap
    assert plan.tables == tables
    assert plan.measure("m0").sensitivity == cap
    assert f"<= {cap}\n)" in plan.partial_sql


def test_the_plan_lists_every_column_read_through_ctes_and_subqueries() -> None:
    sql = (
        "WITH c AS (SELECT patient_id, age FROM patients WHERE smoker) "
        "SELECT v.dept, SUM(v.cost) FROM visits v JOIN c ON c.patient_id = v.patient_id "
        "WHERE EXISTS (SELECT 1 FROM labs l WHERE l.patient_id = v.patient_id "
        "AND l.delta > 0) GROUP BY v.dept"
    )
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    assert plan.tables == ("labs", "patients", "visits")
    # unit columns used only as join keys are joins, not column reads
    assert plan.columns == (
        ("labs", "delta"),
        ("patients", "age"),
        ("patients", "smoker"),
        ("visits", "cost"),
        ("visits", "dept"),
    )
    assert len(plan.joins) == 2
    assert any(
        "product of the joined tables' max_rows_per_unit" in line for line in plan.explanation
    )


def test_the_row_id_stays_unique_after_the_join(clinic: duckdb.DuckDBPyConnection) -> None:
    plan = plan_query(
        "SELECT COUNT(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id",
        None,
        CONTRACT,
        VISIBLE,
    )
    rows_sql = plan.partial_sql.split("), __capped AS")[0].removeprefix("WITH __rows AS (")
    total, distinct = clinic.execute(
        f"SELECT COUNT(*), COUNT(DISTINCT (__rid0, __rid1)) FROM ({rows_sql})"
    ).fetchone()  # type: ignore[misc]
    assert total == distinct > 0


def test_the_plan_does_not_depend_on_the_analysts_aliases() -> None:
    a = plan_query(
        "SELECT COUNT(*) FROM labs x JOIN patients y ON x.patient_id = y.patient_id",
        None,
        CONTRACT,
        VISIBLE,
    )
    b = plan_query(
        "SELECT COUNT(*) FROM labs AS l JOIN patients AS p ON p.patient_id = l.patient_id",
        None,
        CONTRACT,
        VISIBLE,
    )
    assert a.partial_sql == b.partial_sql


def test_failing_operations_in_subquery_columns_give_null(
    clinic: duckdb.DuckDBPyConnection,
) -> None:
    """Whether a query fails must not depend on single rows, inside subqueries too."""
    sql = (
        "SELECT COUNT(*) FROM (SELECT patient_id, 100 // (age - 40) AS x, "
        "CAST(name AS INTEGER) AS n FROM patients) s WHERE s.x IS NULL OR s.n > 0"
    )
    with pytest.raises(duckdb.Error):
        clinic.execute(sql).fetchall()
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    guarded = sql.replace("100 // (age - 40)", "TRY(100 // (age - 40))")
    guarded = guarded.replace("CAST(name", "TRY_CAST(name")
    expected = clinic.execute(guarded).fetchall()
    assert federated_answer(clinic, plan).rows[0][:1] == expected[0]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM visits v JOIN notes n ON n.patient_id = v.patient_id",
        "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT patient_id FROM notes)",
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM notes n "
        "WHERE n.patient_id = v.patient_id)",
    ],
)
def test_unit_columns_of_different_types_are_not_compared(sql: str) -> None:
    """DuckDB would cast one side row by row, and fail or not depending on single values."""
    notes = Table(
        "notes", "patient_id", 3, (Column("patient_id", "VARCHAR"), Column("kind", "VARCHAR"))
    )
    contract = Contract("test", (*CONTRACT.tables, notes))
    visible = {**VISIBLE, "notes": ("patient_id", "kind")}
    with pytest.raises(
        QueryRejected,
        match=r"compares unit columns of types (BIGINT and VARCHAR|VARCHAR and BIGINT)",
    ):
        plan_query(sql, None, contract, visible)


Q, U = QueryRejected, UnknownObject

REJECTIONS: list[tuple[str, type[Error], str]] = [
    # joins that are not on the privacy unit
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.visit_date = l.year",
        Q,
        "joins must be on the privacy unit alone",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.patient_id < l.patient_id",
        Q,
        "could pair one patient's rows with another patient's",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l "
        "ON v.patient_id = l.patient_id AND l.test = 'ldl'",
        Q,
        "Filter on other columns in WHERE",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN (SELECT cost FROM visits) s ON s.cost = v.cost",
        Q,
        "joins must be on the privacy unit alone",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.patient_id = l.patient_id "
        "JOIN patients p ON v.patient_id = l.patient_id",
        Q,
        "must compare the unit of patients AS p with the unit of a table joined before it",
    ),
    ("SELECT COUNT(*) FROM visits CROSS JOIN labs", Q, "CROSS JOIN is not supported"),
    (
        "SELECT COUNT(*) FROM visits, labs WHERE visits.patient_id = labs.patient_id",
        Q,
        "a join without ON",
    ),
    (
        "SELECT COUNT(*) FROM visits v RIGHT JOIN labs l ON v.patient_id = l.patient_id",
        Q,
        "RIGHT JOIN is not supported; write LEFT JOIN with the tables swapped",
    ),
    (
        "SELECT COUNT(*) FROM visits v FULL JOIN labs l ON v.patient_id = l.patient_id",
        Q,
        "FULL JOIN is not supported",
    ),
    ("SELECT COUNT(*) FROM visits NATURAL JOIN labs", Q, "NATURAL JOIN is not supported"),
    (
        "SELECT COUNT(*) FROM visits v SEMI JOIN labs l ON v.patient_id = l.patient_id",
        Q,
        "write WHERE [NOT] EXISTS",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN visits w USING (dept)",
        Q,
        "",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id FROM labs) JOIN visits USING (patient_id)",
        Q,
        "needs a name for the first table",
    ),
    (
        "SELECT COUNT(*) FROM visits LEFT JOIN LATERAL (SELECT * FROM labs) l ON true",
        Q,
        "LATERAL is not supported",
    ),
    # subqueries that are not row-level
    (
        "SELECT COUNT(*) FROM (SELECT patient_id, COUNT(*) AS n FROM visits GROUP BY patient_id) s",
        Q,
        "aggregation (GROUP BY) inside subquery s is not supported",
    ),
    (
        "WITH c AS (SELECT patient_id, SUM(cost) AS total FROM visits GROUP BY patient_id) "
        "SELECT COUNT(*) FROM c",
        Q,
        "aggregation (GROUP BY) inside CTE c",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id, cost FROM visits "
        "WHERE cost > 1 HAVING cost > 2) s",
        Q,
        "inside subquery s is not supported",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id, ROW_NUMBER() OVER (PARTITION BY patient_id) AS r "
        "FROM visits) s",
        Q,
        "window functions (OVER ...) inside subquery s",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT * FROM visits ORDER BY cost LIMIT 10) s",
        Q,
        "LIMIT inside subquery s",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT DISTINCT test FROM labs) s",
        Q,
        "SELECT DISTINCT in subquery s must keep the privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT DISTINCT ON (patient_id) patient_id, cost FROM visits) s",
        Q,
        "DISTINCT ON inside subquery s",
    ),
    (
        "WITH RECURSIVE r AS (SELECT patient_id FROM visits) SELECT COUNT(*) FROM r",
        Q,
        "WITH RECURSIVE is not supported",
    ),
    (
        "WITH a AS (SELECT patient_id FROM visits) SELECT COUNT(*) FROM visits",
        Q,
        "CTE a is defined but never used",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id FROM labs "
        "UNION ALL SELECT patient_id FROM visits) s",
        Q,
        "UNION and other set operations are not supported",
    ),
    # correlated and scalar subqueries that are not semi-joins on the unit
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM labs l WHERE l.score > v.cost)",
        Q,
        "may refer to it only once, as a semi-join on the privacy unit",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM labs l WHERE l.test = 'ldl')",
        Q,
        "an uncorrelated EXISTS would test other patients' rows",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM labs l "
        "WHERE l.patient_id = v.patient_id AND l.score = v.cost)",
        Q,
        "refers to the enclosing query",
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE cost IN (SELECT score FROM labs)",
        Q,
        "IN (subquery) must test the privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT score FROM labs)",
        Q,
        "must select its privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE patient_id IN "
        "(SELECT patient_id FROM labs l WHERE l.score = v.cost)",
        Q,
        "the subquery refers to v.cost of the enclosing query",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE (SELECT COUNT(*) FROM labs l "
        "WHERE l.patient_id = v.patient_id) > 2",
        Q,
        "subqueries are not supported in WHERE",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT COUNT(*) FROM labs l "
        "WHERE l.patient_id = v.patient_id)",
        Q,
        "inside the subquery of EXISTS",
    ),
    ("SELECT COUNT(*), (SELECT 1 FROM labs) FROM visits", Q, "subqueries are not supported"),
    # what nobody shares, through any subquery
    (
        "SELECT COUNT(*) FROM visits v JOIN genomes g ON g.patient_id = v.patient_id",
        U,
        "table genomes is not shared",
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT patient_id FROM genomes)",
        U,
        "table genomes is not shared",
    ),
    (
        "WITH c AS (SELECT patient_id, zip FROM patients) SELECT COUNT(*) FROM c",
        U,
        "column patients.zip is not shared",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM visits w "
        "WHERE w.patient_id = v.patient_id AND w.note = 'x')",
        U,
        "column visits.note is not shared",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN nowhere n ON n.patient_id = v.patient_id",
        U,
        "unknown table 'nowhere'",
    ),
    # the unit, names
    (
        "SELECT v.patient_id, COUNT(*) FROM visits v JOIN labs l ON v.patient_id = l.patient_id "
        "GROUP BY v.patient_id",
        Q,
        "cannot be grouped on",
    ),
    (
        "SELECT COUNT(*), SUM(l.patient_id) FROM visits v LEFT JOIN labs l "
        "ON v.patient_id = l.patient_id",
        Q,
        "l.patient_id is a privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.patient_id = l.patient_id "
        "WHERE patient_id > 3",
        Q,
        "'patient_id' is ambiguous",
    ),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs v ON v.patient_id = v.patient_id",
        Q,
        "the name v is used for two tables",
    ),
    ("SELECT COUNT(*) FROM (SELECT patient_id, cost * 2 FROM visits) s", Q, "needs an alias"),
    ("SELECT COUNT(*) FROM (SELECT patient_id AS __unit FROM visits) s", Q, "is reserved"),
    (
        "SELECT SUM(s.c2) FROM (SELECT patient_id, cost * 2 AS c2 FROM visits) s",
        Q,
        "SUM(c2) is not supported: a subquery computes c2, so it has no contract bounds",
    ),
    (
        "SELECT AVG(p.income) FROM patients p JOIN visits v ON v.patient_id = p.patient_id",
        Q,
        "column patients.income has no bounds in the contract, so AVG over it",
    ),
    (
        "SELECT s.c, COUNT(*) FROM (SELECT patient_id, cost AS c FROM visits) s GROUP BY s.c",
        Q,
        "cannot GROUP BY c (visits.cost): it has no domain in the contract",
    ),
    (
        "SELECT s.d, COUNT(*) FROM (SELECT patient_id, age // 10 AS d FROM patients) s "
        "GROUP BY s.d",
        Q,
        "cannot GROUP BY d: a subquery computes it, so it has no public domain",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id, name = 1 AS b FROM patients) s",
        Q,
        "fails on some values",
    ),
]


@pytest.mark.parametrize(
    ("sql", "error", "fragment"), REJECTIONS, ids=[f"jr{i:02d}" for i in range(len(REJECTIONS))]
)
def test_unsafe_joins_and_subqueries_are_refused_with_advice(
    sql: str, error: type[Error], fragment: str
) -> None:
    with pytest.raises(Error) as caught:
        plan_query(sql, None, CONTRACT, VISIBLE)
    assert type(caught.value) is error, caught.value
    assert fragment in str(caught.value)


#: What a clinic that shares more may see: the same tables, plus patients.zip and visits.note.
WIDER: dict[str, tuple[str, ...]] = {
    "patients": PATIENTS.column_names,
    "visits": VISITS.column_names,
    "labs": LABS.column_names,
}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*), AVG(age) FROM (SELECT * FROM patients WHERE age > 40) p",
        "SELECT p.sex, COUNT(*) FROM (SELECT * FROM patients) p "
        "JOIN (SELECT v.* FROM visits v WHERE v.urgent) v ON v.patient_id = p.patient_id "
        "GROUP BY p.sex",
        "SELECT COUNT(n.note), COUNT(v.minutes) FROM visits v JOIN notes n "
        "ON n.patient_id = v.patient_id "
        "WHERE n.kind = 'x'",
    ],
)
def test_the_plan_does_not_depend_on_what_the_caller_may_see(sql: str) -> None:
    """Hub and clinics see different columns; they must still derive the same plan."""
    notes = Table(
        "notes",
        "patient_id",
        3,
        (Column("patient_id", "BIGINT"), Column("note", "VARCHAR"), Column("kind", "VARCHAR")),
    )
    contract = Contract("test", (*CONTRACT.tables, notes))
    narrow = {**VISIBLE, "notes": ("patient_id", "kind", "note")}
    wide = {**WIDER, "notes": ("patient_id", "kind", "note")}
    assert plan_query(sql, None, contract, narrow).plan_hash == (
        plan_query(sql, None, contract, wide).plan_hash
    )


def test_select_star_projects_only_what_the_query_reads() -> None:
    plan = plan_query(
        "SELECT COUNT(*), AVG(age) FROM (SELECT * FROM patients WHERE smoker) p",
        None,
        CONTRACT,
        VISIBLE,
    )
    assert '"age" AS "age"' in plan.partial_sql
    for unread in ('AS "sex"', 'AS "zip"', 'AS "name"'):
        assert unread not in plan.partial_sql
    with pytest.raises(UnknownObject, match=r"column patients\.zip is not shared"):
        plan_query("SELECT COUNT(p.zip) FROM (SELECT * FROM patients) p", None, CONTRACT, VISIBLE)
    with pytest.raises(QueryRejected, match=r"SELECT DISTINCT \* in subquery p reads every"):
        plan_query(
            "SELECT COUNT(*) FROM (SELECT DISTINCT * FROM patients) p", None, CONTRACT, VISIBLE
        )
