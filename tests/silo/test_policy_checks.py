"""A clinic's policy decides which planned queries it answers, and how budgets renew."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from pathlib import Path

import pytest

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config import load_contract, load_policy
from fedsql.demo.generator import demo_files
from fedsql.errors import BudgetExhausted, QueryRejected, UnknownObject
from fedsql.privacy.ledger import Ledger
from fedsql.silo.policy_checks import budget_limit_micro, budget_status, check_policy
from fedsql.sql import plan_query
from fedsql.sql.plan import FederatedPlan

DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@pytest.fixture(scope="module")
def policy(contract: Contract) -> SiloPolicy:
    return load_policy(demo_files() / "mumbai.toml", contract)


def plan(sql: str, contract: Contract, policy: SiloPolicy) -> FederatedPlan:
    return plan_query(sql, None, contract, policy.shared)


def refusal(sql: str, contract: Contract, policy: SiloPolicy, **changes: object) -> str:
    """The message with which ``policy`` changed by ``changes`` refuses ``sql``."""
    changed = dataclasses.replace(policy, **changes)  # type: ignore[arg-type]
    with pytest.raises(QueryRejected) as caught:
        check_policy(plan(sql, contract, policy), changed, 500_000, contract)
    return str(caught.value)


def admits(sql: str, contract: Contract, policy: SiloPolicy, **changes: object) -> bool:
    changed = dataclasses.replace(policy, **changes)  # type: ignore[arg-type]
    check_policy(plan(sql, contract, policy), changed, 500_000, contract)
    return True


QUERIES = [
    "SELECT COUNT(*) FROM patients",
    "SELECT sex, AVG(bmi) FROM patients WHERE age >= 40 GROUP BY sex",
    "SELECT age, COUNT(*) FROM patients WHERE diabetic GROUP BY age",
    "SELECT SUM(cost), AVG(cost) FROM visits WHERE visit_date >= DATE '2023-01-01'",
    "SELECT test, AVG(value), COUNT(*) FROM labs GROUP BY test HAVING COUNT(*) > 10",
    "SELECT COUNT(*) FROM patients WHERE patient_id > 1000",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_the_default_policy_admits_what_the_planner_accepts(
    sql: str, contract: Contract, policy: SiloPolicy
) -> None:
    assert admits(sql, contract, policy)


def test_the_per_query_cap_is_enforced_exactly(contract: Contract, policy: SiloPolicy) -> None:
    capped = dataclasses.replace(policy, max_epsilon_per_query=0.3)
    planned = plan(QUERIES[0], contract, policy)
    check_policy(planned, capped, 300_000, contract)
    with pytest.raises(QueryRejected, match=r"0\.300001 is above .* cap of 0\.3 \(privacy"):
        check_policy(planned, capped, 300_001, contract)


def test_the_key_space_limit(contract: Contract, policy: SiloPolicy) -> None:
    by_age = "SELECT age, COUNT(*) FROM patients GROUP BY age"
    assert plan(by_age, contract, policy).cells == 111
    assert admits(by_age, contract, policy, max_cells=111)
    message = refusal(by_age, contract, policy, max_cells=110)
    assert "111 cells, more than this clinic's limit of 110 (queries.max_cells)" in message


@pytest.mark.parametrize(
    ("sql", "allowed", "refused"),
    [
        ("SELECT AVG(bmi) FROM patients", ("COUNT",), "AVG (output avg(bmi))"),
        ("SELECT SUM(bmi) FROM patients", ("COUNT", "AVG"), "SUM (output sum(bmi))"),
        ("SELECT COUNT(*) FROM patients", ("SUM", "AVG"), "COUNT (output count_star())"),
        ("SELECT SUM(bmi) / COUNT(*) AS r FROM patients", ("COUNT", "AVG"), "SUM (output r)"),
        ("SELECT AVG(bmi) FROM patients HAVING COUNT(*) > 3", ("AVG",), "COUNT (COUNT(*))"),
        (
            "SELECT sex, AVG(bmi) FROM patients GROUP BY sex ORDER BY COUNT(*)",
            ("AVG",),
            "COUNT (COUNT(*))",
        ),
    ],
)
def test_aggregates_outside_the_allowed_list_are_refused(
    sql: str, allowed: tuple[str, ...], refused: str, contract: Contract, policy: SiloPolicy
) -> None:
    message = refusal(sql, contract, policy, aggregates=allowed)
    assert message.startswith(f"{refused} is not allowed at this clinic")
    assert "(queries.aggregates)" in message


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT AVG(bmi) FROM patients", ("AVG",)),  # its own SUM and COUNT are internal
        ("SELECT SUM(bmi) FROM patients", ("SUM",)),  # the suppression count is internal
        ("SELECT sex, COUNT(*) FROM patients GROUP BY sex", ("COUNT",)),
    ],
)
def test_internal_measures_need_no_permission(
    sql: str, allowed: tuple[str, ...], contract: Contract, policy: SiloPolicy
) -> None:
    assert admits(sql, contract, policy, aggregates=allowed)


def test_filtering_on_the_unit_needs_its_permission(contract: Contract, policy: SiloPolicy) -> None:
    sql = "SELECT COUNT(*) FROM patients WHERE patient_id > 1000"
    message = refusal(sql, contract, policy, unit_uses=("join",))
    assert "filtering on the privacy unit column patients.patient_id" in message
    assert admits(sql, contract, policy, unit_uses=("filter",))
    assert admits("SELECT COUNT(*) FROM patients WHERE age > 3", contract, policy, unit_uses=())


def test_joins_and_distinct_counts_need_their_permissions(
    contract: Contract, policy: SiloPolicy
) -> None:
    base = plan("SELECT COUNT(*) FROM patients", contract, policy)
    joined = dataclasses.replace(base, tables=("patients", "visits"))
    distinct = dataclasses.replace(
        base,
        measures=(dataclasses.replace(base.measures[0], expression="COUNT(DISTINCT patient_id)"),),
    )
    for planned, use, words in (
        (joined, "join", "joins"),
        (distinct, "count_distinct", "DISTINCT"),
    ):
        others = tuple(u for u in ("filter", "join", "count_distinct") if u != use)
        with pytest.raises(QueryRejected, match=words):
            check_policy(planned, dataclasses.replace(policy, unit_uses=others), 1, contract)
        check_policy(planned, dataclasses.replace(policy, unit_uses=(use,)), 1, contract)


def test_columns_the_clinic_does_not_share_are_unknown(
    contract: Contract, policy: SiloPolicy
) -> None:
    planned = plan("SELECT AVG(bmi) FROM patients", contract, policy)
    narrower = dataclasses.replace(
        policy, shared={**policy.shared, "patients": ("patient_id", "age", "sex")}
    )
    with pytest.raises(UnknownObject, match=r"patients\.bmi is not shared"):
        check_policy(planned, narrower, 1, contract)
    without = dataclasses.replace(policy, shared={"visits": policy.shared["visits"]})
    with pytest.raises(UnknownObject, match="table patients is not shared"):
        check_policy(planned, without, 1, contract)


def backdate(ledger: Ledger, qid: str, at_ms: int) -> None:
    """Move a committed charge back in time (as if it had been made then)."""
    with sqlite3.connect(ledger.path) as conn:
        conn.execute("UPDATE charges SET at_ms = ? WHERE qid = ?", (at_ms, qid))


def test_a_lifetime_budget_is_charged_exactly(tmp_path: Path, policy: SiloPolicy) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    lifetime = dataclasses.replace(policy, budget_epsilon=0.3, budget_renewal_days=None)
    now = time.time_ns() // 1_000_000
    for i in range(3):  # 0.1 + 0.1 + 0.1 is exactly the budget: no float drift
        limit = budget_limit_micro(lifetime, "alice", ledger, now)
        assert limit == 300_000
        ledger.charge("alice", f"q{i}", 100_000, limit)
    with pytest.raises(BudgetExhausted):
        ledger.charge("alice", "q3", 1, budget_limit_micro(lifetime, "alice", ledger, now))
    status = budget_status(lifetime, "alice", ledger, now)
    assert (status.budget, status.spent, status.left, status.queries) == (300_000, 300_000, 0, 3)
    assert status.window_days is None


def test_a_renewing_budget_counts_only_the_window(tmp_path: Path, policy: SiloPolicy) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    renewing = dataclasses.replace(
        policy, budget_epsilon=1.0, budget_renewal_days=30, analyst_budgets={}
    )
    now = time.time_ns() // 1_000_000
    ledger.charge("alice", "old", 800_000, 1_000_000)
    backdate(ledger, "old", now - 40 * DAY_MS)
    ledger.charge("alice", "edge", 100_000, 10_000_000)
    backdate(ledger, "edge", now - 30 * DAY_MS)  # exactly 30 days ago: outside the window
    ledger.charge("alice", "recent", 500_000, 10_000_000)
    backdate(ledger, "recent", now - 1 * DAY_MS)

    limit = budget_limit_micro(renewing, "alice", ledger, now)
    assert limit == 1_000_000 + 800_000 + 100_000
    status = budget_status(renewing, "alice", ledger, now)
    assert (status.spent, status.left, status.queries, status.window_days) == (
        500_000,
        500_000,
        1,
        30,
    )
    assert ledger.remaining("alice", limit) == 500_000
    ledger.charge("alice", "now", 500_000, limit)  # exactly what the window has left
    with pytest.raises(BudgetExhausted):
        ledger.charge("alice", "over", 1, budget_limit_micro(renewing, "alice", ledger, now))
    # 29 days on, the charge of a day ago has left the window again.
    later = now + 30 * DAY_MS - DAY_MS + 1
    assert budget_status(renewing, "alice", ledger, later).left == 500_000


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT AVG(l.value) FROM labs l JOIN patients p ON l.patient_id = p.patient_id "
        "WHERE p.diabetic",
        # one table, but a semi-join of visits with itself on the unit
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM visits w "
        "WHERE w.patient_id = v.patient_id AND w.cost > 1000)",
        "WITH c AS (SELECT patient_id FROM patients WHERE diabetic) "
        "SELECT COUNT(*) FROM visits WHERE patient_id IN (SELECT patient_id FROM c)",
    ],
)
def test_real_joins_need_the_join_permission_and_not_the_filter_one(
    sql: str, contract: Contract, policy: SiloPolicy
) -> None:
    message = refusal(sql, contract, policy, unit_uses=("filter", "count_distinct"))
    assert "does not allow joins on the privacy unit (queries.unit_uses)" in message
    # join keys are not filters on the unit
    assert admits(sql, contract, policy, unit_uses=("join",))


def test_filtering_joined_rows_on_the_unit_needs_the_filter_permission(
    contract: Contract, policy: SiloPolicy
) -> None:
    sql = (
        "SELECT COUNT(*) FROM visits v JOIN patients p ON v.patient_id = p.patient_id "
        "WHERE p.patient_id > 1000"
    )
    message = refusal(sql, contract, policy, unit_uses=("join",))
    assert "filtering on the privacy unit column patients.patient_id" in message
    assert admits(sql, contract, policy, unit_uses=("join", "filter"))


def test_every_table_and_column_read_through_subqueries_is_checked(
    contract: Contract, policy: SiloPolicy
) -> None:
    sql = (
        "WITH ldl AS (SELECT patient_id FROM labs WHERE test = 'LDL' AND value > 160) "
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM ldl "
        "WHERE ldl.patient_id = v.patient_id)"
    )
    planned = plan(sql, contract, policy)
    assert planned.tables == ("labs", "visits")
    assert planned.columns == (("labs", "test"), ("labs", "value"))
    narrower = dataclasses.replace(
        policy, shared={**policy.shared, "labs": ("patient_id", "test", "taken_at")}
    )
    with pytest.raises(UnknownObject, match=r"labs\.value is not shared"):
        check_policy(planned, narrower, 1, contract)


PER_CLINIC = "SELECT silo, COUNT(*) FROM patients GROUP BY silo"


def test_per_clinic_breakdowns_need_the_clinics_own_consent(
    contract: Contract, policy: SiloPolicy
) -> None:
    assert policy.allow_per_clinic  # the demo clinics allow them
    assert admits(PER_CLINIC, contract, policy)
    message = refusal(PER_CLINIC, contract, policy, allow_per_clinic=False)
    assert "per-clinic breakdowns (GROUP BY silo) are not allowed by this clinic's policy" in (
        message
    )
    assert "queries.allow_per_clinic = false" in message
    # Only queries grouped by silo need it.
    assert admits("SELECT sex, COUNT(*) FROM patients GROUP BY sex", contract, policy,
                  allow_per_clinic=False)  # fmt: skip


def test_a_clinic_missing_from_the_silos_list_refuses_per_clinic_breakdowns(
    contract: Contract, policy: SiloPolicy
) -> None:
    message = refusal(PER_CLINIC, contract, policy, silo_id="lagos")
    assert "this clinic's id lagos is not in the contract's silos list" in message
