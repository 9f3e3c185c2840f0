"""End to end: a federation in which one clinic is served from PostgreSQL or MariaDB answers, with
noise off, exactly what DuckDB over the pooled demo data answers (the oracle)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

import fedsql
from fedsql.catalog import Contract
from fedsql.demo.federation import DemoFederation
from fedsql.silo.source_engines import PushdownEngine, SnapshotEngine
from tests.conftest import TEST_BUDGETS
from tests.connectors.conftest import CLINIC, PUSHDOWN_REFUSED, ServedClinic
from tests.demo.test_federation_oracle import CASES, _close, _sort_key, federated_rows
from tests.demo.test_federation_per_clinic import CASES as PER_CLINIC_CASES
from tests.demo.test_federation_per_clinic import oracle_sql, same_rows

MODES = [("postgres", "pushdown"), ("mysql", "pushdown"), ("postgres", "snapshot")]


@pytest.fixture(scope="module", params=MODES, ids=[f"{c} {m}" for c, m in MODES])
def mixed_federation(
    request: pytest.FixtureRequest,
    contract: Contract,
    postgres_clinic: ServedClinic,
    mariadb_clinic: ServedClinic,
) -> Iterator[DemoFederation]:
    connector, mode = request.param
    served = postgres_clinic if connector == "postgres" else mariadb_clinic
    policy = served.policy(contract, mode)
    with DemoFederation(
        noise=False,
        testing=True,
        silo_overrides={CLINIC: {"source": policy.source, "data": policy.data}},
        policy_overrides={**TEST_BUDGETS, "min_group_size": 1},
    ) as fed:
        engine = fed.silos[CLINIC].engine
        assert isinstance(engine, PushdownEngine if mode == "pushdown" else SnapshotEngine)
        yield fed


@pytest.fixture
def cursor(mixed_federation: DemoFederation) -> Iterator[fedsql.Cursor]:
    with fedsql.connect(mixed_federation.target, analyst="tester") as conn:
        yield conn.cursor()


@pytest.mark.parametrize(("sql", "params", "oracle_sql"), CASES, ids=[c[0][:60] for c in CASES])
def test_noise_off_answer_equals_pooled_duckdb(
    mixed_federation: DemoFederation,
    cursor: fedsql.Cursor,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    params: Any,
    oracle_sql: str | None,
) -> None:
    executed_before = mixed_federation.silos[CLINIC].stats.executed
    got = federated_rows(cursor, sql, params)
    assert cursor.privacy is not None
    pushdown = isinstance(mixed_federation.silos[CLINIC].engine, PushdownEngine)
    if pushdown and sql in PUSHDOWN_REFUSED:
        # The clinic refuses before spending anything; the others still answer.
        reason = cursor.privacy.refused()[CLINIC]
        assert reason.startswith("this clinic runs queries in its own database"), reason
        assert mixed_federation.silos[CLINIC].stats.executed == executed_before
        return
    assert CLINIC in cursor.privacy.answered()
    want = pooled.execute(oracle_sql or sql, params).fetchall()
    if "ORDER BY" not in sql.upper():
        got, want = sorted(got, key=_sort_key), sorted(want, key=_sort_key)
    assert len(got) == len(want), (got[:5], want[:5])
    for g, w in zip(got, want, strict=True):
        assert all(_close(a, b) for a, b in zip(g, w, strict=True)), (g, w)


@pytest.mark.parametrize("sql", PER_CLINIC_CASES[:2] + PER_CLINIC_CASES[4:5])
def test_per_clinic_answer_equals_duckdb_per_clinic(
    mixed_federation: DemoFederation,
    cursor: fedsql.Cursor,
    labelled: duckdb.DuckDBPyConnection,
    sql: str,
) -> None:
    # The served clinic binds its own id in its source's SQL dialect too.
    got = sorted(federated_rows(cursor, sql, None), key=repr)
    assert cursor.privacy is not None and CLINIC in cursor.privacy.answered()
    want = sorted(labelled.execute(oracle_sql(sql)).fetchall(), key=repr)
    assert same_rows(got, want), (got, want)


def test_pushdown_refuses_what_it_cannot_guard_before_spending_budget_snapshots_answer(
    mixed_federation: DemoFederation, cursor: fedsql.Cursor
) -> None:
    agent = mixed_federation.silos[CLINIC]
    admitted, executed = agent.stats.admitted, agent.stats.executed
    cursor.execute("SELECT COUNT(*) FROM patients WHERE age + 1 > 40")
    assert cursor.privacy is not None
    if isinstance(agent.engine, PushdownEngine):
        assert "cannot guard" in cursor.privacy.refused()[CLINIC]
        assert (agent.stats.admitted, agent.stats.executed) == (admitted, executed)
    else:  # a snapshot runs in the silo's own DuckDB, which guards every row
        assert CLINIC in cursor.privacy.answered()
        assert agent.stats.executed == executed + 1


MODEL_QUERIES = [
    "SELECT LINEAR_REGRESSION(bmi, age) AS m FROM patients",
    "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 6) AS m FROM patients "
    "GROUP BY sex",
]


@pytest.mark.parametrize("sql", MODEL_QUERIES, ids=["linear", "logistic"])
def test_a_model_equals_the_all_duckdb_federations_or_the_pushdown_clinic_refuses(
    mixed_federation: DemoFederation, cursor: fedsql.Cursor, sql: str
) -> None:
    served = cursor.execute(sql).fetchall()
    assert cursor.privacy is not None
    pushdown = isinstance(mixed_federation.silos[CLINIC].engine, PushdownEngine)
    # A clinic that runs queries in its own database cannot run model SQL yet: it refuses
    # before reading a row, and the others answer.
    assert (CLINIC in cursor.privacy.refused()) is pushdown
    if pushdown:
        assert "runs queries in its own database" in cursor.privacy.refused()[CLINIC]
    silos = tuple(s for s in mixed_federation.silos if not (pushdown and s == CLINIC))
    with (
        DemoFederation(
            noise=False, testing=True, policy_overrides=TEST_BUDGETS, silos=silos
        ) as plain,
        fedsql.connect(plain.target, analyst="tester") as conn,
    ):
        reference = conn.cursor().execute(sql).fetchall()
    assert len(served) == len(reference)
    for got, want in zip(served, reference, strict=True):
        model, expected = got[-1], want[-1]
        assert got[:-1] == want[:-1]
        for name, value in expected["coefficients"].items():
            assert model["coefficients"][name] == pytest.approx(value, rel=1e-9, abs=1e-12)
