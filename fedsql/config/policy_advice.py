"""Advice on valid silo policies: settings that are allowed but that an operator should weigh."""

from __future__ import annotations

import math
from decimal import Decimal

from fedsql.catalog import SiloPolicy

__all__ = ["DAYS_PER_YEAR", "policy_warnings"]

#: The span over which ``policy check`` states how far renewing budgets can add up.
DAYS_PER_YEAR = 365


def _epsilon_text(value: float, times: int = 1) -> str:
    """``value * times`` as an exact decimal (epsilon values have at most six decimals).

    >>> _epsilon_text(0.1, 3), _epsilon_text(20.0, 13), _epsilon_text(1e-6)
    ('0.3', '260', '0.000001')
    """
    exact = Decimal(repr(value)) * times
    text = format(exact, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def policy_warnings(policy: SiloPolicy) -> list[tuple[str, str]]:
    """Settings of a valid policy that deserve a second look, as ``(key, message)`` pairs.

    A renewing budget is the main one: with ``budget_renewal_days`` set, an analyst's total
    privacy loss at the clinic is no longer bounded by the budget but grows with time.

    Args:
        policy: A policy that loaded without problems.

    Returns:
        The warnings in file order; empty when there is nothing to say.

    >>> from fedsql.catalog import SiloPolicy
    >>> policy_warnings(SiloPolicy("a", {"t": ("u",)}))
    []
    >>> [key for key, _ in policy_warnings(SiloPolicy("a", {}, budget_renewal_days=30))]
    ['privacy.budget_renewal_days']
    """
    out: list[tuple[str, str]] = []
    if policy.max_epsilon_per_query > policy.budget_epsilon:
        out.append(
            (
                "privacy.max_epsilon_per_query",
                f"the per-query cap {_epsilon_text(policy.max_epsilon_per_query)} is above "
                f"budget_epsilon {_epsilon_text(policy.budget_epsilon)}, so analysts with the "
                "default budget can never spend a query at the cap; lower the cap to at most "
                "the budget",
            )
        )
    if policy.budget_renewal_days is not None:
        days = policy.budget_renewal_days
        periods = math.ceil(DAYS_PER_YEAR / days)
        largest = max([policy.budget_epsilon, *policy.analyst_budgets.values()])
        named = (
            f" (analysts with their own budget: up to {_epsilon_text(largest, periods)})"
            if largest > policy.budget_epsilon
            else ""
        )
        out.append(
            (
                "privacy.budget_renewal_days",
                f"budgets renew: an analyst may spend {_epsilon_text(policy.budget_epsilon)} "
                f"epsilon in every {days} days, so the total privacy loss of the patients at "
                f"this clinic grows with time, without limit: up to "
                f"{_epsilon_text(policy.budget_epsilon, periods)} epsilon per analyst in a year"
                f"{named}; remove budget_renewal_days to make budgets lifetime budgets",
            )
        )
    if policy.min_group_size == 0:
        out.append(
            (
                "privacy.min_group_size",
                "suppression is off: cells with very few patients are released (with noise); "
                "set min_group_size = 10 to release them as NULL",
            )
        )
    if policy.approval == "deny":
        out.append(
            (
                "approval.mode",
                'the clinic refuses every query while mode = "deny"; set mode = "auto" or '
                '"manual" to answer queries again',
            )
        )
    return out
