"""``fedsql policy``: check a clinic's policy file, or print its JSON Schema for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config import load_contract, load_policy, policy_warnings
from fedsql.config.schemas import load_schema
from fedsql.errors import ConfigError, Error

policy_app = typer.Typer(
    help="Check a clinic's policy file against the federation contract.", no_args_is_help=True
)

ContractOption = Annotated[
    Path | None,
    typer.Option(
        "--contract",
        help="The federation contract (TOML). Default: the demo federation's contract.",
        dir_okay=False,
    ),
]


def _problem_lines(error: ConfigError, file: str) -> list[str]:
    """One ``file: key: message`` line per problem of ``error``."""
    where = error.file or file
    return [
        ": ".join(part for part in (where, key, message) if part) for key, message in error.problems
    ]


def _default_contract() -> Path:
    from fedsql.demo.generator import demo_files

    return demo_files() / "contract.toml"


def _summary(policy: SiloPolicy) -> str:
    tables = ", ".join(f"{t} ({len(c)} columns)" for t, c in policy.shared.items())
    renewal = (
        "lifetime budgets"
        if policy.budget_renewal_days is None
        else f"budgets renewed every {policy.budget_renewal_days} days"
    )
    rate = "no rate limit" if policy.rate_limit is None else policy.rate_limit.describe()
    return (
        f"silo {policy.silo_id} shares {tables}; epsilon cap {policy.max_epsilon_per_query:g} "
        f"per query, budget {policy.budget_epsilon:g} per analyst ({renewal}); "
        f"aggregates {', '.join(policy.aggregates)}; {rate}; approval {policy.approval}"
        + ("; per-clinic breakdowns allowed" if policy.allow_per_clinic else "")
    )


@policy_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="The policy file (TOML).", dir_okay=False)],
    contract: ContractOption = None,
) -> None:
    """Report every problem of a policy file at once, each with its key and fix.

    Exit status 0 when the policy is valid (warnings may be printed), 1 when it is not.
    """
    contract_path = contract
    try:
        if contract_path is None:
            contract_path = _default_contract()
        the_contract: Contract = load_contract(contract_path)
    except ConfigError as error:
        for line in _problem_lines(error, str(contract_path)):
            typer.echo(line)
        typer.echo("the contract has problems; fix it before checking policies against it")
        raise typer.Exit(1) from None
    try:
        policy = load_policy(file, the_contract)
    except ConfigError as error:
        for line in _problem_lines(error, str(file)):
            typer.echo(line)
        count = len(error.problems)
        typer.echo(f"{file}: {count} problem{'s' if count != 1 else ''}; the silo will not start")
        raise typer.Exit(1) from None
    except Error as error:  # pragma: no cover - loaders raise ConfigError only
        typer.echo(f"{file}: {error}")
        raise typer.Exit(1) from None
    for key, message in policy_warnings(policy):
        typer.echo(f"{file}: {key}: warning: {message}")
    typer.echo(f"{file}: ok: {_summary(policy)}")


@policy_app.command("schema")
def schema() -> None:
    """Print the policy file's JSON Schema (draft 2020-12), for editors and linters."""
    typer.echo(json.dumps(load_schema("policy"), indent=2))


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(policy_app, name="policy")
