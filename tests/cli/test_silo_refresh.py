"""``fedsql silo refresh`` reloads the snapshot of a running ``fedsql silo serve`` process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fedsql.demo.generator import demo_files
from tests.cli.test_deployment import cli, spawn

POLICY = """
[silo]
id = "clinic"

[share]
patients = ["patient_id", "age"]

[source]
connector = "files"
mode = "snapshot"
path = "exports"
"""


def _export(root: Path, n: int) -> None:
    rows = pa.table({"patient_id": list(range(n)), "age": [i % 90 for i in range(n)]})
    (root / "exports").mkdir(exist_ok=True)
    pq.write_table(rows, root / "exports" / "patients.parquet")


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 60
    while not path.exists():
        assert proc.poll() is None, log.read_text()
        assert time.time() < deadline, log.read_text()
        time.sleep(0.1)


def test_refresh_reloads_a_serving_silo_and_reports_failures(tmp_path: Path) -> None:
    _export(tmp_path, 10)
    (tmp_path / "clinic.toml").write_text(POLICY)
    cli("authority", "init", str(tmp_path / "authority"))
    cli("silo", "enrol", "--id", "clinic", "--state", str(tmp_path / "state"))
    log = tmp_path / "silo.log"
    # No hub listens on port 1: the silo serves its snapshot and keeps retrying to dial out.
    proc = spawn(
        "silo", "serve", "--policy", str(tmp_path / "clinic.toml"),
        "--contract", str(demo_files() / "contract.toml"), "--hub", "127.0.0.1:1",
        "--state", str(tmp_path / "state"),
        "--authority", str(tmp_path / "authority" / "authority.pub"),
        log=log,
    )  # fmt: skip
    try:
        _wait_for(tmp_path / "state" / "clinic.pid", proc, log)
        snapshots = list((tmp_path / "state").glob("clinic.snapshot-*.duckdb"))
        assert len(snapshots) == 1
        _export(tmp_path, 20)
        done = cli("silo", "refresh", "--id", "clinic", "--state", str(tmp_path / "state"))
        assert "reloaded" in done.stdout
        after = list((tmp_path / "state").glob("clinic.snapshot-*.duckdb"))
        assert len(after) == 1 and after != snapshots
        outcome = json.loads((tmp_path / "state" / "clinic.refresh.json").read_text())
        assert outcome["ok"] and outcome["done"] == 1

        (tmp_path / "exports" / "patients.parquet").unlink()
        failed = cli(
            "silo", "refresh", "--id", "clinic", "--state", str(tmp_path / "state"), check=False
        )
        assert failed.returncode == 1
        assert "previous snapshot serves on" in failed.stderr
        assert list((tmp_path / "state").glob("clinic.snapshot-*.duckdb")) == after
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (tmp_path / "state" / "clinic.pid").exists()


def test_refresh_without_a_serving_silo_says_so(tmp_path: Path) -> None:
    result = cli("silo", "refresh", "--id", "clinic", "--state", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "no silo clinic is serving" in result.stderr


@pytest.mark.parametrize("missing", ["exports"])
def test_serve_refuses_to_start_on_a_bad_source(tmp_path: Path, missing: str) -> None:
    (tmp_path / "clinic.toml").write_text(POLICY)
    cli("authority", "init", str(tmp_path / "authority"))
    cli("silo", "enrol", "--id", "clinic", "--state", str(tmp_path / "state"))
    result = cli(
        "silo", "serve", "--policy", str(tmp_path / "clinic.toml"),
        "--contract", str(demo_files() / "contract.toml"), "--hub", "127.0.0.1:1",
        "--state", str(tmp_path / "state"),
        "--authority", str(tmp_path / "authority" / "authority.pub"),
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "holds no CSV, Parquet or JSON file for tables patients" in result.stderr
