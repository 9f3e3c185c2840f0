"""``fedsql silo pending | approve | deny``: an operator's commands, in real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.silo.approvals import ApprovalQueue

SQL = "SELECT diabetic, COUNT(*) FROM patients GROUP BY diabetic"
MANUAL = "seoul"


def fedsql_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )


def silo_cli(command: str, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return fedsql_cli("silo", command, *args, "--state", str(state), "--id", MANUAL)


@pytest.fixture
def federation(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[DemoFederation]:
    with DemoFederation(
        state_dir=tmp_path,
        noise=False,
        testing=True,
        silo_overrides={MANUAL: {"approval": "manual"}},
        round_timeout_s=60.0,
    ) as fed:
        yield fed


def held_qid(state: Path) -> str:
    """Wait until the operator's listing shows one pending query, and return its id."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = silo_cli("pending", state, "--format", "json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        if rows:
            (row,) = rows
            assert (row["analyst"], row["sql"], row["epsilon"], row["state"]) == (
                "ana",
                SQL,
                "0.25",
                "pending",
            )
            return str(row["qid"])
        time.sleep(0.05)
    raise AssertionError("no query was held")


def test_an_operator_approves_from_the_command_line(federation: DemoFederation) -> None:
    with ThreadPoolExecutor(1) as pool:
        conn = fedsql.connect(federation.target, analyst="ana")
        asked = pool.submit(lambda: conn.cursor().execute(SQL, epsilon=0.25))
        qid = held_qid(federation.state_dir)
        table = silo_cli("pending", federation.state_dir)
        assert qid in table.stdout and "ana" in table.stdout
        approved = silo_cli("approve", federation.state_dir, qid, "--operator", "dr-kim")
        assert approved.returncode == 0, approved.stderr
        assert approved.stdout.strip() == f"approved {qid} (0.25 epsilon)"
        cursor = asked.result(timeout=60)
    assert cursor.privacy is not None
    assert MANUAL in cursor.privacy.answered()
    assert silo_cli("pending", federation.state_dir).stdout.strip() == (
        "no query is waiting for approval"
    )
    decided = json.loads(
        silo_cli("pending", federation.state_dir, "--all", "--format", "json").stdout
    )
    assert [r["state"] for r in decided] == ["running"]
    # A decision is taken once: approving again fails with a clear message and exit code 1.
    again = silo_cli("approve", federation.state_dir, qid)
    assert again.returncode == 1
    assert "is running, not pending" in again.stderr


def test_an_operator_denies_with_a_reason_the_analyst_reads(federation: DemoFederation) -> None:
    with ThreadPoolExecutor(1) as pool:
        conn = fedsql.connect(federation.target, analyst="ana")
        asked = pool.submit(lambda: conn.cursor().execute(SQL, epsilon=0.25))
        qid = held_qid(federation.state_dir)
        denied = silo_cli("deny", federation.state_dir, qid, "--reason", "needs an amendment")
        assert denied.returncode == 0, denied.stderr
        cursor = asked.result(timeout=60)
    assert cursor.privacy is not None
    assert cursor.privacy.refused() == {
        MANUAL: "the clinic's operator denied the query: needs an amendment"
    }
    queue = ApprovalQueue(federation.state_dir / f"{MANUAL}.approvals.sqlite")
    (entry,) = queue.held()
    assert (entry.state, entry.reason) == ("denied", "needs an amendment")


def test_deny_needs_a_reason_and_unknown_ids_are_refused(federation: DemoFederation) -> None:
    missing_reason = silo_cli("deny", federation.state_dir, "00" * 16)
    assert missing_reason.returncode == 2
    assert "--reason" in missing_reason.stderr
    unknown = silo_cli("approve", federation.state_dir, "00" * 16)
    assert unknown.returncode != 0
    assert f"no held query has id {'00' * 16}" in unknown.stderr


def test_a_state_folder_without_a_queue_is_named_in_the_error(tmp_path: Path) -> None:
    listed = fedsql_cli("silo", "pending", "--state", str(tmp_path), "--id", "nowhere")
    assert listed.returncode != 0
    assert "no approval queue here" in listed.stderr
