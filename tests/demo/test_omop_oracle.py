"""The OMOP example oracle: with noise off, each research query equals DuckDB over the pooled data.

Every query of ``examples/omop/queries`` is checked against its own pooled-DuckDB oracle, written
independently of the query's formulation; quantiles are compared within one histogram bin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import fedsql
from fedsql.demo.example_queries import ExampleQuery, load_queries
from fedsql.demo.federation import DemoFederation
from fedsql.demo.omop import TABLE_COLUMNS, ensure_omop_data, omop_files

from .test_federation_oracle import _close, _sort_key, federated_rows

QUERIES: dict[str, ExampleQuery] = {q.name: q for q in load_queries(omop_files() / "queries")}


#: Quantile outputs come from a noisy 32-bin histogram over the column's contract bounds: noise
#: off, they are within one bin width of the exact value (query -> column index -> width).
BIN_WIDTHS: dict[str, dict[int, float]] = {
    "12_systolic_bp_distribution_in_hypertension": {2: 250.0 / 32},
}

_AGE_BAND = (
    "CASE WHEN 2024 - year_of_birth <= 39 THEN '18-39' "
    "WHEN 2024 - year_of_birth <= 64 THEN '40-64' ELSE '65+' END"
)

#: The pooled-DuckDB answer of every query, written independently of the query where the
#: query's own formulation is what is being tested (bands, joins, DISTINCT, FILTER).
ORACLE_SQL: dict[str, str] = {
    "01_persons_by_sex_and_birth_year": (
        "SELECT gender_concept_id, year_of_birth, count(*) FROM person GROUP BY ALL ORDER BY 1, 2"
    ),
    "02_persons_by_sex_and_age_band": (
        f"SELECT gender_concept_id, {_AGE_BAND} AS band, count(*) FROM person "
        "GROUP BY ALL ORDER BY 1, 2"
    ),
    "03_persons_observed_through_study_window": (
        "SELECT p.race_concept_id, count(*) FROM person p WHERE p.person_id IN "
        "(SELECT person_id FROM observation_period WHERE observation_period_start_date "
        "<= DATE '2020-01-01' AND observation_period_end_date >= DATE '2023-12-31') "
        "GROUP BY 1 ORDER BY 1"
    ),
    "04_observation_start_by_year": (
        "SELECT extract(year FROM observation_period_start_date) AS y, count(*) "
        "FROM observation_period GROUP BY y ORDER BY y"
    ),
    "05_condition_records_by_concept": (
        "SELECT condition_concept_id, count(*) AS n FROM condition_occurrence "
        "GROUP BY 1 ORDER BY n DESC"
    ),
    "06_persons_with_each_condition": (
        "SELECT condition_concept_id, count(*) AS n FROM (SELECT DISTINCT condition_concept_id, "
        "person_id FROM condition_occurrence) GROUP BY 1 ORDER BY n DESC"
    ),
    "07_type2_diabetes_prevalence_by_sex": (
        "SELECT gender_concept_id, count(*), sum(t2d::INT), sum(t2d::INT) / count(*) FROM "
        "(SELECT p.gender_concept_id, p.person_id IN (SELECT person_id FROM condition_occurrence "
        "WHERE condition_concept_id = 201826) AS t2d FROM person p) GROUP BY 1 ORDER BY 1"
    ),
    "08_hypertension_prevalence_by_age_band": (
        f"SELECT {_AGE_BAND} AS band, count(*), sum(htn::INT) FROM (SELECT year_of_birth, "
        "person_id IN (SELECT person_id FROM condition_occurrence WHERE condition_concept_id "
        "= 320128) AS htn FROM person) GROUP BY band ORDER BY band"
    ),
    "09_measurement_means_by_concept": (
        "SELECT measurement_concept_id, count(*), sum(value_as_number) / count(value_as_number) "
        "FROM measurement GROUP BY ALL ORDER BY 1"
    ),
    "10_mean_hba1c_in_type2_diabetes": (
        "SELECT d.person_id IS NOT NULL AS t2d, count(*), avg(m.value_as_number) "
        "FROM measurement m LEFT JOIN (SELECT DISTINCT person_id FROM condition_occurrence "
        "WHERE condition_concept_id = 201826) d USING (person_id) "
        "WHERE m.measurement_concept_id = 3004410 GROUP BY t2d ORDER BY t2d"
    ),
    "11_poor_glycaemic_control": (
        "SELECT count(*), sum((top >= 8)::INT) FROM (SELECT person_id, max(value_as_number) AS top "
        "FROM measurement WHERE measurement_concept_id = 3004410 AND person_id IN "
        "(SELECT person_id FROM condition_occurrence WHERE condition_concept_id = 201826) "
        "GROUP BY person_id)"
    ),
    "12_systolic_bp_distribution_in_hypertension": (
        "SELECT avg(value_as_number), stddev_samp(value_as_number), "
        "quantile_cont(value_as_number, 0.5) FROM measurement "
        "WHERE measurement_concept_id = 3004249 AND person_id IN (SELECT person_id FROM "
        "condition_occurrence WHERE condition_concept_id = 320128)"
    ),
    "13_visits_by_type_in_2023": (
        "SELECT visit_concept_id, count(*) FROM visit_occurrence "
        "WHERE year(visit_start_date) = 2023 GROUP BY 1 ORDER BY 1"
    ),
    "14_visits_by_type_and_year": (
        "SELECT visit_concept_id, year(visit_start_date) AS y, count(*) FROM visit_occurrence "
        "GROUP BY ALL ORDER BY 1, 2"
    ),
    "15_inpatient_stays_per_person": (
        "SELECT sum(n), count(*), sum(n) / count(*) FROM (SELECT person_id, count(*) AS n "
        "FROM visit_occurrence WHERE visit_concept_id = 9201 "
        "AND visit_end_date >= DATE '2024-01-01' GROUP BY person_id)"
    ),
    "16_prescriptions_by_drug": (
        "SELECT drug_concept_id, count(*) AS n, avg(days_supply) FROM drug_exposure "
        "GROUP BY 1 ORDER BY n DESC"
    ),
    "17_diabetes_drugs_in_type2_diabetes": (
        "SELECT drug_concept_id, count(DISTINCT person_id) AS n FROM drug_exposure "
        "WHERE drug_concept_id IN (1503297, 1502905, 1580747, 45774751) AND person_id IN "
        "(SELECT person_id FROM condition_occurrence WHERE condition_concept_id = 201826) "
        "GROUP BY 1 ORDER BY n DESC"
    ),
    "18_metformin_days_supply_2024": (
        "SELECT count(*), sum(days_supply) FROM drug_exposure WHERE drug_concept_id = 1503297 "
        "AND year(drug_exposure_start_date) = 2024"
    ),
    "19_persons_by_race_and_ethnicity": (
        "SELECT race_concept_id, ethnicity_concept_id, count(*) FROM person "
        "GROUP BY ALL ORDER BY 1, 2"
    ),
    "20_hba1c_results_in_diabetic_range": (
        "SELECT count(*), avg(value_as_number) FROM measurement "
        "WHERE measurement_concept_id = 3004410 AND value_as_number >= 6.5"
    ),
}

PLANNED = sorted(QUERIES)


def pooled_omop(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB whose OMOP tables are views over the UNION ALL of every clinic's."""
    conn = duckdb.connect()
    for i, path in enumerate(files.values()):
        conn.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
    for table in TABLE_COLUMNS:
        parts = " UNION ALL ".join(f"SELECT * FROM c{i}.{table}" for i in range(len(files)))
        conn.execute(f"CREATE VIEW {table} AS {parts}")
    return conn


