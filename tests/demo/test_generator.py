"""The demo generator: deterministic, fast, true to the contract, with a known ground truth."""

from __future__ import annotations

import doctest
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from fedsql.catalog import Contract
from fedsql.demo import generator
from fedsql.demo.generator import (
    CLINICS,
    COST_OUTLIER_RATE,
    COST_UPPER_BOUND,
    DIABETES_COEF_AGE,
    DIABETES_COEF_BMI,
    DIABETES_INTERCEPT,
    GENERATOR_VERSION,
    ROW_CAPS,
    TABLE_COLUMNS,
    clinic,
    data_checksum,
    demo_cache_dir,
    ensure_demo_data,
    generate_clinic,
    read_manifest,
)
from fedsql.errors import ConfigError

from .conftest import REPO, DemoBuild


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=True)


def union_connection(paths: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with every clinic attached and views over the UNION ALL per table."""
    con = duckdb.connect()
    for i, path in enumerate(paths.values()):
        con.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
    for table in TABLE_COLUMNS:
        union = " UNION ALL ".join(f"SELECT * FROM c{i}.{table}" for i in range(len(paths)))
        con.execute(f"CREATE VIEW {table} AS {union}")
    return con


def test_all_four_clinics_are_built_in_the_versioned_cache(demo_build: DemoBuild) -> None:
    # how long building takes is measured by bench/demo_data.py, not here
    assert list(demo_build.paths) == ["san-francisco", "mumbai", "sydney", "seoul"]
    assert all(
        p.parent == demo_build.cache_dir / GENERATOR_VERSION for p in demo_build.paths.values()
    )


def test_a_second_call_reuses_the_cache(demo_build: DemoBuild) -> None:
    inodes = {k: p.stat().st_ino for k, p in demo_build.paths.items()}
    mtimes = {k: p.stat().st_mtime_ns for k, p in demo_build.paths.items()}
    again = ensure_demo_data(demo_build.cache_dir)
    assert again == demo_build.paths
    assert {k: p.stat().st_mtime_ns for k, p in again.items()} == mtimes
    assert {k: p.stat().st_ino for k, p in again.items()} == inodes


def test_generation_is_deterministic(demo_build: DemoBuild, tmp_path: Path) -> None:
    first = read_manifest(demo_build.cache_dir)
    ensure_demo_data(tmp_path)
    second = read_manifest(tmp_path)
    assert first is not None and second is not None
    assert first["clinics"] == second["clinics"]
    for silo, path in demo_build.paths.items():
        assert data_checksum(path) == first["clinics"][silo]["checksum"]
    assert generate_clinic("seoul")["labs"].equals(generate_clinic(clinic("seoul"))["labs"])


def test_checksum_changes_when_one_value_changes(demo_build: DemoBuild, tmp_path: Path) -> None:
    copy = tmp_path / "seoul.duckdb"
    shutil.copy(demo_build.paths["seoul"], copy)
    before = data_checksum(copy)
    con = duckdb.connect(str(copy))
    con.execute("UPDATE labs SET value = value + 0.1 WHERE rowid = 7")
    con.close()
    assert data_checksum(copy) != before


def test_clinic_sizes_are_uneven_and_ids_globally_unique(demo_build: DemoBuild) -> None:
    sizes = {}
    for spec in CLINICS:
        with connect(demo_build.paths[spec.id]) as con:
            count, low, high = con.execute(
                "SELECT count(*), min(patient_id), max(patient_id) FROM patients"
            ).fetchone() or (0, 0, 0)
        assert count == spec.patients
        assert (low, high) == (spec.first_patient_id, spec.first_patient_id + spec.patients - 1)
        sizes[spec.id] = count
    assert sum(sizes.values()) == 250_000
    assert sorted(sizes.values()) == [4_000, 44_000, 92_000, 110_000]
    assert sum(size < 5_000 for size in sizes.values()) == 1
    with union_connection(demo_build.paths) as con:
        distinct = con.execute("SELECT count(DISTINCT patient_id) FROM patients").fetchone()
        visit_ids = con.execute("SELECT count(*) = count(DISTINCT visit_id) FROM visits").fetchone()
        orphans = con.execute(
            "SELECT count(*) FROM visits WHERE patient_id NOT IN (SELECT patient_id FROM patients)"
        ).fetchone()
    assert distinct == (250_000,)
    assert visit_ids == (True,)
    assert orphans == (0,)


def test_tables_and_types_match_the_contract(
    demo_build: DemoBuild, demo_contract: Contract
) -> None:
    expected = {t.name: tuple((c.name, c.type) for c in t.columns) for t in demo_contract.tables}
    assert expected == TABLE_COLUMNS
    for spec in CLINICS:
        with connect(demo_build.paths[spec.id]) as con:
            tables = {
                r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
            }
            assert tables == set(expected) | {spec.private_table}
            for name, columns in expected.items():
                actual = con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
                    "ORDER BY column_index",
                    [name],
                ).fetchall()
                assert tuple(actual) == columns, (spec.id, name)


def test_each_clinic_has_a_private_table_outside_the_contract(
    demo_build: DemoBuild, demo_contract: Contract
) -> None:
    privates = [spec.private_table for spec in CLINICS]
    assert len(set(privates)) == len(CLINICS)
    for spec in CLINICS:
        assert demo_contract.table(spec.private_table) is None
        with connect(demo_build.paths[spec.id]) as con:
            rows = con.execute(f"SELECT count(*) FROM {spec.private_table}").fetchone()
        assert rows is not None and rows[0] > 0


def test_no_unit_has_more_rows_than_the_contract_allows(
    demo_build: DemoBuild, demo_contract: Contract
) -> None:
    assert {t.name: t.max_rows_per_unit for t in demo_contract.tables} == ROW_CAPS
    with union_connection(demo_build.paths) as con:
        for table in demo_contract.tables:
            most = con.execute(
                f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table.name} GROUP BY {table.unit})"
            ).fetchone()
            assert most == (table.max_rows_per_unit,), table.name


def test_values_lie_in_contract_bounds_and_domains_except_planted_costs(
    demo_build: DemoBuild, demo_contract: Contract
) -> None:
    with union_connection(demo_build.paths) as con:
        for table in demo_contract.tables:
            for column in table.columns:
                nulls = con.execute(
                    f"SELECT count(*) FROM {table.name} WHERE {column.name} IS NULL"
                ).fetchone()
                assert nulls == (0,), (table.name, column.name)
                if column.bounds is not None and (table.name, column.name) != ("visits", "cost"):
                    outside = con.execute(
                        f"SELECT count(*) FROM {table.name} "
                        f"WHERE {column.name} NOT BETWEEN ? AND ?",
                        [column.bounds.lo, column.bounds.hi],
                    ).fetchone()
                    assert outside == (0,), (table.name, column.name)
                if column.domain is not None:
                    seen = {
                        r[0]
                        for r in con.execute(
                            f"SELECT DISTINCT {column.name} FROM {table.name}"
                        ).fetchall()
                    }
                    assert seen <= set(column.domain.keys()), (table.name, column.name)
        above, below, total = con.execute(
            "SELECT count(*) FILTER (cost > ?), count(*) FILTER (cost < 0), count(*) FROM visits",
            [COST_UPPER_BOUND],
        ).fetchone() or (0, 0, 0)
    assert below == 0
    assert COST_OUTLIER_RATE / 2 < above / total < COST_OUTLIER_RATE * 2


def fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> np.ndarray:
    """Maximum-likelihood logistic regression by Newton's method (x includes the intercept)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (y - p)
        hessian = (x * (p * (1 - p))[:, None]).T @ x
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def test_diabetes_follows_the_published_logistic_model(demo_build: DemoBuild) -> None:
    with union_connection(demo_build.paths) as con:
        age, bmi, diabetic = (
            con.execute("SELECT age, bmi, diabetic FROM patients").fetchnumpy()[c]
            for c in ("age", "bmi", "diabetic")
        )
        bands = con.execute(
            "SELECT age // 10 AS band, avg(diabetic::INTEGER), count(*) FROM patients "
            "GROUP BY band HAVING count(*) >= 2000 ORDER BY band"
        ).fetchall()
    rates = [rate for _, rate, _ in bands]
    assert len(rates) >= 6
    assert all(a < b for a, b in itertools.pairwise(rates)), bands
    x = np.column_stack([np.ones(age.size), age.astype(float), bmi.astype(float)])
    intercept, coef_age, coef_bmi = fit_logistic(x, diabetic.astype(float))
    assert abs(coef_age - DIABETES_COEF_AGE) < 0.1 * DIABETES_COEF_AGE
    assert abs(coef_bmi - DIABETES_COEF_BMI) < 0.15 * DIABETES_COEF_BMI
    assert abs(intercept - DIABETES_INTERCEPT) < 0.6
    expected = generator.diabetes_probability(age, bmi).mean()
    assert abs(diabetic.mean() - expected) < 0.005


def test_hba1c_is_higher_for_diabetics(demo_build: DemoBuild) -> None:
    with union_connection(demo_build.paths) as con:
        rows = dict(
            con.execute(
                "SELECT p.diabetic, avg(l.value) FROM labs l JOIN patients p USING (patient_id) "
                "WHERE l.test = 'HbA1c' GROUP BY p.diabetic"
            ).fetchall()
        )
    gap = rows[True] - rows[False]
    assert abs(gap - (generator.HBA1C_MEAN[True] - generator.HBA1C_MEAN[False])) < 0.2


def test_clinics_differ_in_age_mix(demo_build: DemoBuild) -> None:
    means = {}
    for spec in CLINICS:
        with connect(demo_build.paths[spec.id]) as con:
            means[spec.id] = (con.execute("SELECT avg(age) FROM patients").fetchone() or (0,))[0]
        assert abs(means[spec.id] - spec.age_mean) < 1.5
    assert max(means.values()) - min(means.values()) > 10


def test_unknown_clinic_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match="'atlantis' is not a demo clinic; use one of: san-francisco"
    ):
        clinic("atlantis")


