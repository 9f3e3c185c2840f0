"""Quantiles from a noisy histogram: within one bin of DuckDB without noise, sensitivity k."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from fedsql.catalog import Bounds
from fedsql.errors import QueryRejected
from fedsql.sql import plan_query
from fedsql.sql.quantiles import HISTOGRAM_BINS, bin_width

from .test_bounding import _adversary_rows, _vectors
from .testbed import CONTRACT, PATIENTS, VISIBLE, clinic_database, federated_answer, load_table

#: (query, the bounds of the quantiled value per output column after the keys)
QUANTILE_QUERIES: list[tuple[str, list[Bounds]]] = [
    ("SELECT MEDIAN(age) FROM patients", [Bounds(0, 110)]),
    (
        "SELECT sex, MEDIAN(bmi), QUANTILE_CONT(bmi, 0.9) FROM patients GROUP BY sex",
        [Bounds(10, 70), Bounds(10, 70)],
    ),
    (
        "SELECT dept, QUANTILE_CONT(cost, 0.25), QUANTILE_CONT(minutes, 0.75) FROM visits "
        "GROUP BY dept",
        [Bounds(0, 5000), Bounds(0, 240)],
    ),
    ("SELECT test, MEDIAN(delta) FROM labs GROUP BY test", [Bounds(-50, 20)]),
    ("SELECT QUANTILE_CONT(age, 0.5) FILTER (WHERE smoker) FROM patients", [Bounds(0, 110)]),
    ("SELECT age // 20 AS band, MEDIAN(bmi) FROM patients GROUP BY band", [Bounds(10, 70)]),
]


@pytest.mark.parametrize(("sql", "bounds"), QUANTILE_QUERIES)
def test_noise_off_quantiles_are_within_one_bin_of_duckdb(
    clinic: duckdb.DuckDBPyConnection, sql: str, bounds: list[Bounds]
) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    answer = federated_answer(clinic, plan)
    ours = {row[: len(plan.keys)]: row for row in answer.rows if answer.cell_counts[row[-1]]}
    direct = clinic.execute(sql).fetchall()
    assert len(ours) == len(direct)
    for row in direct:
        mine = ours[row[: len(plan.keys)]]
        for position, bound in enumerate(bounds):
            value, truth = mine[len(plan.keys) + position], row[len(plan.keys) + position]
            assert abs(value - truth) <= bin_width(bound), (sql, value, truth)


def test_every_quantile_of_one_argument_reads_one_histogram() -> None:
    plan = plan_query(
        "SELECT MEDIAN(age), QUANTILE_CONT(age, 0.1), AVG(age) FROM patients",
        None,
        CONTRACT,
        VISIBLE,
    )
    bins = [m for m in plan.measures if m.kind == "bin"]
    assert len(bins) == HISTOGRAM_BINS
    assert {m.group for m in bins} == {"histogram of age"}
    assert all(m.sensitivity == 2.0 for m in bins)  # k of patients
    assert any("histogram of age: 32 bins" in line for line in plan.explanation)


def test_a_patient_moves_the_whole_histogram_by_at_most_k() -> None:
    neighbours = clinic_database(seed=11), clinic_database(seed=11)
    load_table(neighbours[1], PATIENTS, _adversary_rows(PATIENTS), append=True)
    plan = plan_query(
        "SELECT region, MEDIAN(bmi) FROM patients GROUP BY region", None, CONTRACT, VISIBLE
    )
    bins = [j for j, m in enumerate(plan.measures) if m.kind == "bin"]
    worst = 0.0
    for salt in (1, 99):
        before, after = (_vectors(con, plan.partial_sql, plan, salt) for con in neighbours)
        worst = max(worst, float(np.linalg.norm((after - before)[:, bins])))
    assert 0 < worst <= plan.measures[bins[0]].sensitivity


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT QUANTILE_CONT(age, 1.5) FROM patients", "outside"),
        ("SELECT QUANTILE_CONT(age, age) FROM patients", "number literal"),
        ("SELECT MEDIAN(income) FROM patients", "income has no bounds"),
        ("SELECT QUANTILE_DISC(age, 0.5) FROM patients", "discrete quantile"),
    ],
)
def test_unsupported_quantiles_are_refused(sql: str, message: str) -> None:
    with pytest.raises(QueryRejected, match=message):
        plan_query(sql, None, CONTRACT, VISIBLE)
