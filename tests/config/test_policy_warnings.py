"""Valid policies with settings an operator should weigh get a warning that says why."""

from __future__ import annotations

import doctest

import pytest

from fedsql.config import parse_policy, policy_advice, policy_warnings
from fedsql.config.policy_advice import DAYS_PER_YEAR

from .policy_cases import CONTRACT, SHARE, SILO


def warnings_for(privacy: str = "", approval: str = "") -> list[tuple[str, str]]:
    text = SILO + SHARE + "[privacy]\n" + privacy + "\n" + approval
    return policy_warnings(parse_policy(text, CONTRACT))


def test_module_examples_hold() -> None:
    assert doctest.testmod(policy_advice).failed == 0
    assert DAYS_PER_YEAR == 365


def test_a_plain_policy_gets_no_warning() -> None:
    assert warnings_for() == []


def test_renewing_budgets_warn_that_privacy_loss_grows_with_time() -> None:
    ((key, message),) = warnings_for("budget_epsilon = 20.0\nbudget_renewal_days = 30\n")
    assert key == "privacy.budget_renewal_days"
    assert "grows with time, without limit" in message
    assert "up to 260 epsilon per analyst in a year" in message  # 20 x ceil(365 / 30)
    assert "remove budget_renewal_days" in message


def test_the_renewal_warning_counts_exactly_and_names_larger_analyst_budgets() -> None:
    text = (
        "max_epsilon_per_query = 0.1\nbudget_epsilon = 0.1\nbudget_renewal_days = 7\n"
        "[privacy.analysts]\nalice = 0.3\n"
    )
    ((_, message),) = warnings_for(text)
    assert "may spend 0.1 epsilon in every 7 days" in message
    assert "up to 5.3 epsilon per analyst in a year" in message  # 0.1 x 53, no float drift
    assert "analysts with their own budget: up to 15.9" in message


@pytest.mark.parametrize(
    ("privacy", "approval", "key", "words"),
    [
        (
            "max_epsilon_per_query = 5.0\nbudget_epsilon = 2.0\n",
            "",
            "privacy.max_epsilon_per_query",
            "above budget_epsilon 2",
        ),
        ("min_group_size = 0\n", "", "privacy.min_group_size", "suppression is off"),
        ("", '[approval]\nmode = "deny"\n', "approval.mode", "refuses every query"),
    ],
)
def test_other_warnings(privacy: str, approval: str, key: str, words: str) -> None:
    found = dict(warnings_for(privacy, approval))
    assert list(found) == [key]
    assert words in found[key]
