"""Contribution bounding: one unit moves no measure by more than its declared sensitivity.

A unit with thousands of rows and extreme values changes no measure's cell vector by more than
the measure's sensitivity (before noise), and the check notices when the row cap or the clamping
is taken away.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsql.catalog import Table
from fedsql.sql import SALT_PARAM, FederatedPlan, plan_query

from .testbed import CONTRACT, LABS, PATIENTS, VISIBLE, VISITS, clinic_database, load_table

ADVERSARY = 10**6
ROWS = 3000

QUERIES = [
    "SELECT COUNT(*) FROM patients",
    "SELECT sex, COUNT(*), AVG(bmi) FROM patients GROUP BY sex",
    "SELECT region, SUM(bmi), COUNT(bmi) FROM patients WHERE age > 10 GROUP BY region",
    "SELECT smoker, SUM(age), AVG(age) FROM patients GROUP BY smoker",
    "SELECT dept, visit_date, SUM(cost), SUM(minutes) FROM visits GROUP BY dept, visit_date",
    "SELECT urgent, AVG(cost), COUNT(minutes) FROM visits WHERE cost > 100 GROUP BY urgent",
    "SELECT test, SUM(delta), AVG(score) FROM labs GROUP BY test",
    "SELECT year, COUNT(*), SUM(score) FROM labs GROUP BY year",
    # a failing operation in one unit's row must not change whether other rows count
    "SELECT COUNT(*) FROM patients WHERE coalesce(bmi, 0) <= 70 OR 1 // (age - age) > 0",
    "SELECT sex, SUM(age) FROM patients WHERE coalesce(bmi, 0) <= 70 OR CAST(name AS INT) > 0 "
    "GROUP BY sex",
    "SELECT dept, COUNT(*) FROM visits WHERE minutes <= 240 OR cost * 2147483647 * 4 > 0 "
    "GROUP BY dept",
    # derived keys, distinct patients, sums of squares, FILTER and bounded expressions
    "SELECT age // 10, COUNT(DISTINCT patient_id), VAR_SAMP(bmi), STDDEV_POP(age) FROM patients "
    "GROUP BY age // 10",
    "SELECT dept, COUNT(DISTINCT patient_id), SUM(CASE WHEN urgent THEN cost ELSE 0 END), "
    "SUM(cost) FILTER (WHERE minutes > 10) FROM visits GROUP BY dept",
    "SELECT year(visit_date), VAR_POP(minutes), SUM(cost / 100), AVG(minutes * 2 - 1) "
    "FROM visits GROUP BY 1",
    "SELECT CASE WHEN test = 'ldl' THEN 'lipid' ELSE 'other' END, STDDEV(delta), "
    "SUM(score * delta) FROM labs GROUP BY 1",
]


def _adversary_rows(table: Table, count: int = ROWS) -> dict[str, list[Any]]:
    """``count`` rows of one unit, spread over every key, with values far outside the bounds."""
    huge = [1e12, -1e12, float("nan"), float("inf"), -float("inf")]
    rows: dict[str, list[Any]] = {c.name: [] for c in table.columns}
    for i in range(count):
        for column in table.columns:
            if column.name == table.unit:
                value: Any = ADVERSARY
            elif column.domain is not None:
                keys = column.domain.keys()
                value = keys[i % len(keys)]
            elif column.type == "DOUBLE":
                value = huge[i % len(huge)]
            elif column.type in ("INTEGER", "BIGINT"):
                value = (2**31 - 1) if i % 2 else -(2**31)
            elif column.type == "DATE":
                value = dt.date(2000, 1, 1)
            else:
                value = "x" * (i % 7)
            rows[column.name].append(value)
    return rows


@pytest.fixture(scope="module")
def neighbours() -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    """The same clinic without and with the adversarial unit (appended rows)."""
    without, with_unit = clinic_database(seed=11), clinic_database(seed=11)
    for table in (PATIENTS, VISITS, LABS):
        load_table(with_unit, table, _adversary_rows(table), append=True)
    return without, with_unit


def _vectors(
    con: duckdb.DuckDBPyConnection, sql: str, plan: FederatedPlan, salt: int
) -> np.ndarray:
    """The dense (cells x measures) partial matrix, NULL as 0, out-of-domain groups dropped."""
    rows = con.execute(sql, plan.run_params(sql, salt)).fetchall()
    index = plan.key_index()
    n_keys = len(plan.keys)
    out = np.zeros((plan.cells, len(plan.measures)))
    for row in rows:
        cell = index.get(tuple(row[:n_keys]))
        if cell is not None:
            out[cell] = [0.0 if v is None else float(v) for v in row[n_keys:]]
    return out


def _worst_ratio(
    pair: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
    plan: FederatedPlan,
    mutate: Callable[[str], str] = lambda sql: sql,
) -> float:
    """Largest (L2 change of a measure's cell vector) / (its sensitivity) over a few salts."""
    sql = mutate(plan.partial_sql)
    worst = 0.0
    for salt in (1, -77, 2**40):
        before, after = (_vectors(con, sql, plan, salt) for con in pair)
        change = np.linalg.norm(after - before, axis=0)
        sensitivity = np.array([m.sensitivity for m in plan.measures])
        worst = max(worst, float(np.max(change / sensitivity)))
    return worst


@pytest.mark.parametrize("sql", QUERIES)
def test_one_unit_moves_each_measure_by_at_most_its_sensitivity(
    neighbours: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    ratio = _worst_ratio(neighbours, plan)
    assert ratio <= 1 + 1e-9
    # the adversary does reach the bound on some measure (the test is not vacuous)
    assert ratio > 0.25


def _without_row_cap(sql: str) -> str:
    return re.sub(r"<= \d+\n\)", "<= 1000000000\n)", sql)


def _without_clamping(sql: str) -> str:
    pattern = (
        r'CASE\s+WHEN "(\w+)" IS NULL\s+THEN NULL\s+'
        r'ELSE LEAST\(GREATEST\(CAST\("\w+" AS (\w+)\), [^)]*\), [^)]*\)\s+END'
    )
    mutated = re.sub(pattern, r'CAST("\1" AS \2)', sql)
    assert mutated != sql
    return mutated


@pytest.mark.parametrize("mutate", [_without_row_cap, _without_clamping])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT dept, SUM(cost) FROM visits GROUP BY dept",
        "SELECT test, SUM(delta), AVG(score) FROM labs GROUP BY test",
        "SELECT test, VAR_SAMP(delta) FROM labs GROUP BY test",
    ],
)
def test_removing_a_bound_breaks_the_sensitivity(
    neighbours: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
    sql: str,
    mutate: Callable[[str], str],
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    assert mutate(plan.partial_sql) != plan.partial_sql
    assert _worst_ratio(neighbours, plan, mutate) > 2


def test_the_row_cap_picks_rows_by_keyed_random_order() -> None:
    con = duckdb.connect()
    rows: dict[str, list[Any]] = {c.name: [None] * 50 for c in VISITS.columns}
    rows["patient_id"] = [1] * 50
    rows["cost"] = list(range(50))
    rows["dept"] = ["er"] * 50
    load_table(con, VISITS, rows)
    plan = plan_query("SELECT COUNT(*), SUM(cost) FROM visits", None, CONTRACT, VISIBLE)
    chosen = set()
    for salt in range(40):
        count, total = con.execute(plan.partial_sql, {SALT_PARAM: salt}).fetchone()  # type: ignore[misc]
        assert count == VISITS.max_rows_per_unit
        chosen.add(total)
    # neither the first k rows nor the smallest/largest values every time
    assert len(chosen) >= 20


#: Joins multiply a patient's rows; semi-joins, CTEs and DISTINCT subqueries do not.
JOIN_QUERIES = [
    "SELECT p.sex, COUNT(*), AVG(l.delta) FROM labs l JOIN patients p "
    "ON l.patient_id = p.patient_id GROUP BY p.sex",
    "SELECT v.dept, l.test, SUM(v.cost), SUM(l.score) FROM visits v JOIN labs l "
    "ON v.patient_id = l.patient_id GROUP BY v.dept, l.test",
    "SELECT p.region, COUNT(*), SUM(v.minutes) FROM patients p JOIN visits v "
    "ON p.patient_id = v.patient_id JOIN labs l ON l.patient_id = v.patient_id "
    "GROUP BY p.region",
    "SELECT COUNT(*), SUM(v.cost) FROM visits v LEFT JOIN labs l ON l.patient_id = v.patient_id",
    "SELECT COUNT(*), SUM(a.minutes) FROM visits a JOIN visits b ON a.patient_id = b.patient_id",
    "SELECT dept, COUNT(*), AVG(cost) FROM visits WHERE patient_id IN "
    "(SELECT patient_id FROM labs WHERE delta > 0) GROUP BY dept",
    "SELECT test, SUM(score) FROM labs l WHERE EXISTS (SELECT 1 FROM visits v "
    "WHERE v.patient_id = l.patient_id AND v.urgent) GROUP BY test",
    "WITH c AS (SELECT DISTINCT patient_id, test FROM labs) "
    "SELECT c.test, COUNT(*), SUM(p.age) FROM c JOIN patients p "
    "ON p.patient_id = c.patient_id GROUP BY c.test",
]

#: Hypothesis examples of the fan-out property (``FEDSQL_SLOW=1`` runs many more).
FAN_OUT_EXAMPLES = 200 if os.environ.get("FEDSQL_SLOW") == "1" else 8


@pytest.fixture(scope="module")
def join_clinic() -> tuple[duckdb.DuckDBPyConnection, dict[str, np.ndarray]]:
    """A clinic within every cap, and each join query's partial matrix on it (salt-free: the
    cap of the joined rows drops none of its rows)."""
    con = clinic_database(seed=5)
    plans = {sql: plan_query(sql, None, CONTRACT, VISIBLE) for sql in JOIN_QUERIES}
    before = {sql: _vectors(con, plan.partial_sql, plan, 1) for sql, plan in plans.items()}
    for sql, plan in plans.items():
        assert np.allclose(before[sql], _vectors(con, plan.partial_sql, plan, 99), rtol=1e-12)
    return con, before


@pytest.mark.slow
@settings(
    max_examples=FAN_OUT_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    fan_out=st.tuples(st.integers(1, 30), st.integers(0, 60), st.integers(0, 60)),
    salt=st.integers(-(2**62), 2**62),
)
def test_one_patient_moves_each_joined_measure_by_at_most_its_sensitivity(
    join_clinic: tuple[duckdb.DuckDBPyConnection, dict[str, np.ndarray]],
    fan_out: tuple[int, int, int],
    salt: int,
) -> None:
    """Whatever the patient's fan-out in each table, the L2 change of every measure's cell
    vector stays within the declared sensitivity (the product of the joined caps)."""
    con, before = join_clinic
    for table, count in zip((PATIENTS, VISITS, LABS), fan_out, strict=True):
        if count:
            load_table(con, table, _adversary_rows(table, count), append=True)
    try:
        for sql in JOIN_QUERIES:
            plan = plan_query(sql, None, CONTRACT, VISIBLE)
            after = _vectors(con, plan.partial_sql, plan, salt)
            change = np.linalg.norm(after - before[sql], axis=0)
            sensitivity = np.array([m.sensitivity for m in plan.measures])
            assert np.all(change <= sensitivity * (1 + 1e-9)), (sql, fan_out, change)
    finally:
        for table in (PATIENTS, VISITS, LABS):
            con.execute(f'DELETE FROM "{table.name}" WHERE patient_id = {ADVERSARY}')


@pytest.fixture(scope="module")
def fanned_out() -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    """The same clinic without and with a patient of large fan-out in every table."""
    without, with_unit = clinic_database(seed=13), clinic_database(seed=13)
    for table, count in ((PATIENTS, 20), (VISITS, 40), (LABS, 40)):
        load_table(with_unit, table, _adversary_rows(table, count), append=True)
    return without, with_unit


@pytest.mark.parametrize("sql", JOIN_QUERIES)
def test_a_large_fan_out_reaches_but_never_passes_the_joined_bound(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    ratio = _worst_ratio(fanned_out, plan)
    assert 0.25 < ratio <= 1 + 1e-9


@pytest.mark.parametrize("sql", JOIN_QUERIES[:5])
def test_without_the_cap_after_the_join_the_bound_breaks(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection], sql: str
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    assert _worst_ratio(fanned_out, plan, _without_row_cap) > 2


def test_one_tables_cap_is_not_enough_after_a_join(
    fanned_out: tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection],
) -> None:
    """Declaring the sensitivity of one table's cap for joined rows would be broken."""
    plan = plan_query(JOIN_QUERIES[3], None, CONTRACT, VISIBLE)
    assert plan.row_cap == VISITS.max_rows_per_unit * LABS.max_rows_per_unit
    ratio = _worst_ratio(fanned_out, plan)
    # the change measured against the larger table's cap alone
    assert ratio * plan.row_cap / LABS.max_rows_per_unit > 2
