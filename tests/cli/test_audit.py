"""``fedsql audit show`` and ``fedsql audit verify`` on real signed logs, intact and tampered."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedsql.audit import AuditLog, AuditRecord, head_path_for
from fedsql.cli.app import app
from fedsql.secagg.identity import IdentityKey, verify_signature

runner = CliRunner()
OWNER = IdentityKey.from_private_bytes(bytes(range(32)))
OTHER = IdentityKey.from_private_bytes(bytes(range(2, 34)))


def write(path: Path, records: list[AuditRecord]) -> None:
    with AuditLog(path, OWNER, verify_signature, log_id="silo:mumbai", durable=False) as log:
        for record in records:
            log.append(record)


RECORDS = [
    AuditRecord(
        event="request",
        actor="silo:mumbai",
        analyst="alice",
        qid="aa" * 16,
        plan_hash="11" * 32,
        sql="SELECT sex, AVG(bmi) FROM patients GROUP BY sex",
        params_json="[]",
        decision="admitted",
        epsilon_micro=500_000,
    ),
    AuditRecord(
        event="release",
        actor="silo:mumbai",
        analyst="alice",
        qid="aa" * 16,
        decision="released",
        release_digest="22" * 32,
    ),
    AuditRecord(
        event="request",
        actor="silo:mumbai",
        analyst="mallory",
        qid="bb" * 16,
        sql="SELECT 1 -- \x1b[2J\u202e [red]not markup[/red]",
        decision="refused",
        reason="epsilon 3 is above this clinic's per-query cap of 1",
    ),
]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    write(path, RECORDS)
    return path


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "owner.pub"
    path.write_text(OWNER.public_bytes.hex() + "\n")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["audit", *args], env={"COLUMNS": "400"})
    return result.exit_code, result.stdout, result.stderr


def test_verify_reports_an_intact_log(log: Path, key_file: Path) -> None:
    code, out, _ = run("verify", "--log", str(log), "--key", str(key_file))
    assert code == 0
    assert out.startswith("verified: 3 entries and 4 signed heads of log silo:mumbai")
    assert "(the pinned key)" in out and "warning" not in out
    code, out, _ = run("verify", "--log", str(log), "--key", OWNER.public_bytes.hex())
    assert code == 0


def test_verify_without_a_key_warns_that_the_key_is_the_logs_own(log: Path) -> None:
    code, out, _ = run("verify", "--log", str(log))
    assert code == 0
    assert f"by key {OWNER.public_bytes.hex()}" in out
    assert "warning: the signing key was read from the log itself" in out


@pytest.mark.parametrize("damage", ["modify", "delete", "reorder", "truncate"])
def test_verify_fails_on_a_damaged_log(log: Path, key_file: Path, damage: str) -> None:
    lines = log.read_bytes().split(b"\n")[:-1]
    if damage == "modify":
        lines[1] = lines[1].replace(b"alice", b"alica")
    elif damage == "delete":
        del lines[3:5]
    elif damage == "reorder":
        lines[1], lines[3] = lines[3], lines[1]
    else:
        lines = lines[:-2]
    log.write_bytes(b"\n".join(lines) + b"\n")
    code, out, err = run("verify", "--log", str(log), "--key", str(key_file))
    assert code == 1
    assert out == ""
    assert f"{log}: FAILED verification: " in err


def test_verify_fails_against_another_owners_key(log: Path) -> None:
    code, _, err = run("verify", "--log", str(log), "--key", OTHER.public_bytes.hex())
    assert code == 1
    assert "another key than the pinned one" in err


def test_a_head_kept_elsewhere_catches_a_log_rolled_back_with_its_head_file(
    log: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "witness.head"
    shutil.copy(head_path_for(log), witness)
    assert run("verify", "--log", str(log), "--head", str(witness))[0] == 0
    # Roll the log back by one entry and its head file with it: the log's own head file agrees.
    lines = log.read_bytes().split(b"\n")[:-1]
    log.write_bytes(b"\n".join(lines[:-2]) + b"\n")
    head_path_for(log).write_bytes(lines[-3] + b"\n")
    assert run("verify", "--log", str(log))[0] == 0
    code, _, err = run("verify", "--log", str(log), "--head", str(witness))
    assert code == 1
    assert "no longer holds its kept signed head" in err


def test_show_prints_entries_with_text_escaped(log: Path, key_file: Path) -> None:
    code, out, err = run("show", "--log", str(log), "--key", str(key_file))
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\x1b[2J\\u202e [red]not markup[/red]" in out  # escaped, and not read as markup
    assert "alice" in out and "mallory" in out and "0.5" in out
    assert err.startswith("verified: 3 entries")


def test_show_filters_and_prints_json_lines(log: Path) -> None:
    code, out, _ = run("show", "--log", str(log), "--analyst", "alice", "--format", "jsonl")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["seq"], r["event"]) for r in rows] == [(0, "request"), (1, "release")]
    assert out.encode().splitlines() == [
        line for line in log.read_bytes().splitlines() if b'"analyst":"alice"' in line
    ]
    code, out, _ = run(
        "show", "--log", str(log), "--event", "request", "--last", "1", "-f", "jsonl"
    )
    assert [json.loads(line)["analyst"] for line in out.splitlines()] == ["mallory"]
    code, out, _ = run("show", "--log", str(log), "--qid", "bbbb", "-f", "jsonl")
    assert len(out.splitlines()) == 1


def test_show_still_shows_a_tampered_log_but_fails(log: Path) -> None:
    data = log.read_bytes().replace(b"mallory", b"mallorz")
    log.write_bytes(data + b"not json\n")
    code, out, err = run("show", "--log", str(log))
    assert code == 1
    assert "mallorz" in out
    assert "line 8: not JSON" in err
    assert "FAILED verification" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["verify", "--log", "{missing}"], "does not exist"),
        (["verify", "--log", "{log}", "--key", "zz"], "64 hex digits"),
        (["show", "--log", "{log}", "--format", "xml"], "table or jsonl"),
    ],
)
def test_usage_errors(log: Path, tmp_path: Path, args: list[str], words: str) -> None:
    filled = [a.format(log=log, missing=tmp_path / "missing.log") for a in args]
    code, _, err = run(*filled)
    assert code in (1, 2)
    assert words in err


def test_the_installed_command_verifies_a_log(log: Path, key_file: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedsql.cli.app",
            "audit",
            "verify",
            "--log",
            str(log),
            "--key",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("verified: 3 entries")
