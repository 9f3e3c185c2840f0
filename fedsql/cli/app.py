"""The root ``fedsql`` command and its entry point."""

from __future__ import annotations

import logging

import typer

from fedsql.cli import analyst, audit, authority, budget, ca, hub, policy, query, silo, status

app = typer.Typer(
    name="fedsql",
    help="Differentially private SQL over clinics' data that never leaves them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
query.register(app)
authority.register(app)
hub.register(app)
silo.register(app)
status.register(app)
policy.register(app)
audit.register(app)
budget.register(app)
ca.register(app)
analyst.register(app)


def main() -> None:
    """Run the CLI."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":
    main()
