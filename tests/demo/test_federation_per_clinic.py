"""Per-clinic breakdowns (GROUP BY silo): exact with noise off, and only where every clinic allows.

The oracle (``labelled``) labels each clinic's rows with its id in DuckDB: the federated answer
must equal ``GROUP BY silo`` over the UNION ALL of the clinics' files, each row tagged with its
clinic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import fedsql
from fedsql import errors
from fedsql.demo.federation import DemoFederation
from tests.conftest import TEST_BUDGETS
from tests.demo.test_federation_oracle import federated_rows

CASES = [
    "SELECT silo, COUNT(*), AVG(age) FROM patients GROUP BY silo",
    "SELECT silo, sex, COUNT(*) AS n, AVG(bmi) AS mean_bmi FROM patients GROUP BY silo, sex",
    "SELECT sex, silo AS clinic, SUM(age) FROM patients WHERE diabetic GROUP BY 1, 2",
    "SELECT silo, test, COUNT(*), AVG(value) FROM labs GROUP BY silo, test",
    "SELECT silo, COUNT(*) AS n, SUM(v.cost) FROM patients p JOIN visits v "
    "ON v.patient_id = p.patient_id WHERE v.cost <= 5000 AND p.age >= 40 GROUP BY 1",
    "SELECT CASE WHEN silo IN ('mumbai', 'seoul') THEN 'asia' ELSE 'elsewhere' END AS region, "
    "COUNT(*) FROM patients GROUP BY region",
    "SELECT silo, COUNT(*) AS n FROM patients GROUP BY silo HAVING silo <> 'sydney' "
    "ORDER BY n DESC",
]
PER_SILO = "SELECT silo, sex, COUNT(*) AS n FROM patients GROUP BY silo, sex"


def oracle_sql(sql: str) -> str:
    """The query for the labelled oracle: in a join both sides carry the label, so name one."""
    return sql.replace("SELECT silo,", "SELECT p.silo,") if " JOIN " in sql else sql


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                if not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif a != b:
                return False
    return True


@pytest.mark.parametrize("sql", CASES, ids=[c[:60] for c in CASES])
def test_noise_off_per_clinic_answer_equals_duckdb_per_clinic(
    oracle_cursor: fedsql.Cursor, labelled: duckdb.DuckDBPyConnection, sql: str
) -> None:
    got = federated_rows(oracle_cursor, sql, None)
    want = labelled.execute(oracle_sql(sql)).fetchall()
    if "ORDER BY" not in sql:
        got, want = sorted(got, key=repr), sorted(want, key=repr)
    assert same_rows(got, want), (got, want)


def test_every_clinic_has_its_own_cells(
    oracle_cursor: fedsql.Cursor, demo_data: dict[str, Path]
) -> None:
    rows = federated_rows(oracle_cursor, "SELECT silo, COUNT(*) FROM patients GROUP BY silo", None)
    assert sorted(silo for silo, _ in rows) == sorted(demo_data)
    for silo, count in rows:
        with duckdb.connect() as conn:
            conn.execute(f"ATTACH '{demo_data[silo]}' AS clinic (READ_ONLY)")
            row = conn.execute("SELECT COUNT(*) FROM clinic.patients").fetchone()
        assert row is not None and count == row[0]


def test_explain_shows_the_silo_key(oracle_federation: DemoFederation) -> None:
    with fedsql.connect(oracle_federation.target, analyst="tester") as conn:
        lines = conn.cursor().explain(PER_SILO)
    text = "\n".join(lines)
    assert "key k0 = silo (VARCHAR): 4 clinic id(s) from the contract's silos list" in text
    assert "$fedsql_silo AS k0" in text


def _executed(fed: DemoFederation) -> dict[str, int]:
    return {s: a.stats.executed for s, a in fed.silos.items()}


def _spent(fed: DemoFederation, analyst: str) -> dict[str, int]:
    return {s: a.ledger.spent(analyst) for s, a in fed.silos.items()}


@pytest.fixture(scope="module")
def seoul_declines(demo_data: dict[str, Path]) -> Iterator[DemoFederation]:
    """The demo federation, noise off, where Seoul's policy does not allow per-clinic results."""
    with DemoFederation(
        noise=False,
        testing=True,
        policy_overrides={**TEST_BUDGETS, "min_group_size": 1},
        silo_overrides={"seoul": {"allow_per_clinic": False}},
    ) as fed:
        yield fed


def test_the_hub_refuses_when_one_clinic_does_not_allow_it(seoul_declines: DemoFederation) -> None:
    before = _executed(seoul_declines)
    with (
        fedsql.connect(seoul_declines.target, analyst="per-clinic") as conn,
        pytest.raises(errors.QueryRejected) as info,
    ):
        conn.cursor().execute(PER_SILO)
    assert "not allowed by clinic seoul's policy (queries.allow_per_clinic)" in str(info.value)
    assert _executed(seoul_declines) == before
    assert set(_spent(seoul_declines, "per-clinic").values()) == {0}


def test_queries_without_silo_still_run_there(seoul_declines: DemoFederation) -> None:
    with fedsql.connect(seoul_declines.target, analyst="per-clinic") as conn:
        cur = conn.cursor()
        cur.execute("SELECT sex, COUNT(*) FROM patients GROUP BY sex")
        assert cur.privacy is not None
        assert len(cur.privacy.answered()) == 4


def test_a_silo_refuses_itself_when_the_hub_skips_the_check(
    seoul_declines: DemoFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hub without the check plans the query and sends it to every clinic.
    monkeypatch.setattr("fedsql.hub.coordinator.check_per_clinic", lambda *args: None)
    before = _executed(seoul_declines)
    with fedsql.connect(seoul_declines.target, analyst="skipped-check") as conn:
        cur = conn.cursor()
        cur.execute(PER_SILO)
        assert cur.privacy is not None
        refused = cur.privacy.refused()
        assert list(refused) == ["seoul"]
        reason = refused["seoul"]
        assert "not allowed by this clinic's policy (queries.allow_per_clinic = false)" in reason
        rows = cur.fetchall()
        flags = cur.privacy.stats.column("__suppressed").to_pylist()
    after = _executed(seoul_declines)
    assert after["seoul"] == before["seoul"]
    assert all(after[s] == before[s] + 1 for s in after if s != "seoul")
    spent = _spent(seoul_declines, "skipped-check")
    assert spent["seoul"] == 0 and all(v > 0 for s, v in spent.items() if s != "seoul")
    # No clinic put anything in Seoul's cells: they are empty and suppressed.
    for (silo, _, count), suppressed in zip(rows, flags, strict=True):
        if silo == "seoul":
            assert suppressed and count is None
        else:
            assert not suppressed and count > 0