def test_cache_location_follows_env_and_defaults_to_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FEDSQL_CACHE_DIR", str(tmp_path))
    assert demo_cache_dir() == tmp_path / GENERATOR_VERSION
    monkeypatch.delenv("FEDSQL_CACHE_DIR")
    assert demo_cache_dir() == Path.home() / ".cache" / "fedsql" / GENERATOR_VERSION
    assert demo_cache_dir(tmp_path / "x") == tmp_path / "x" / GENERATOR_VERSION


def test_a_new_generator_version_builds_a_new_folder(
    demo_build: DemoBuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator, "GENERATOR_VERSION", "demo-test-next")
    paths = ensure_demo_data(demo_build.cache_dir)
    assert {p.parent.name for p in paths.values()} == {"demo-test-next"}
    manifest = read_manifest(demo_build.cache_dir)
    assert manifest is not None and manifest["generator_version"] == "demo-test-next"
    assert all(p.is_file() for p in paths.values())
    assert all(p.is_file() for p in demo_build.paths.values())  # the old build is left alone


def test_stale_or_incomplete_builds_are_rebuilt(tmp_path: Path) -> None:
    paths = ensure_demo_data(tmp_path)
    folder = demo_cache_dir(tmp_path)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["numpy"] = "0.0-other"
    manifest_path.write_text(json.dumps(manifest))
    leftover = folder / ".mumbai.duckdb.99999.tmp"
    leftover.write_bytes(b"half a file")
    inode = paths["mumbai"].stat().st_ino
    ensure_demo_data(tmp_path)
    assert paths["mumbai"].stat().st_ino != inode
    assert not leftover.exists()
    assert read_manifest(tmp_path) == {**manifest, "numpy": np.__version__}

    paths["seoul"].unlink()
    ensure_demo_data(tmp_path)
    assert paths["seoul"].is_file()
    assert data_checksum(paths["seoul"]) == manifest["clinics"]["seoul"]["checksum"]


RACE = """
import json, os, sys
from pathlib import Path
from fedsql.demo.generator import ensure_demo_data
paths = ensure_demo_data(Path(sys.argv[1]))
print(json.dumps({k: os.stat(p).st_ino for k, p in paths.items()}))
"""


def test_processes_asking_at_once_build_once(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    final = {c.id: (demo_cache_dir(tmp_path) / f"{c.id}.duckdb").stat().st_ino for c in CLINICS}
    # Every process saw the files that are still there: nobody replaced them after another.
    assert [json.loads(out) for out, _ in outputs] == [final] * 3
    assert not list(demo_cache_dir(tmp_path).glob(".*.tmp*"))


def test_generator_doctests_pass() -> None:
    result = doctest.testmod(generator)
    assert result.attempted > 0
    assert result.failed == 0
