"""Model runs at the hub: the epsilon schedule across Newton rounds and explain of a model."""

from __future__ import annotations

import pytest

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.errors import QueryRejected
from fedsql.hub.model_run import round_epsilons
from fedsql.privacy.accounting import epsilon_to_micro


@pytest.mark.parametrize("total", ["1", "0.3", "2.5", "0.000107"])
@pytest.mark.parametrize("rounds", [1, 2, 3, 7, 10, 50])
def test_round_shares_never_add_up_to_more_than_the_total(total: str, rounds: int) -> None:
    try:
        shares = round_epsilons(total, rounds)
    except QueryRejected:
        assert epsilon_to_micro(total) < 4 * rounds
        return
    assert len(shares) == rounds
    micro = [epsilon_to_micro(s) for s in shares]
    assert sum(micro) <= epsilon_to_micro(total)
    assert min(micro) >= 1
    if rounds >= 3:
        # the last round gets half, the one before a quarter
        assert micro[-1] == epsilon_to_micro(total) // 2
        assert micro[-2] == epsilon_to_micro(total) // 4
        assert micro[-1] >= max(micro[:-1])


def test_too_little_epsilon_for_the_rounds_is_refused_before_anything_runs(
    oracle_federation: DemoFederation,
) -> None:
    with fedsql.connect(oracle_federation.target, analyst="tiny") as conn:
        cur = conn.cursor()
        with pytest.raises(fedsql.ProgrammingError, match="nothing per round"):
            cur.execute(
                "SELECT LOGISTIC_REGRESSION(diabetic, age, max_iter => 50) FROM patients",
                epsilon=0.00002,
            )


def test_explain_shows_the_model_and_its_bounded_measures(
    oracle_federation: DemoFederation,
) -> None:
    with fedsql.connect(oracle_federation.target, analyst="explainer") as conn:
        lines = conn.cursor().explain(
            "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi, l2 => 1) FROM patients "
            "GROUP BY sex"
        )
    text = "\n".join(lines)
    assert "model: logistic regression of diabetic on age, bmi over patients" in text
    assert "one model per sex" in text
    assert "z_age = (x - 55) / 55" in text
    assert "SUM(p*(1-p)*z_age*z_bmi): each row adds at most 0.25, sensitivity 0.25" in text
    assert "at most 10 (one secure sum each" in text
    assert "epsilon 0.03125, " in text and ", 0.25, 0.5 (total at most 1" in text


def test_a_model_stops_as_soon_as_a_clinic_cannot_pay_for_the_rounds_ahead(
    demo_data: object,
) -> None:
    with (
        DemoFederation(policy_overrides={"budget_epsilon": 0.5, "min_group_size": 0}) as fed,
        fedsql.connect(fed.target, analyst="frugal") as conn,
    ):
        cur = conn.cursor()
        with pytest.raises(fedsql.OperationalError, match=r"remaining rounds need 0\.96875"):
            cur.execute("SELECT LOGISTIC_REGRESSION(diabetic, age, bmi) FROM patients", epsilon=1.0)
        # only the first round (1/32 of the model's epsilon) was charged
        cur.execute("SELECT COUNT(*) FROM patients", epsilon=0.4)
        assert cur.privacy is not None
        assert set(cur.privacy.budget_left().values()) == {"0.06875"}