@pytest.fixture(scope="module")
def omop_data() -> dict[str, Path]:
    return ensure_omop_data()


@pytest.fixture(scope="module")
def omop_pooled(omop_data: dict[str, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = pooled_omop(omop_data)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def omop_cursor(omop_data: dict[str, Path]) -> Iterator[fedsql.Cursor]:
    """A cursor on the OMOP federation with noise off and suppression only of empty cells."""
    overrides = {"budget_epsilon": 100_000.0, "min_group_size": 1}
    with (
        DemoFederation(
            dataset="omop", noise=False, testing=True, policy_overrides=overrides
        ) as fed,
        fedsql.connect(fed.target, analyst="tester") as conn,
    ):
        yield conn.cursor()


def test_every_query_has_an_oracle_and_a_question() -> None:
    assert len(QUERIES) >= 10
    assert set(ORACLE_SQL) == set(QUERIES)
    for query in QUERIES.values():
        assert query.question.endswith("?"), query.name


@pytest.mark.parametrize("name", sorted(ORACLE_SQL))
def test_every_oracle_runs_on_the_pooled_clinics(
    omop_pooled: duckdb.DuckDBPyConnection, name: str
) -> None:
    rows = omop_pooled.execute(ORACLE_SQL[name]).fetchall()
    assert rows and all(v is not None for row in rows for v in row), name
    # The query itself is valid DuckDB and agrees with its oracle (before any privacy).
    same = omop_pooled.execute(QUERIES[name].sql).fetchall()
    _assert_rows_equal(same, rows, ordered="ORDER BY" in QUERIES[name].sql.upper())


@pytest.mark.parametrize("name", PLANNED)
def test_noise_off_answer_equals_pooled_duckdb(
    omop_cursor: fedsql.Cursor, omop_pooled: duckdb.DuckDBPyConnection, name: str
) -> None:
    query = QUERIES[name]
    got = federated_rows(omop_cursor, query.sql, None)
    want = omop_pooled.execute(ORACLE_SQL[name]).fetchall()
    _assert_rows_equal(
        got, want, ordered="ORDER BY" in query.sql.upper(), widths=BIN_WIDTHS.get(name, {})
    )


def _assert_rows_equal(
    got: list[tuple[object, ...]],
    want: list[tuple[object, ...]],
    *,
    ordered: bool,
    widths: dict[int, float] | None = None,
) -> None:
    if not ordered:
        got, want = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    assert len(got) == len(want), (got[:5], want[:5])
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w)
        for index, (a, b) in enumerate(zip(g, w, strict=True)):
            width = (widths or {}).get(index)
            if width is None:
                assert _close(a, b), (g, w)
            else:
                assert isinstance(a, float) and isinstance(b, float | int), (g, w)
                assert abs(a - b) <= width, (g, w, width)


def test_per_clinic_breakdowns_are_refused_because_kyoto_does_not_allow_them(
    omop_cursor: fedsql.Cursor,
) -> None:
    with pytest.raises(fedsql.errors.QueryRejected) as info:
        omop_cursor.execute("SELECT silo, COUNT(*) FROM person GROUP BY silo")
    assert "not allowed by clinic kyoto's policy (queries.allow_per_clinic)" in str(info.value)
