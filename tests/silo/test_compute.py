"""The silo's computation: a per-clinic query fills only this silo's own cells of its vector."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.query_terms import encoding_for
from fedsql.silo.compute import noised_vector, partial_sql
from fedsql.silo.engine import Engine
from fedsql.silo.guard import Admission
from fedsql.sql import plan_query

SQL = "SELECT silo, sex, COUNT(*) AS n, SUM(age) AS ages FROM patients GROUP BY silo, sex"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@pytest.fixture(scope="module")
def engine(
    demo_data: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    # A copy: other tests of the session may hold the demo file open with other settings.
    path = tmp_path_factory.mktemp("sydney") / "sydney.duckdb"
    shutil.copyfile(demo_data["sydney"], path)
    eng = Engine(path, threads=1)
    yield eng
    eng.close()


def _admission(contract: Contract, sql: str) -> Admission:
    plan = plan_query(sql, None, contract, {t.name: t.column_names for t in contract.tables})
    encoding = encoding_for(contract, plan, None, len(contract.silos))
    return Admission(plan=plan, noise=None, encoding=encoding, epsilon_micro=0)


def _decoded(admission: Admission, vector: np.ndarray) -> np.ndarray:
    """The vector in value units, one row per cell and one column per measure."""
    plan = admission.plan
    scale = np.array([2.0**spec.frac_bits for spec in admission.encoding])
    return vector.reshape(plan.cells, len(plan.measures)) / scale


def test_the_vector_is_zero_in_every_other_clinics_cells(
    contract: Contract, engine: Engine, demo_data: dict[str, Path]
) -> None:
    admission = _admission(contract, SQL)
    plan = admission.plan
    vector, extra = noised_vector(engine, admission, {}, 30.0, "sydney")
    assert extra is None  # noise off: no noise share at all
    cells = _decoded(admission, vector)
    index = plan.key_index()
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{demo_data['sydney']}' AS clinic (READ_ONLY)")
        truth = dict(
            ((sex,), (n, ages))
            for sex, n, ages in conn.execute(
                "SELECT sex, COUNT(*), SUM(age) FROM clinic.patients GROUP BY sex"
            ).fetchall()
        )
    assert sum(truth[key][0] for key in truth) > 0
    for (silo, sex), cell in index.items():
        if silo == "sydney":
            assert tuple(cells[cell]) == truth.get((sex,), (0, 0))
        else:
            assert not cells[cell].any(), (silo, sex)


def test_the_silo_binds_its_own_id_whatever_id_it_is_given(
    contract: Contract, engine: Engine
) -> None:
    # The id comes from the silo's own configuration: bound as "mumbai", Sydney's rows all
    # land in Mumbai's cells and nowhere else (the agent passes its policy's id).
    admission = _admission(contract, "SELECT silo, COUNT(*) FROM patients GROUP BY silo")
    cells = _decoded(admission, noised_vector(engine, admission, {}, 30.0, "mumbai")[0])
    order = admission.plan.keys[0].values
    assert [bool(c) for c in cells[:, 0]] == [silo == "mumbai" for silo in order]
    assert "'mumbai' AS k0" in partial_sql(admission, {}, "mumbai")


def test_queries_without_silo_run_their_plans_sql_unchanged(contract: Contract) -> None:
    admission = _admission(contract, "SELECT sex, COUNT(*) FROM patients GROUP BY sex")
    assert partial_sql(admission, {}, "sydney") == admission.plan.partial_sql
