"""``fedsql query`` and ``fedsql explain`` in real subprocesses, without a terminal.

Without a terminal the CLI reads SQL from the argument, ``-f FILE`` or stdin, prints CSV unless
told otherwise, writes only the result on stdout and only the privacy report (no live view, no
colour) on stderr. Every exit code of ``fedsql query --help`` is produced here.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from fedsql.cli import exits
from fedsql.demo.federation import DemoFederation
from fedsql.demo.omop import ensure_omop_data

SQL = "SELECT sex, COUNT(*) AS n, AVG(bmi) AS bmi FROM patients WHERE age >= 40 GROUP BY sex"
SILOS = ("mumbai", "san-francisco", "seoul", "sydney")


def run(
    *args: str, stdin: str = "", home: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess with stdin, stdout and stderr on pipes, as a script would."""
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("FEDSQL_PROFILES", None)
    if home is not None:
        env["HOME"] = str(home)
        env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def hub(noisy_federation: DemoFederation) -> str:
    """The address of the session's noisy demo federation."""
    return noisy_federation.target


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home folder (no profiles)."""
    return tmp_path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_plain(text: str) -> None:
    assert "\x1b[" not in text, "terminal escape codes without a terminal"


def _assert_report(stderr: str, epsilon: str = "1") -> None:
    assert f"epsilon spent: {epsilon} at each answering clinic" in stderr
    assert "budget left:" in stderr
    for silo in SILOS:
        assert f"{silo} answered" in stderr


# -- output formats ---------------------------------------------------------------------------


def test_csv_is_the_default_without_a_terminal(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["sex"] for r in rows] == ["F", "M"]
    assert list(rows[0]) == ["sex", "n", "n_margin95", "bmi", "bmi_margin95", "suppressed"]
    assert float(rows[0]["n_margin95"]) > 0
    _assert_report(proc.stderr)
    _assert_plain(proc.stdout + proc.stderr)
    assert "query running" not in proc.stderr


def test_table_format(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--format", "table", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    assert "sex" in proc.stdout and "±" in proc.stdout
    assert "epsilon spent" not in proc.stdout
    _assert_report(proc.stderr)
    _assert_plain(proc.stdout + proc.stderr)


def test_json_format(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--format", "json", "--epsilon", "0.5", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    body = json.loads(proc.stdout)
    assert [r["sex"] for r in body["rows"]] == ["F", "M"]
    assert body["rows"][0]["bmi_margin95"] > 0
    assert body["privacy"]["epsilon"] == "0.5"
    assert {s["status"] for s in body["privacy"]["silos"]} == {"answered"}
    _assert_report(proc.stderr, "0.5")


def test_jsonl_format(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--format", "jsonl", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["sex"] for r in records] == ["F", "M"]
    assert set(records[0]) == {"sex", "n", "n_margin95", "bmi", "bmi_margin95", "suppressed"}
    _assert_report(proc.stderr)


def test_markdown_format(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--format", "markdown", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "| sex | n | bmi |"
    assert lines[1] == "|---|---:|---:|"
    assert lines[2].startswith("| F | ") and " ± " in lines[2]
    assert len(lines) == 4


def test_arrow_format(hub: str, home: Path) -> None:
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", "query", "--hub", hub, "--format", "arrow", SQL],
        capture_output=True,
        timeout=120,
        env={**env, "HOME": str(home)},
        check=False,
    )
    assert proc.returncode == exits.OK, proc.stderr
    table = pa.ipc.open_stream(proc.stdout).read_all()
    assert table.column_names == ["sex", "n", "n_margin95", "bmi", "bmi_margin95", "suppressed"]
    assert table.schema.field("n").type == pa.int64()
    assert table.column("sex").to_pylist() == ["F", "M"]
    privacy = json.loads(table.schema.metadata[b"fedsql.privacy"])
    assert privacy["epsilon"] == "1"
    assert b"epsilon spent: 1" in proc.stderr


def test_quiet_prints_only_the_result(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "-q", SQL, home=home)
    assert proc.returncode == exits.OK
    assert proc.stderr == ""
    assert proc.stdout.startswith("sex,n,n_margin95")


# -- where the SQL comes from -----------------------------------------------------------------


def test_sql_from_stdin(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, stdin=SQL + ";\n", home=home)
    assert proc.returncode == exits.OK, proc.stderr
    assert proc.stdout.splitlines()[0] == "sex,n,n_margin95,bmi,bmi_margin95,suppressed"


def test_sql_from_a_file(hub: str, home: Path, tmp_path: Path) -> None:
    path = tmp_path / "query.sql"
    path.write_text(
        "-- patients over 40 by sex\nSELECT sex, COUNT(*) AS n\nFROM patients\n"
        "WHERE age >= 40\nGROUP BY sex;\n"
    )
    proc = run("query", "--hub", hub, "-f", str(path), home=home)
    assert proc.returncode == exits.OK, proc.stderr
    assert [r["sex"] for r in csv.DictReader(io.StringIO(proc.stdout))] == ["F", "M"]


def test_sql_from_stdin_through_dash_f(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--file", "-", "--format", "jsonl", stdin=SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    assert len(proc.stdout.splitlines()) == 2


def test_no_sql_without_a_terminal_is_a_usage_error(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, stdin="", home=home)
    assert proc.returncode == exits.USAGE
    assert "no SQL given" in proc.stderr
    assert proc.stdout == ""


def test_sql_argument_and_file_together_is_a_usage_error(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "-f", "x.sql", SQL, home=home)
    assert proc.returncode == exits.USAGE
    assert "not both" in proc.stderr


def test_a_missing_file_is_a_usage_error(hub: str, home: Path, tmp_path: Path) -> None:
    proc = run("query", "--hub", hub, "-f", str(tmp_path / "nope.sql"), home=home)
    assert proc.returncode == exits.USAGE
    assert "cannot read" in proc.stderr


def test_unknown_format_is_a_usage_error(hub: str, home: Path) -> None:
    proc = run("query", "--hub", hub, "--format", "xml", SQL, home=home)
    assert proc.returncode == exits.USAGE
    assert "unknown format 'xml'" in proc.stderr


def test_unknown_option_is_a_usage_error(home: Path) -> None:
    proc = run("query", "--colour", "red", SQL, home=home)
    assert proc.returncode == exits.USAGE


# -- exit codes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT name FROM patients", "UnknownObject"),
        ("SELECT age FROM patients", "QueryRejected"),
        ("DROP TABLE patients", "NotSupportedError"),
        ("SELEC COUNT(*) FROM patients", "SQLSyntaxError"),
    ],
)
def test_a_rejected_query_exits_3_with_one_line(hub: str, home: Path, sql: str, error: str) -> None:
    proc = run("query", "--hub", hub, sql, home=home)
    assert proc.returncode == exits.REJECTED, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"fedsql: {error}:")


@pytest.fixture(scope="module")
def poor_federation(demo_data: object) -> Iterator[DemoFederation]:
    """Every clinic has 1.5 epsilon to give."""
    with DemoFederation(policy_overrides={"budget_epsilon": 1.5, "min_group_size": 0}) as fed:
        yield fed


def test_an_exhausted_budget_exits_4(poor_federation: DemoFederation, home: Path) -> None:
    hub = poor_federation.target
    first = run("query", "--hub", hub, "--analyst", "spender", SQL, home=home)
    assert first.returncode == exits.OK, first.stderr
    second = run("query", "--hub", hub, "--analyst", "spender", SQL, home=home)
    assert second.returncode == exits.BUDGET, second.stderr
    assert second.stderr.startswith("fedsql: BudgetExhausted:")
    assert second.stdout == ""


def test_an_unreachable_hub_exits_5(home: Path) -> None:
    proc = run("query", "--hub", f"127.0.0.1:{_closed_port()}", "--timeout", "10", SQL, home=home)
    assert proc.returncode == exits.UNREACHABLE, proc.stderr
    assert proc.stderr.startswith("fedsql: HubUnreachable: hub unreachable at 127.0.0.1:")


@pytest.fixture(scope="module")
def two_clinics(demo_data: object) -> Iterator[DemoFederation]:
    """A federation with two clinics connected, one fewer than it needs."""
    with DemoFederation(silos=("mumbai", "seoul")) as fed:
        yield fed


def test_too_few_clinics_exits_6(two_clinics: DemoFederation, home: Path) -> None:
    proc = run("query", "--hub", two_clinics.target, SQL, home=home)
    assert proc.returncode == exits.UNANSWERED, proc.stderr
    assert proc.stderr.startswith("fedsql: QuorumNotMet:")


def test_a_bad_profile_file_exits_1(home: Path) -> None:
    config = home / ".config" / "fedsql"
    config.mkdir(parents=True)
    (config / "profiles.toml").write_text("[default]\nanalyst = 'x'\n")
    proc = run("query", SQL, home=home)
    assert proc.returncode == exits.ERROR
    assert "default.hub: required" in proc.stderr


def test_an_interrupted_query_exits_130(home: Path) -> None:
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "fedsql.cli.app", "query", "--hub", f"127.0.0.1:{port}", SQL],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOME": str(home)},
        )
        try:
            # Interrupt once the query is under way (the client has dialled the hub), however
            # long the interpreter took to start.
            silent.settimeout(60)
            connection, _ = silent.accept()
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            connection.close()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == exits.INTERRUPTED
    assert out == ""
    assert err.strip() == "fedsql: interrupted"


# -- profiles, the embedded demo, explain, help -----------------------------------------------


def test_a_profile_names_the_hub_and_analyst(hub: str, home: Path) -> None:
    config = home / ".config" / "fedsql"
    config.mkdir(parents=True)
    (config / "profiles.toml").write_text(
        f'[clinics]\nhub = "{hub}"\nanalyst = "profiled"\nepsilon = 0.25\n'
    )
    proc = run("query", "--profile", "clinics", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    _assert_report(proc.stderr, "0.25")


def test_the_embedded_demo(home: Path, demo_data: object) -> None:
    proc = run("query", "--hub", "demo", "--format", "json", SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    assert len(json.loads(proc.stdout)["rows"]) == 2


def test_the_embedded_omop_example(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = ensure_omop_data()
    monkeypatch.setenv("FEDSQL_CACHE_DIR", str(next(iter(files.values())).parents[1]))
    sql = "SELECT visit_concept_id, COUNT(*) AS visits FROM visit_occurrence GROUP BY 1"
    proc = run("query", "--hub", "omop", "--format", "json", sql, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    rows = json.loads(proc.stdout)["rows"]
    assert sorted(row["visit_concept_id"] for row in rows) == [9201, 9202, 9203]
    for clinic in ("boston", "kyoto", "lyon", "nairobi", "sao-paulo"):
        assert f"{clinic} answered" in proc.stderr


def test_explain_shows_plan_and_spends_nothing(hub: str, home: Path) -> None:
    proc = run("explain", "--hub", hub, SQL, home=home)
    assert proc.returncode == exits.OK, proc.stderr
    for part in ("partial SQL", "key space", "sensitivity", "epsilon=1"):
        assert part in proc.stdout
    from_stdin = run("explain", "--hub", hub, stdin=SQL, home=home)
    assert from_stdin.returncode == exits.OK
    assert "partial SQL" in from_stdin.stdout


def test_explain_of_rejected_query_exits_3(hub: str, home: Path) -> None:
    proc = run("explain", "--hub", hub, "DROP TABLE patients", home=home)
    assert proc.returncode == exits.REJECTED
    assert "NotSupportedError" in proc.stderr


def test_help_documents_every_exit_code(home: Path) -> None:
    proc = run("query", "--help", home=home)
    assert proc.returncode == exits.OK
    text = " ".join(proc.stdout.split())
    for code in (0, 1, 2, 3, 4, 5, 6, 130):
        assert f" {code} " in text, code
    assert "hub unreachable" in text and "budget exhausted" in text
