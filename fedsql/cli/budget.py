"""``fedsql budget``: what each analyst has spent at a clinic, and what they have left."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from fedsql.catalog import SiloPolicy
from fedsql.cli.failure import fail
from fedsql.cli.query import HubOption, ProfileOption
from fedsql.cli.rows import FORMATS, emit_rows, utc_time
from fedsql.config import load_contract, load_policy
from fedsql.errors import ConfigError, Error
from fedsql.privacy.accounting import micro_to_epsilon
from fedsql.privacy.ledger import Ledger, LedgerEntry
from fedsql.silo.policy_checks import BudgetStatus, budget_status


def _open_ledger(path: Path) -> Ledger:
    if not path.is_file():
        raise ConfigError(
            "no such ledger file; a silo keeps it in its state folder", file=str(path)
        )
    return Ledger(path)


def _load_policy(policy: Path, contract: Path | None) -> SiloPolicy:
    if contract is None:
        from fedsql.demo.generator import demo_files

        contract = demo_files() / "contract.toml"
    return load_policy(policy, load_contract(contract))


def _status_row(status: BudgetStatus, last_ms: int | None) -> dict[str, str]:
    return {
        "analyst": status.analyst,
        "queries": str(status.queries),
        "spent": micro_to_epsilon(status.spent),
        "budget": micro_to_epsilon(status.budget),
        "left": micro_to_epsilon(status.left),
        "last charge": "" if last_ms is None else utc_time(last_ms),
    }


def _spent_rows(entries: list[LedgerEntry]) -> list[dict[str, str]]:
    by_analyst: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_analyst.setdefault(entry.analyst, []).append(entry)
    return [
        {
            "analyst": analyst,
            "queries": str(len(charges)),
            "spent": micro_to_epsilon(sum(c.micro for c in charges)),
            "last charge": utc_time(charges[-1].at_ms),
        }
        for analyst, charges in sorted(by_analyst.items())
    ]


def budget(
    ledger: Annotated[
        Path | None,
        typer.Option(
            "--ledger",
            help="Operators: a silo's budget ledger (SQLite). Without it, ask the hub (analysts).",
            dir_okay=False,
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="The silo's policy, to show budgets and what is left.", dir_okay=False
        ),
    ] = None,
    contract: Annotated[
        Path | None,
        typer.Option(
            "--contract",
            help="The contract the policy is checked against (default: demo).",
            dir_okay=False,
        ),
    ] = None,
    analyst: Annotated[
        str | None,
        typer.Option(
            "--analyst",
            help="With --ledger: only this analyst, charge by charge. Without: who you are.",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
    hub: HubOption = None,
    profile: ProfileOption = None,
) -> None:
    """Show an analyst what is left at each clinic, or an operator what each analyst spent.

    Without --ledger (analysts): the hub asks every connected clinic for your figures from its
    own ledger; a clinic that does not answer in time is shown without figures. With --ledger
    (operators): reads the clinic's ledger, and with its policy what is left. Amounts are exact
    (ledgers count micro-epsilon); with a renewal period, spent counts the current window.
    """
    if fmt not in FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(FORMATS)}", param_hint="--format")
    if ledger is None:
        _analyst_view(hub, profile, analyst, fmt)
        return
    now_ms = time.time_ns() // 1_000_000
    try:
        book = _open_ledger(ledger)
        the_policy = None if policy is None else _load_policy(policy, contract)
        entries = book.entries(analyst)
    except Error as exc:
        fail(exc)
    if analyst is not None:
        rows = [
            {
                "time (UTC)": utc_time(e.at_ms),
                "qid": e.qid,
                "epsilon": micro_to_epsilon(e.micro),
                "plan": e.note,
            }
            for e in entries
        ]
        emit_rows(rows, fmt, f"charges of {analyst}")
        if the_policy is not None and fmt == "table":
            status = budget_status(the_policy, analyst, book, now_ms)
            window = (
                "lifetime"
                if status.window_days is None
                else f"in the last {status.window_days} days"
            )
            typer.echo(
                f"{analyst}: spent {micro_to_epsilon(status.spent)} of "
                f"{micro_to_epsilon(status.budget)} ({window}); "
                f"{micro_to_epsilon(status.left)} left"
            )
        return
    if the_policy is None:
        emit_rows(_spent_rows(entries), fmt, "spent per analyst (pass --policy for budgets)")
        return
    last: dict[str, int] = {}
    for entry in entries:
        last[entry.analyst] = entry.at_ms
    names = sorted(set(last) | set(the_policy.analyst_budgets))
    rows = [_status_row(budget_status(the_policy, a, book, now_ms), last.get(a)) for a in names]
    days = the_policy.budget_renewal_days
    title = (
        f"budgets at {the_policy.silo_id} (lifetime; default {the_policy.budget_epsilon:g})"
        if days is None
        else f"budgets at {the_policy.silo_id} (per {days} days; spent counts the last {days} "
        f"days; default {the_policy.budget_epsilon:g})"
    )
    emit_rows(rows, fmt, title)


def _analyst_view(hub: str | None, profile: str | None, analyst: str | None, fmt: str) -> None:
    from fedsql.cli import exits
    from fedsql.dbapi import connect

    try:
        with connect(hub, profile=profile, analyst=analyst) as conn:
            reply = conn.budget()
    except Error as exc:
        exits.fail(exc)  # the exit codes of `fedsql query` (5: hub unreachable)
    rows = [
        {
            "clinic": c.silo_id,
            "spent": c.spent if c.reported else "",
            "budget": c.budget if c.reported else "",
            "left": c.left if c.reported else "",
            "queries": str(c.queries) if c.reported else "",
            "answered": "yes" if c.reported else "no answer in time",
        }
        for c in reply.clinics
    ]
    emit_rows(rows, fmt, f"budget of {reply.analyst} in {reply.fed_id}")


def register(app: typer.Typer) -> None:
    """Add this command to ``app``."""
    app.command("budget")(budget)
