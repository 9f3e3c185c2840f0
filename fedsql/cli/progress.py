"""The live per-clinic view shown on a terminal while a query runs."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fedsql.transport.messages import SiloStatus

#: How each status a clinic reports is shown: label and style.
STATES: dict[str, tuple[str, str]] = {
    "waiting": ("waiting", "dim"),
    "approval": ("waiting for approval", "yellow"),
    "running": ("running", "cyan"),
    "uploaded": ("running (masked share sent)", "cyan"),
    "answered": ("answered", "green"),
    "refused": ("refused", "bold red"),
    "dropped": ("dropped", "red"),
}


def status_line(status: SiloStatus) -> Text:
    """One clinic's state for people, with the reason when it refused or dropped.

    >>> status_line(SiloStatus("seoul", "refused", "budget exhausted")).plain
    'refused: budget exhausted'
    >>> status_line(SiloStatus("seoul", "approval")).plain
    'waiting for approval'
    """
    label, style = STATES.get(status.status, (status.status, ""))
    text = Text(label, style=style)
    if status.reason and status.status in ("refused", "dropped"):
        text.append(f": {status.reason}")
    return text


def view(statuses: tuple[SiloStatus, ...], elapsed_s: float) -> Table:
    """The table of clinics and their states."""
    table = Table(title=f"query running ({elapsed_s:.1f} s)", title_justify="left", box=None)
    table.add_column("clinic", style="bold")
    table.add_column("state")
    table.add_column("budget left", justify="right")
    for s in statuses:
        table.add_row(s.silo_id, status_line(s), s.budget_remaining or "")
    return table


class LiveView:
    """A context manager that redraws the clinics' states on ``console`` as they change.

    The view disappears when the query ends (the privacy report that follows lists the final
    states). Use :meth:`update` as the cursor's ``on_progress`` callback.
    """

    def __init__(self, console: Console) -> None:
        """Prepare a view on ``console`` (a terminal)."""
        self._console = console
        self._start = time.monotonic()
        self._live = Live(
            Text("planning the query…", style="dim"),
            console=console,
            transient=True,
            refresh_per_second=8,
        )

    def update(self, statuses: tuple[SiloStatus, ...]) -> None:
        """Show the clinics' latest states."""
        self._live.update(view(statuses, time.monotonic() - self._start), refresh=True)

    def __enter__(self) -> LiveView:
        """Start drawing."""
        self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop drawing and clear the view."""
        self._live.stop()
