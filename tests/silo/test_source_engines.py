"""Snapshot engines: load through a connector into a locked-down DuckDB, refresh, keep serving.

The source here is a folder of Parquet files (the files connector), so no server is needed.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract, parse_policy
from fedsql.demo.generator import demo_files
from fedsql.errors import ConfigError
from fedsql.silo.source_engines import SnapshotEngine, open_engine, refresh_engine

POLICY = """
[silo]
id = "clinic"

[share]
patients = ["patient_id", "age", "sex"]

[source]
connector = "files"
path = "{path}"

[bind.patients]
table = "people"

[bind.patients.columns]
patient_id = "pid"
sex = {{ column = "gender", values = {{ f = "F", m = "M" }} }}
"""


@pytest.fixture
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def _write(folder: Path, n: int) -> None:
    folder.mkdir(exist_ok=True)
    rows = pa.table(
        {
            "pid": list(range(n)),
            "age": [i % 90 for i in range(n)],
            "gender": ["f" if i % 3 else "m" for i in range(n)],
        }
    )
    pq.write_table(rows, folder / "people.parquet")


def _count(engine: SnapshotEngine) -> int:
    _, rows = engine.run("SELECT count(*) AS n FROM patients", {}, 10)
    return int(rows[0][0])


def test_snapshot_maps_casts_and_locks_down(contract: Contract, tmp_path: Path) -> None:
    _write(tmp_path / "src", 30)
    policy = parse_policy(POLICY.format(path=tmp_path / "src"), contract)
    engine = open_engine(contract, policy, "", tmp_path / "state")
    assert isinstance(engine, SnapshotEngine)
    try:
        assert engine.tables() == {
            "patients": {"patient_id": "BIGINT", "age": "INTEGER", "sex": "VARCHAR"}
        }
        _, rows = engine.run("SELECT sex, count(*) FROM patients GROUP BY sex ORDER BY 1", {}, 5)
        assert rows == [("F", 20), ("M", 10)]
        with pytest.raises(Exception, match=r"read-only|external|Permission"):
            engine.run(f"COPY patients TO '{tmp_path / 'leak.csv'}'", {}, 5)
    finally:
        engine.close()
    assert not list((tmp_path / "state").glob("*.duckdb"))


def test_refresh_swaps_in_new_data_and_removes_the_old_snapshot(
    contract: Contract, tmp_path: Path
) -> None:
    _write(tmp_path / "src", 30)
    policy = parse_policy(POLICY.format(path=tmp_path / "src"), contract)
    engine = open_engine(contract, policy, "", tmp_path / "state")
    assert isinstance(engine, SnapshotEngine)
    try:
        first = engine.path
        _write(tmp_path / "src", 45)
        assert _count(engine) == 30  # the source changed, the snapshot did not
        refresh_engine(engine, contract, policy)
        assert _count(engine) == 45
        assert engine.path != first and not first.exists()
    finally:
        engine.close()


def test_a_failed_refresh_leaves_the_previous_snapshot_serving(
    contract: Contract, tmp_path: Path
) -> None:
    _write(tmp_path / "src", 30)
    policy = parse_policy(POLICY.format(path=tmp_path / "src"), contract)
    engine = open_engine(contract, policy, "", tmp_path / "state")
    assert isinstance(engine, SnapshotEngine)
    try:
        pq.write_table(pa.table({"pid": [1], "age": [3]}), tmp_path / "src" / "people.parquet")
        with pytest.raises(ConfigError, match="table patients, column sex"):
            refresh_engine(engine, contract, policy)
        assert _count(engine) == 30
        assert len(list((tmp_path / "state").glob("*.duckdb"))) == 1
    finally:
        engine.close()


def test_a_query_running_during_refresh_finishes_on_its_snapshot(
    contract: Contract, tmp_path: Path
) -> None:
    _write(tmp_path / "src", 30)
    policy = parse_policy(POLICY.format(path=tmp_path / "src"), contract)
    engine = open_engine(contract, policy, "", tmp_path / "state")
    assert isinstance(engine, SnapshotEngine)
    try:
        with engine._current() as running:
            old = running.path
            _write(tmp_path / "src", 40)
            refresh_engine(engine, contract, policy)
            # The new snapshot serves new queries; the running one still reads the old file.
            assert _count(engine) == 40
            assert old.exists()
            assert running.run("SELECT count(*) FROM patients", {}, 5)[1] == [(30,)]
        assert not old.exists()
    finally:
        engine.close()


def test_refresh_is_refused_for_a_clinic_without_snapshot(
    contract: Contract, tmp_path: Path
) -> None:
    db = tmp_path / "clinic.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE TABLE patients (patient_id BIGINT, age INTEGER, sex VARCHAR)")
    text = '[silo]\nid = "clinic"\ndata = "clinic.duckdb"\n[share]\npatients = ["patient_id"]\n'
    policy = parse_policy(text, contract, base_dir=tmp_path)
    engine = open_engine(contract, policy, db, tmp_path)
    try:
        with pytest.raises(ConfigError, match='mode = "snapshot"'):
            refresh_engine(engine, contract, policy)
    finally:
        engine.close()
