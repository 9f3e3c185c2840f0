"""``fedsql audit``: show and verify the audit log of a silo or the hub."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fedsql.audit import LogReport, read_log_lines, verify_log
from fedsql.audit.records import AuditEntry, format_micro
from fedsql.errors import Error, IntegrityError
from fedsql.secagg.identity import verify_signature

audit_app = typer.Typer(
    help="Show and verify a tamper-evident audit log (a silo's or the hub's).",
    no_args_is_help=True,
)

LogOption = Annotated[Path, typer.Option("--log", help="The audit log file.", dir_okay=False)]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The log owner's Ed25519 public key: 64 hex digits, or a file holding them. "
        "Without it the key recorded in the log is trusted.",
    ),
]
HeadOption = Annotated[
    Path | None,
    typer.Option(
        "--head",
        help="A copy of a signed head kept elsewhere (default: the log's own .head file).",
        dir_okay=False,
    ),
]

#: How much of the reason and SQL ``audit show`` prints in a table cell (jsonl prints all).
_DETAIL_CHARS = 240


def _public_key(value: str | None) -> bytes | None:
    """The key given to ``--key``: hex text, or a file holding hex text (or 32 raw bytes)."""
    if value is None:
        return None
    text = value.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    path = Path(value).expanduser()
    try:
        data = path.read_bytes()
    except OSError:
        raise typer.BadParameter(
            "give 64 hex digits or a file holding them", param_hint="--key"
        ) from None
    if len(data) == 32:
        return data
    try:
        key = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != 32:
        raise typer.BadParameter(f"{path} does not hold a 32-byte public key", param_hint="--key")
    return key


def _time(at_ms: int) -> str:
    """Unix milliseconds as UTC time to the second.

    >>> _time(0)
    '1970-01-01 00:00:00Z'
    """
    moment = dt.datetime.fromtimestamp(at_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _verify(log: Path, key: bytes | None, head: Path | None) -> tuple[LogReport | None, str]:
    """Verify the log; returns the report, or None and why it failed."""
    try:
        report, _ = verify_log(log, verify_signature, key=key, head_path=head)
    except IntegrityError as exc:
        return None, str(exc)
    return report, ""


def _report_lines(report: LogReport) -> list[str]:
    head = report.head
    lines = [
        f"verified: {report.entries} entries and {report.heads} signed heads of log "
        f"{report.log_id}; the last head covers {head.size} entries, root {head.root.hex()}, "
        f"signed {_time(head.at_ms)} by key {report.key.hex()}"
        + (" (the pinned key)" if report.key_pinned else "")
    ]
    if not report.key_pinned:
        lines.append(
            "warning: the signing key was read from the log itself; pass --key with the "
            "owner's public key to rule out a log rewritten and signed by someone else"
        )
    if report.torn:
        lines.append(
            f"warning: the log ends in a partial line of {report.torn} bytes: a write in "
            "progress, or one cut short by a crash (removed when the log is next opened)"
        )
    if report.unsigned:
        lines.append(
            f"warning: the last {report.unsigned} entries are not covered by a signed head yet"
        )
    return lines


@audit_app.command("verify")
def verify(log: LogOption, key: KeyOption = None, head: HeadOption = None) -> None:
    """Check every entry, its chaining and every signed head; exit 1 if anything was changed.

    Modifying, deleting, inserting or reordering entries, or cutting the log short of its last
    signed head, all make verification fail.
    """
    report, problem = _verify(log, _public_key(key), head)
    if report is None:
        typer.echo(f"fedsql: {log}: FAILED verification: {problem}", err=True)
        raise typer.Exit(1)
    for line in _report_lines(report):
        typer.echo(line)


def _matches(entry: AuditEntry, analyst: str | None, qid: str | None, event: str | None) -> bool:
    record = entry.record
    return (
        (analyst is None or record.analyst == analyst)
        and (qid is None or record.qid.startswith(qid))
        and (event is None or record.event == event)
    )


def _detail(entry: AuditEntry) -> str:
    record = entry.record
    text = record.reason or record.sql or record.release_digest
    if record.reason and record.sql:
        text = f"{record.reason} | {record.sql}"
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 1] + "…"


@audit_app.command("show")
def show(
    log: LogOption,
    key: KeyOption = None,
    analyst: Annotated[str | None, typer.Option(help="Only this analyst's entries.")] = None,
    qid: Annotated[str | None, typer.Option(help="Only this query (an id prefix).")] = None,
    event: Annotated[str | None, typer.Option(help="Only this event (request, ...).")] = None,
    last: Annotated[int | None, typer.Option(help="Only the last N matching entries.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or jsonl.")] = "table",
) -> None:
    """Print the log's entries (text as stored: control and bidirectional characters escaped).

    The log is verified first; a log that fails is still shown, with the failure on stderr and
    exit status 1.
    """
    if fmt not in ("table", "jsonl"):
        raise typer.BadParameter("use table or jsonl", param_hint="--format")
    try:
        lines = read_log_lines(log)
    except Error as exc:
        typer.echo(f"fedsql: {log}: {exc}", err=True)
        raise typer.Exit(1) from None
    report, problem = _verify(log, _public_key(key), None)
    entries = [ln.entry for ln in lines if ln.entry and _matches(ln.entry, analyst, qid, event)]
    if last is not None:
        entries = entries[-last:] if last > 0 else []
    if fmt == "jsonl":
        for entry in entries:
            typer.echo(entry.line.decode("ascii"))
    else:
        table = Table(show_lines=False)
        for column in ("seq", "time (UTC)", "event", "actor", "analyst", "decision", "epsilon"):
            table.add_column(column, justify="right" if column in ("seq", "epsilon") else "left")
        table.add_column("qid")
        table.add_column("reason / SQL / release", overflow="fold")
        for entry in entries:
            record = entry.record
            table.add_row(
                str(entry.seq),
                _time(entry.at_ms),
                *(
                    Text(value)  # Text, not markup: stored text is shown exactly as written
                    for value in (
                        record.event,
                        record.actor,
                        record.analyst,
                        record.decision,
                        format_micro(record.epsilon_micro) if record.epsilon_micro else "",
                        record.qid[:12],
                        _detail(entry),
                    )
                ),
            )
        Console().print(table)
    err = Console(stderr=True)
    unreadable = [ln for ln in lines if ln.problem]
    for ln in unreadable[:5]:
        err.print(Text(f"line {ln.number}: {ln.problem}"))
    if report is None:
        err.print(Text(f"fedsql: {log}: FAILED verification: {problem}"))
        raise typer.Exit(1)
    for line in _report_lines(report):
        err.print(Text(line))


def register(app: typer.Typer) -> None:
    """Add this command group to ``app``."""
    app.add_typer(audit_app, name="audit")
