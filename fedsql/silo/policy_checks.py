"""What a clinic's policy says about one planned query: caps, aggregates, key space, unit, budget.

Pure checks over the plan, the policy and the contract, run by the silo's guard after it has
re-planned a request and before anything is charged or read. Every refusal is a QueryRejected
(or UnknownObject) whose message names the policy key that decided it, so the analyst knows
what to change and the operator what was enforced. Nothing here reads patient data.

Known limit: the aggregate check reads the plan's measures and outputs. An aggregate written
only in HAVING or ORDER BY is seen when it needs a measure of its own; one that reuses the
measure of an allowed output (``HAVING SUM(x) > 0`` beside ``AVG(x)``) is not told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config.policy_watch import PolicySource
from fedsql.errors import ConfigError, QueryRejected, UnknownObject
from fedsql.privacy.accounting import epsilon_to_micro, micro_to_epsilon
from fedsql.privacy.ledger import Ledger
from fedsql.sql.plan import FederatedPlan
from fedsql.transport.messages import BudgetQuery, BudgetReport

__all__ = [
    "BudgetStatus",
    "budget_limit_micro",
    "budget_status",
    "check_policy",
    "policy_for_query",
]

#: The aggregate function a measure of each kind computes (VAR and STDDEV are computed from
#: sums of squares, sums and counts, and quantiles from histogram counts, so a clinic allowing
#: SUM and COUNT releases what they need; a distinct count of the unit is a COUNT and is also
#: governed by ``unit_uses``).
_MEASURE_FUNCTION = {
    "count": "COUNT",
    "sum": "SUM",
    "sumsq": "SUM",
    "distinct": "COUNT",
    "bin": "COUNT",
}
#: The aggregate function each output kind is written with (``expr`` uses its measures').
_OUTPUT_FUNCTION = {"count": "COUNT", "sum": "SUM", "avg": "AVG"}
_DAY_MS = 86_400_000


def policy_for_query(source: PolicySource) -> SiloPolicy:
    """The policy to apply to the next query, or a refusal while the policy file is broken.

    The analyst sees only that the clinic's policy is invalid; the operator finds the details
    in ``source.error`` (and with ``fedsql policy check``).

    Args:
        source: The silo's policy file.

    Returns:
        The current policy.

    Raises:
        QueryRejected: The policy file is missing or invalid now.
    """
    try:
        return source.current()
    except ConfigError:
        raise QueryRejected(
            "this clinic's policy file is invalid, so it refuses every query until its operator "
            "fixes it (run fedsql policy check on the file)"
        ) from None


def check_policy(
    plan: FederatedPlan, policy: SiloPolicy, epsilon_micro: int, contract: Contract
) -> None:
    """Refuse a planned query that this clinic's policy does not allow.

    Checks, in order: the per-query epsilon cap, per-clinic breakdowns (the ``silo`` key),
    that every table and column is shared, the key-space size, the aggregate functions and
    the uses of the privacy unit column.

    Args:
        plan: The silo's own plan of the request.
        policy: The policy in force.
        epsilon_micro: The query's epsilon, in micro-epsilon.
        contract: The federation contract (it names each table's unit column).

    Raises:
        QueryRejected: The query breaks a rule of the policy; the message names the key.
        UnknownObject: It reads a table or column the clinic does not share.
    """
    _check_epsilon(policy, epsilon_micro)
    _check_per_clinic(plan, policy, contract)
    _check_shared(plan, policy)
    _check_cells(plan, policy)
    _check_aggregates(plan, policy)
    _check_unit_uses(plan, policy, contract)


def _check_epsilon(policy: SiloPolicy, epsilon_micro: int) -> None:
    cap = epsilon_to_micro(repr(float(policy.max_epsilon_per_query)))
    if epsilon_micro > cap:
        raise QueryRejected(
            f"epsilon {micro_to_epsilon(epsilon_micro)} is above this clinic's per-query cap "
            f"of {micro_to_epsilon(cap)} (privacy.max_epsilon_per_query); ask for at most that"
        )


def _check_per_clinic(plan: FederatedPlan, policy: SiloPolicy, contract: Contract) -> None:
    if not plan.per_silo:
        return
    if not policy.allow_per_clinic:
        raise QueryRejected(
            "per-clinic breakdowns (GROUP BY silo) are not allowed by this clinic's policy "
            "(queries.allow_per_clinic = false); group by other keys, or ask the clinic"
        )
    if policy.silo_id not in contract.silos:
        raise QueryRejected(
            f"this clinic's id {policy.silo_id} is not in the contract's silos list, so it "
            "has no per-clinic cell; the federation must add it before grouping by silo"
        )


def _check_shared(plan: FederatedPlan, policy: SiloPolicy) -> None:
    for table in plan.tables:
        if not policy.shares(table):
            raise UnknownObject(f"table {table} is not shared by this clinic")
    for table, column in plan.columns:
        if not policy.shares(table, column):
            raise UnknownObject(f"column {table}.{column} is not shared by this clinic")


def _check_cells(plan: FederatedPlan, policy: SiloPolicy) -> None:
    if policy.max_cells is not None and plan.cells > policy.max_cells:
        raise QueryRejected(
            f"the query's key space has {plan.cells} cells, more than this clinic's limit of "
            f"{policy.max_cells} (queries.max_cells); group by fewer or coarser keys"
        )


def _aggregates_used(plan: FederatedPlan) -> dict[str, str]:
    """Aggregate function -> the first output or measure that uses it."""
    used: dict[str, str] = {}
    kinds = {m.name: m.kind for m in plan.measures}
    read: set[str] = set()
    for out in plan.outputs:
        if out.kind == "key":
            continue
        read.update(out.measures)
        if out.kind in _OUTPUT_FUNCTION:
            used.setdefault(_OUTPUT_FUNCTION[out.kind], f"output {out.name}")
        else:
            for name in out.measures:
                used.setdefault(_MEASURE_FUNCTION[kinds[name]], f"output {out.name}")
    for measure in plan.measures:
        # A measure no output reads comes from HAVING or ORDER BY, unless the planner added it
        # only to suppress small cells.
        if measure.name not in read and not measure.hidden:
            used.setdefault(_MEASURE_FUNCTION[measure.kind], measure.expression)
    return used


def _check_aggregates(plan: FederatedPlan, policy: SiloPolicy) -> None:
    allowed = set(policy.aggregates)
    for function, where in _aggregates_used(plan).items():
        if function not in allowed:
            raise QueryRejected(
                f"{function} ({where}) is not allowed at this clinic, which allows "
                f"{', '.join(policy.aggregates)} (queries.aggregates)"
            )


def _check_unit_uses(plan: FederatedPlan, policy: SiloPolicy, contract: Contract) -> None:
    uses = set(policy.unit_uses)
    if (len(plan.tables) > 1 or plan.joins) and "join" not in uses:
        raise QueryRejected(
            "this clinic does not allow joins on the privacy unit (queries.unit_uses); query "
            "one table at a time"
        )
    if "count_distinct" not in uses and any(
        "DISTINCT" in m.expression.upper() for m in plan.measures
    ):
        raise QueryRejected(
            "this clinic does not allow COUNT(DISTINCT) of the privacy unit "
            "(queries.unit_uses); count rows with COUNT(*)"
        )
    if "filter" not in uses:
        units = {t.name: t.unit for t in contract.tables}
        for table, column in plan.columns:
            if units.get(table) == column:
                raise QueryRejected(
                    f"this clinic does not allow filtering on the privacy unit column "
                    f"{table}.{column} (queries.unit_uses); filter on other columns"
                )


@dataclass(frozen=True)
class BudgetStatus:
    """An analyst's budget at a clinic, in micro-epsilon.

    Attributes:
        analyst: Who.
        budget: The budget (lifetime, or per window of ``window_days``).
        spent: Spent in the lifetime, or in the window ending now.
        left: ``max(0, budget - spent)``.
        window_days: The renewal period, or None for a lifetime budget.
        queries: Charges counted in ``spent``.
    """

    analyst: str
    budget: int
    spent: int
    left: int
    window_days: int | None
    queries: int


def _budget_micro(policy: SiloPolicy, analyst: str) -> int:
    return epsilon_to_micro(repr(float(policy.budget_for(analyst))))


def budget_limit_micro(policy: SiloPolicy, analyst: str, ledger: Ledger, now_ms: int) -> int:
    """The ``budget_micro`` to pass to ``Ledger.charge`` and ``Ledger.remaining`` now.

    The ledger compares an analyst's lifetime spend with the budget it is given. A lifetime
    budget is passed as is. With ``budget_renewal_days`` the analyst may spend the budget in
    any window of that many days, so the charges made before the window started are added:
    ``lifetime spend + charge <= budget + spend before the window`` is exactly ``spend in the
    window + charge <= budget``. Charges before the window never change (new ones are dated
    now), so the check stays atomic inside the ledger's transaction.

    Args:
        policy: The policy in force.
        analyst: Who is charged.
        ledger: The silo's ledger.
        now_ms: Now, Unix milliseconds.

    Returns:
        The budget to charge against, in micro-epsilon.
    """
    budget = _budget_micro(policy, analyst)
    if policy.budget_renewal_days is None:
        return budget
    start = now_ms - policy.budget_renewal_days * _DAY_MS
    return budget + sum(e.micro for e in ledger.entries(analyst) if e.at_ms <= start)


def budget_status(policy: SiloPolicy, analyst: str, ledger: Ledger, now_ms: int) -> BudgetStatus:
    """What ``analyst`` has spent and has left at this clinic now (exact, in micro-epsilon).

    Args:
        policy: The policy in force.
        analyst: Who.
        ledger: The silo's ledger.
        now_ms: Now, Unix milliseconds.

    Returns:
        The status; with a renewal period, spend counts only the window ending now.
    """
    entries = ledger.entries(analyst)
    days = policy.budget_renewal_days
    if days is not None:
        start = now_ms - days * _DAY_MS
        entries = [e for e in entries if e.at_ms > start]
    budget = _budget_micro(policy, analyst)
    spent = sum(e.micro for e in entries)
    return BudgetStatus(
        analyst=analyst,
        budget=budget,
        spent=spent,
        left=max(0, budget - spent),
        window_days=days,
        queries=len(entries),
    )


def budget_report(
    query: BudgetQuery, silo_id: str, policy: SiloPolicy, ledger: Ledger, now_ms: int
) -> BudgetReport:
    """This clinic's answer to a budget inquiry: the analyst's figures from its own ledger."""
    status = budget_status(policy, query.analyst, ledger, now_ms)
    return BudgetReport(
        request_id=query.request_id,
        silo_id=silo_id,
        analyst=query.analyst,
        spent=micro_to_epsilon(status.spent),
        budget=micro_to_epsilon(status.budget),
        left=micro_to_epsilon(status.left),
        queries=status.queries,
    )
