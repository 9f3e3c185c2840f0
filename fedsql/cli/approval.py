"""``fedsql silo pending | approve | deny``: an operator decides the queries held for approval."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Annotated

import typer

from fedsql.audit.records import escape_text
from fedsql.cli.failure import fail
from fedsql.cli.rows import FORMATS, emit_rows, utc_time
from fedsql.errors import ConfigError, Error
from fedsql.privacy.accounting import micro_to_epsilon
from fedsql.silo.approvals import ApprovalQueue, HeldQuery, HeldState

#: States ``fedsql silo pending --all`` may filter on.
STATES: tuple[HeldState, ...] = ("pending", "approved", "denied", "expired", "running")

State = Annotated[Path, typer.Option(help="The silo's state folder (as for `fedsql silo serve`).")]
SiloId = Annotated[str, typer.Option("--id", help="The silo's id, as in its policy.")]


def queue_path(state: Path, silo_id: str) -> Path:
    """Where a silo keeps its approval queue in its state folder."""
    return state / f"{silo_id}.approvals.sqlite"


def _open(state: Path, silo_id: str) -> ApprovalQueue:
    path = queue_path(state, silo_id)
    if not path.is_file():
        raise ConfigError(
            "no approval queue here; a silo creates it in its state folder when it starts",
            file=str(path),
        )
    return ApprovalQueue(path)


def _row(held: HeldQuery) -> dict[str, str]:
    return {
        "qid": held.qid,
        "state": held.state,
        "analyst": escape_text(held.analyst),
        "epsilon": micro_to_epsilon(held.epsilon_micro),
        "held since": utc_time(held.submitted_ms),
        "sql": escape_text(held.sql),
        "params": escape_text(held.params_json),
        "reason": escape_text(held.reason),
    }


def add_commands(group: typer.Typer) -> None:
    """Add ``pending``, ``approve`` and ``deny`` to the ``fedsql silo`` group."""

    @group.command("pending")
    def pending(
        state: State,
        silo_id: SiloId,
        show_all: Annotated[
            bool, typer.Option("--all", help="Every held query, decided ones too.")
        ] = False,
        fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    ) -> None:
        """List the queries waiting for this clinic's approval (SQL shown escaped)."""
        try:
            if fmt not in FORMATS:
                raise ConfigError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
            queue = _open(state, silo_id)
            held = queue.held() if show_all else queue.held("pending")
        except Error as exc:
            fail(exc)
        if not held and fmt == "table":
            typer.echo("no query is waiting for approval")
            return
        emit_rows([_row(h) for h in held], fmt, f"held at {silo_id}")

    @group.command("approve")
    def approve(
        qid: Annotated[str, typer.Argument(help="The held query's id (from `pending`).")],
        state: State,
        silo_id: SiloId,
        operator: Annotated[
            str | None, typer.Option(help="Who approves (default: the login name).")
        ] = None,
    ) -> None:
        """Approve a held query: the silo charges its epsilon and runs it."""
        try:
            held = _open(state, silo_id).approve(
                qid, operator or getpass.getuser(), int(time.time() * 1000)
            )
        except Error as exc:
            fail(exc)
        typer.echo(f"approved {held.qid} ({micro_to_epsilon(held.epsilon_micro)} epsilon)")

    @group.command("deny")
    def deny(
        qid: Annotated[str, typer.Argument(help="The held query's id (from `pending`).")],
        state: State,
        silo_id: SiloId,
        reason: Annotated[str, typer.Option(help="Why; the analyst sees it.")],
        operator: Annotated[
            str | None, typer.Option(help="Who denies (default: the login name).")
        ] = None,
    ) -> None:
        """Deny a held query: it costs nothing and the analyst sees the reason."""
        try:
            held = _open(state, silo_id).deny(
                qid, operator or getpass.getuser(), int(time.time() * 1000), reason
            )
        except Error as exc:
            fail(exc)
        typer.echo(f"denied {held.qid}")
