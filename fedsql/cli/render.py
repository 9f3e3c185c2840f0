"""Render a query's rows, margins and privacy report: table, CSV, JSON, JSON lines, Markdown, Arrow.

Every format carries the same information: each released value with its 95% margin (the
``<column>_margin95`` column beside it, or ``value ± margin`` in the human formats) and whether
the row's cells were suppressed. The privacy report is printed separately (on stderr).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import statistics
from typing import Any, BinaryIO

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from fedsql.dbapi.privacy import SIGMA, PrivacyReport

#: Output formats of ``fedsql query``.
FORMATS = ("table", "csv", "json", "jsonl", "markdown", "arrow")
#: Suffix of the margin column beside each released value.
MARGIN = "_margin95"
#: Two-sided 95% normal quantile: a margin is Z95 times the noise standard deviation.
Z95 = statistics.NormalDist().inv_cdf(0.975)
#: Schema metadata key of the Arrow format holding the privacy report as JSON.
ARROW_PRIVACY_KEY = b"fedsql.privacy"


def _plain(value: Any) -> Any:
    """A JSON- and CSV-ready form of one value (dates as ISO text, non-finite floats as None)."""
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt_number(value: Any) -> str:
    """A value for people: thousands separators, four significant digits for small floats.

    >>> _fmt_number(73658), _fmt_number(26.0412), _fmt_number(None)
    ('73,658', '26.04', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(_plain(value))


def records(table: pa.Table, report: PrivacyReport) -> list[dict[str, Any]]:
    """One dict per row: each value, its 95% margin beside it and whether it was suppressed."""
    stats = report.stats.to_pylist()
    out = []
    names = table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for i, st in enumerate(stats):
        rec: dict[str, Any] = {}
        for name, values in zip(names, columns, strict=True):
            rec[name] = _plain(values[i])
            if name + SIGMA in st:
                sigma = st[name + SIGMA]
                rec[name + MARGIN] = None if sigma is None else Z95 * sigma
        rec["suppressed"] = bool(st.get("__suppressed"))
        out.append(rec)
    return out


def _header(table: pa.Table, report: PrivacyReport) -> list[str]:
    noisy = set(report.noisy_columns)
    out: list[str] = []
    for name in table.column_names:
        out.append(name)
        if name in noisy:
            out.append(name + MARGIN)
    return [*out, "suppressed"]


def render_csv(table: pa.Table, report: PrivacyReport) -> str:
    """CSV with a margin column beside every released value."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_header(table, report), lineterminator="\n")
    writer.writeheader()
    for rec in records(table, report):
        writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in rec.items()})
    return buf.getvalue()


def render_json(table: pa.Table, report: PrivacyReport) -> str:
    """One JSON document: the rows (with margins) and the privacy report."""
    body = {"rows": records(table, report), "privacy": report.to_dict()}
    return json.dumps(body, indent=2) + "\n"


def render_jsonl(table: pa.Table, report: PrivacyReport) -> str:
    """One JSON object per row, with margins (the privacy report goes to stderr)."""
    return "".join(json.dumps(rec) + "\n" for rec in records(table, report))


def _cells(table: pa.Table, report: PrivacyReport) -> list[list[str]]:
    """Each row as display strings: ``value ± margin`` for released values."""
    rows = []
    for rec in records(table, report):
        cells = []
        for name in table.column_names:
            margin_key = name + MARGIN
            if margin_key in rec and rec["suppressed"]:
                cells.append("suppressed")
            elif margin_key in rec and rec[margin_key] is not None and rec[name] is not None:
                cells.append(f"{_fmt_number(rec[name])} ± {_fmt_number(rec[margin_key])}")
            else:
                cells.append(_fmt_number(rec[name]))
        rows.append(cells)
    return rows


def render_markdown(table: pa.Table, report: PrivacyReport) -> str:
    """A Markdown (GitHub) table: each released value as ``value ± 95% margin``.

    >>> t = pa.table({"n": [5]})
    >>> stats = pa.table({"n__sigma": [1.0], "__suppressed": [False]})
    >>> r = PrivacyReport("1", 1e-6, None, True, 0, (), stats)
    >>> print(render_markdown(t, r), end="")
    | n |
    |---:|
    | 5 ± 1.96 |
    """

    def esc(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    names = table.column_names
    numeric = [
        pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
        for f in table.schema
    ]
    lines = [
        "| " + " | ".join(esc(n) for n in names) + " |",
        "|" + "|".join("---:" if num else "---" for num in numeric) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in _cells(table, report)]
    return "\n".join(lines) + "\n"


def arrow_table(table: pa.Table, report: PrivacyReport) -> pa.Table:
    """The result with a float64 margin column beside each released value and a ``suppressed``
    column; the privacy report is in the schema metadata under ``fedsql.privacy``."""
    noisy = set(report.noisy_columns)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    fields: list[pa.Field] = []
    for i, f in enumerate(table.schema):
        arrays.append(table.column(i))
        fields.append(f)
        if f.name in noisy:
            sigmas = report.sigma(f.name)
            arrays.append(pa.array([None if s is None else Z95 * s for s in sigmas], pa.float64()))
            fields.append(pa.field(f.name + MARGIN, pa.float64()))
    arrays.append(pa.array(report.suppressed(), pa.bool_()))
    fields.append(pa.field("suppressed", pa.bool_()))
    metadata = {ARROW_PRIVACY_KEY: json.dumps(report.to_dict()).encode()}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def write_arrow(out: BinaryIO, table: pa.Table, report: PrivacyReport) -> None:
    """Write :func:`arrow_table` as an Arrow IPC stream."""
    result = arrow_table(table, report)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, result.schema) as writer:
        writer.write_table(result)
    out.write(sink.getvalue().to_pybytes())
    out.flush()


def print_table(console: Console, table: pa.Table, report: PrivacyReport) -> None:
    """A rich table: each released value with ± its 95% margin; suppressed cells marked."""
    out = Table(show_header=True, header_style="bold")
    for name in table.column_names:
        out.add_column(name, justify="right")
    for row in _cells(table, report):
        out.add_row(*(f"[dim]{c}[/dim]" if c == "suppressed" else c for c in row))
    console.print(out)


def print_report(console: Console, report: PrivacyReport) -> None:
    """Epsilon spent, budget left and each clinic's part."""
    noise = "" if report.noise else " [bold red](noise OFF: test mode)[/bold red]"
    console.print(
        f"epsilon spent: {report.epsilon} at each answering clinic (delta {report.delta:g}){noise}",
        soft_wrap=True,
    )
    left = report.budget_left()
    if left:
        console.print(
            "budget left: " + ", ".join(f"{silo} {eps}" for silo, eps in sorted(left.items())),
            soft_wrap=True,
        )
    parts = []
    for s in report.silos:
        text = f"{s.silo_id} {s.status}"
        if s.reason:
            text += f" ({s.reason})"
        parts.append(text)
    console.print("silos: " + "; ".join(parts), markup=False, soft_wrap=True)
    console.print(
        f"margins are 95% intervals of the added noise; cells with a noisy count under "
        f"{report.min_group_size} are suppressed",
        soft_wrap=True,
    )
