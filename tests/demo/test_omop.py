"""The OMOP example generator: contract-shaped tables, real concept ids, caps, bounds, truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract, load_policy
from fedsql.demo import omop_concepts as oc
from fedsql.demo.cache import data_checksum
from fedsql.demo.omop import (
    CLINICS,
    TABLE_COLUMNS,
    chronic_probabilities,
    clinic,
    ensure_omop_data,
    generate_clinic,
    omop_files,
    read_omop_manifest,
)
from fedsql.errors import ConfigError

from .test_omop_oracle import pooled_omop

EVENT_DATES = {
    "visit_occurrence": "visit_start_date",
    "condition_occurrence": "condition_start_date",
    "drug_exposure": "drug_exposure_start_date",
    "measurement": "measurement_date",
}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(omop_files() / "contract.toml")


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    return ensure_omop_data()


@pytest.fixture(scope="module")
def pooled(files: dict[str, Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = pooled_omop(files)
    yield conn
    conn.close()


def one(conn: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return float(row[0])


def test_a_second_call_reuses_the_cache_and_the_manifest_matches(files: dict[str, Path]) -> None:
    inodes = {k: p.stat().st_ino for k, p in files.items()}
    again = ensure_omop_data(next(iter(files.values())).parents[1])
    assert {k: p.stat().st_ino for k, p in again.items()} == inodes
    manifest = read_omop_manifest(next(iter(files.values())).parents[1])
    assert manifest is not None
    assert data_checksum(files["kyoto"]) == manifest["clinics"]["kyoto"]["checksum"]


def test_generation_is_deterministic() -> None:
    first, second = generate_clinic("kyoto"), generate_clinic(clinic("kyoto"))
    assert all(first[name].equals(second[name]) for name in first)
    with pytest.raises(ConfigError, match="not an OMOP example clinic"):
        clinic("atlantis")


def test_five_clinics_of_uneven_sizes_with_unique_person_ids(
    pooled: duckdb.DuckDBPyConnection,
) -> None:
    sizes = [c.persons for c in CLINICS]
    assert len(sizes) == 5 and len(set(sizes)) == 5 and max(sizes) >= 8 * min(sizes)
    assert one(pooled, "SELECT count(*) FROM person") == sum(sizes)
    assert one(pooled, "SELECT count(DISTINCT person_id) FROM person") == sum(sizes)


def test_tables_and_types_match_the_contract(files: dict[str, Path], contract: Contract) -> None:
    assert [t.name for t in contract.tables] == list(TABLE_COLUMNS)
    for table in contract.tables:
        assert [(c.name, str(c.type)) for c in table.columns] == list(TABLE_COLUMNS[table.name])
    with duckdb.connect(str(files["lyon"]), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert names == {*TABLE_COLUMNS, "note"}
        for name, columns in TABLE_COLUMNS.items():
            got = con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                "ORDER BY column_index",
                [name],
            ).fetchall()
            assert got == list(columns)


def test_no_person_has_more_rows_than_the_contract_allows(
    pooled: duckdb.DuckDBPyConnection, contract: Contract
) -> None:
    for table in contract.tables:
        most = one(
            pooled,
            f"SELECT max(n) FROM (SELECT count(*) n FROM {table.name} GROUP BY {table.unit})",
        )
        assert 1 <= most <= table.max_rows_per_unit, table.name


def test_values_lie_in_their_bounds_and_domains(
    pooled: duckdb.DuckDBPyConnection, contract: Contract
) -> None:
    for table in contract.tables:
        for column in table.columns:
            if column.bounds is not None:
                lo, hi = column.bounds.lo, column.bounds.hi
                outside = f"SELECT count(*) FROM {table.name} WHERE {column.name} NOT BETWEEN "
                assert one(pooled, f"{outside}{lo} AND {hi}") == 0, column.name
            if column.domain is None:
                continue
            values = pooled.execute(f"SELECT DISTINCT {column.name} FROM {table.name}").fetchall()
            allowed = set(column.domain.keys())
            assert {v for (v,) in values} <= allowed, (table.name, column.name)


def test_contract_domains_are_the_concept_catalogue(contract: Contract) -> None:
    def domain(table: str, column: str) -> set[object]:
        found = contract.table(table)
        assert found is not None
        col = next(c for c in found.columns if c.name == column)
        assert col.domain is not None
        return set(col.domain.keys())

    assert domain("person", "gender_concept_id") == {oc.MALE, oc.FEMALE}
    assert domain("visit_occurrence", "visit_concept_id") == {9201, 9202, 9203}
    assert domain("condition_occurrence", "condition_concept_id") == set(oc.CONDITION_NAMES)
    assert domain("drug_exposure", "drug_concept_id") == set(oc.DRUG_NAMES)
    assert domain("measurement", "measurement_concept_id") == set(oc.MEASUREMENTS)
    assert domain("measurement", "unit_concept_id") == set(oc.UNITS)
    assert {201826, 320128} <= set(oc.CONDITION_NAMES) and oc.HBA1C == 3004410


def test_every_event_lies_in_the_persons_observation_period(
    pooled: duckdb.DuckDBPyConnection,
) -> None:
    for table, day in EVENT_DATES.items():
        outside = one(
            pooled,
            f"SELECT count(*) FROM {table} t JOIN observation_period o USING (person_id) "
            f"WHERE t.{day} NOT BETWEEN o.observation_period_start_date "
            "AND o.observation_period_end_date",
        )
        assert outside == 0, table
    assert (
        one(pooled, "SELECT count(*) FROM visit_occurrence WHERE visit_end_date < visit_start_date")
        == 0
    )


def test_diabetes_prevalence_follows_the_model_at_each_clinic(
    pooled: duckdb.DuckDBPyConnection,
) -> None:
    for spec in CLINICS:
        lo, hi = spec.first_person_id, spec.first_person_id + spec.persons - 1
        observed = (
            one(
                pooled,
                "SELECT count(DISTINCT person_id) FROM condition_occurrence WHERE "
                f"condition_concept_id = {oc.T2D} AND person_id BETWEEN {lo} AND {hi}",
            )
            / spec.persons
        )
        # The model's expectation over this clinic's own ages and (regenerated) latent BMIs.
        rng = np.random.default_rng(0)
        ages = np.asarray(
            pooled.execute(
                f"SELECT 2024 - year_of_birth FROM person WHERE person_id BETWEEN {lo} AND {hi}"
            ).fetchall(),
            dtype=float,
        )[:, 0]
        bmi = spec.bmi_mean + 0.05 * (ages - 45) + rng.normal(0, 4.5, ages.size)
        expected = chronic_probabilities(ages, np.clip(bmi, 15, 55), ages * 0, {})[oc.T2D].mean()
        assert abs(observed - expected) < 0.1 * expected + 3 * np.sqrt(expected / spec.persons)


def test_hba1c_metformin_and_blood_pressure_follow_the_ground_truth(
    pooled: duckdb.DuckDBPyConnection,
) -> None:
    t2d = f"(SELECT person_id FROM condition_occurrence WHERE condition_concept_id = {oc.T2D})"
    hba1c = "SELECT avg(value_as_number) FROM measurement WHERE measurement_concept_id = 3004410"
    assert abs(one(pooled, f"{hba1c} AND person_id IN {t2d}") - oc.HBA1C_MEAN[True]) < 0.05
    assert abs(one(pooled, f"{hba1c} AND person_id NOT IN {t2d}") - oc.HBA1C_MEAN[False]) < 0.05
    on_metformin = one(
        pooled,
        f"SELECT count(DISTINCT person_id) FROM drug_exposure WHERE drug_concept_id = "
        f"{oc.METFORMIN} AND person_id IN {t2d}",
    ) / one(pooled, f"SELECT count(DISTINCT person_id) FROM {t2d}")
    assert abs(on_metformin - 0.75) < 0.02
    assert (
        one(
            pooled,
            f"SELECT count(*) FROM drug_exposure WHERE drug_concept_id = "
            f"{oc.METFORMIN} AND person_id NOT IN {t2d}",
        )
        == 0
    )
    htn = t2d.replace(str(oc.T2D), str(oc.HYPERTENSION))
    sbp = "SELECT avg(value_as_number) FROM measurement WHERE measurement_concept_id = 3004249"
    gap = one(pooled, f"{sbp} AND person_id IN {htn}") - one(
        pooled, f"{sbp} AND person_id NOT IN {htn}"
    )
    assert oc.SBP_HYPERTENSION_EFFECT < gap < oc.SBP_HYPERTENSION_EFFECT + 10  # older, too


def test_policies_share_no_record_number_and_name_their_generated_clinic(
    contract: Contract,
) -> None:
    folder = omop_files()
    policies = [
        load_policy(p, contract) for p in sorted(folder.glob("*.toml")) if p.name != "contract.toml"
    ]
    assert sorted(p.silo_id for p in policies) == sorted(c.id for c in CLINICS)
    for policy in policies:
        assert policy.data == f"demo:{policy.silo_id}"
        assert "person_source_value" not in policy.shared["person"]
        assert set(policy.shared) == set(TABLE_COLUMNS)
