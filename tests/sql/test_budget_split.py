"""The budget split minimises the summed squared relative error of the outputs."""

from __future__ import annotations

import math

import pytest

from fedsql.sql import plan_query
from fedsql.sql.budget_split import HIDDEN_WEIGHT, measure_shares, typical_value

from .testbed import CONTRACT, VISIBLE


def _objective(plan_sql: str, shares: dict[str, float]) -> float:
    """sum_j w_j sigma_j^2 at rho = 1 for the given shares (the quantity the split minimises)."""
    plan = plan_query(plan_sql, None, CONTRACT, VISIBLE)
    total = 0.0
    uses = _uses(plan)
    for m in plan.measures:
        weight = uses.get(m.name, 0) or HIDDEN_WEIGHT
        rho = shares[m.name] / sum(shares.values())
        total += weight / m.typical**2 * m.sensitivity**2 / (2 * rho)
    return total


def _uses(plan: object) -> dict[str, int]:
    uses: dict[str, int] = {}
    for out in plan.outputs:  # type: ignore[attr-defined]
        for name in out.measures:
            uses[name] = uses.get(name, 0) + 1
    return uses


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sex, AVG(bmi) FROM patients GROUP BY sex",
        "SELECT COUNT(*), SUM(age), STDDEV(bmi) FROM patients",
        "SELECT SUM(CASE WHEN smoker THEN 1 ELSE 0 END) / COUNT(*) FROM patients",
    ],
)
def test_the_split_beats_an_equal_split_and_any_perturbation(sql: str) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    chosen = {m.name: m.share for m in plan.measures}
    assert math.isclose(sum(chosen.values()), 1.0)
    best = _objective(sql, chosen)
    assert best <= _objective(sql, {name: 1.0 for name in chosen}) + 1e-9
    for name in chosen:
        for factor in (0.8, 1.25):
            moved = dict(chosen, **{name: chosen[name] * factor})
            assert best < _objective(sql, moved)


def test_avg_puts_more_budget_on_the_sum_than_on_the_count() -> None:
    plan = plan_query("SELECT AVG(age) FROM patients", None, CONTRACT, VISIBLE)
    shares = {m.expression: m.share for m in plan.measures}
    # sum: sqrt(1) / 55 * (2 * 110); count: sqrt(1) / 1 * 2; hidden COUNT(*): sqrt(1/4) * 2
    assert shares["SUM(age)"] / shares["COUNT(age)"] == pytest.approx(2.0)
    assert shares["COUNT(*)"] / shares["COUNT(age)"] == pytest.approx(0.5)


def test_shares_and_typical_values() -> None:
    assert typical_value("sum", -50, 20) == 35.0
    assert measure_shares([], {}) == {}
    plan = plan_query("SELECT COUNT(*) FROM patients", None, CONTRACT, VISIBLE)
    assert [m.share for m in plan.measures] == [1.0]
    assert any("budget split" in line for line in plan.explanation)
