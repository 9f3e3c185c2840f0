"""Render a query's rows, margins and privacy report as a table, CSV or JSON."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from fedsql.dbapi.cursor import PrivacyReport

FORMATS = ("table", "csv", "json")


def _plain(value: Any) -> Any:
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt_number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(_plain(value))


def records(table: pa.Table, report: PrivacyReport) -> list[dict[str, Any]]:
    """One dict per row: each value, its 95% margin and whether the cell was suppressed."""
    stats = report.stats.to_pylist()
    out = []
    for row, st in zip(table.to_pylist(), stats, strict=True):
        rec: dict[str, Any] = {}
        for name, value in row.items():
            rec[name] = _plain(value)
            sigma = st.get(name + "__sigma")
            if name + "__sigma" in st:
                rec[name + "_margin95"] = None if sigma is None else 1.959964 * sigma
        rec["suppressed"] = bool(st.get("__suppressed"))
        out.append(rec)
    return out


def render_csv(table: pa.Table, report: PrivacyReport) -> str:
    """CSV with a margin column beside every released value."""
    recs = records(table, report)
    buf = io.StringIO()
    fields = list(recs[0]) if recs else [*table.column_names, "suppressed"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for rec in recs:
        writer.writerow(rec)
    return buf.getvalue()


def render_json(table: pa.Table, report: PrivacyReport) -> str:
    """JSON with the rows and the privacy report."""
    body = {
        "rows": records(table, report),
        "privacy": {
            "epsilon": report.epsilon,
            "delta": report.delta,
            "noise": report.noise,
            "min_group_size": report.min_group_size,
            "silos": [
                {
                    "silo": s.silo_id,
                    "status": s.status,
                    "reason": s.reason,
                    "budget_remaining": s.budget_remaining,
                }
                for s in report.silos
            ],
        },
    }
    return json.dumps(body, indent=2)


def print_table(console: Console, table: pa.Table, report: PrivacyReport) -> None:
    """A rich table: each released value with ± its 95% margin; suppressed cells marked."""
    out = Table(show_header=True, header_style="bold")
    names = table.column_names
    for name in names:
        out.add_column(name, justify="right")
    for rec in records(table, report):
        cells = []
        for name in names:
            value = rec[name]
            if rec["suppressed"] and (name + "_margin95") in rec:
                cells.append("[dim]suppressed[/dim]")
            elif (name + "_margin95") in rec and rec[name + "_margin95"] is not None:
                cells.append(f"{_fmt_number(value)} ± {_fmt_number(rec[name + '_margin95'])}")
            else:
                cells.append(_fmt_number(value))
        out.add_row(*cells)
    console.print(out)


def print_report(console: Console, report: PrivacyReport) -> None:
    """Epsilon spent, budget left and each clinic's part."""
    noise = "" if report.noise else " [bold red](noise OFF: test mode)[/bold red]"
    console.print(
        f"epsilon spent: {report.epsilon} at each answering clinic (delta {report.delta:g}){noise}"
    )
    left = report.budget_left()
    if left:
        console.print(
            "budget left: " + ", ".join(f"{silo} {eps}" for silo, eps in sorted(left.items()))
        )
    parts = []
    for s in report.silos:
        text = f"{s.silo_id} {s.status}"
        if s.reason:
            text += f" ({s.reason})"
        parts.append(text)
    console.print("silos: " + "; ".join(parts))
    console.print(
        f"margins are 95% intervals of the added noise; cells with a noisy count under "
        f"{report.min_group_size} are suppressed"
    )
