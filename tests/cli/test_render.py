"""Every output format carries each value's margin and marks suppressed cells the same way."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pyarrow as pa
from rich.console import Console

from fedsql.cli.render import (
    Z95,
    arrow_table,
    print_table,
    render_csv,
    render_json,
    render_jsonl,
    render_markdown,
)
from fedsql.dbapi.privacy import PrivacyReport
from fedsql.transport.messages import SiloStatus

TABLE = pa.table(
    {
        "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2)], pa.date32()),
        "n": pa.array([1200, None], pa.int64()),
        "note": ["a|b", "c"],
    }
)
REPORT = PrivacyReport(
    epsilon="0.5",
    delta=1e-6,
    rho=0.01,
    noise=True,
    min_group_size=20,
    silos=(SiloStatus("a", "answered", budget_remaining="2"),),
    stats=pa.table(
        {
            "__cell": [0, 1],
            "n__sigma": [10.0, 10.0],
            "n__lo": [1180.4, None],
            "n__hi": [1219.6, None],
            "__suppressed": [False, True],
        }
    ),
)


def test_csv_puts_the_margin_beside_the_value() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(TABLE, REPORT))))
    assert rows[0] == ["day", "n", "n_margin95", "note", "suppressed"]
    assert rows[1][:2] == ["2024-01-01", "1200"]
    assert float(rows[1][2]) == Z95 * 10.0
    assert rows[2][1] == "" and rows[2][4] == "True"


def test_csv_of_no_rows_still_has_its_header() -> None:
    empty = REPORT.stats.slice(0, 0)
    report = PrivacyReport("1", 1e-6, None, True, 0, (), empty)
    assert render_csv(TABLE.slice(0, 0), report) == "day,n,n_margin95,note,suppressed\n"


def test_json_and_jsonl_carry_the_same_records() -> None:
    body = json.loads(render_json(TABLE, REPORT))
    lines = [json.loads(line) for line in render_jsonl(TABLE, REPORT).splitlines()]
    assert body["rows"] == lines
    assert lines[1] == {
        "day": "2024-01-02",
        "n": None,
        "n_margin95": Z95 * 10.0,
        "note": "c",
        "suppressed": True,
    }
    assert body["privacy"]["silos"] == [
        {"silo": "a", "status": "answered", "reason": "", "budget_remaining": "2"}
    ]


def test_markdown_escapes_pipes_and_marks_suppressed_cells() -> None:
    lines = render_markdown(TABLE, REPORT).splitlines()
    assert lines[0] == "| day | n | note |"
    assert lines[1] == "|---|---:|---|"
    assert lines[2] == "| 2024-01-01 | 1,200 ± 19.6 | a\\|b |"
    assert lines[3] == "| 2024-01-02 | suppressed | c |"


def test_arrow_keeps_types_and_carries_the_report() -> None:
    out = arrow_table(TABLE, REPORT)
    assert out.column_names == ["day", "n", "n_margin95", "note", "suppressed"]
    assert out.schema.field("day").type == pa.date32()
    assert out.column("suppressed").to_pylist() == [False, True]
    assert json.loads(out.schema.metadata[b"fedsql.privacy"])["epsilon"] == "0.5"


def test_the_table_marks_suppressed_cells() -> None:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    print_table(console, TABLE, REPORT)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "1,200 ± 19.6" in text
    assert "suppressed" in text
