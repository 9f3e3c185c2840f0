"""A real deployment on loopback: enrolment commands, a hub process and four silo processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedsql.demo.generator import demo_files
from fedsql.transport.client import AnalystClient

SILOS = ("mumbai", "san-francisco", "seoul", "sydney")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "fedsql.cli.app", *args], stdout=out, stderr=subprocess.STDOUT
    )


def wait_for(predicate: object, timeout_s: float = 30.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, demo_data: dict[str, Path]
) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("deploy")
    contract = demo_files() / "contract.toml"
    cli("authority", "init", str(root / "authority"))
    cli("hub", "keygen", str(root / "hub"))
    for silo in SILOS:
        cli("silo", "enrol", "--id", silo, "--state", str(root / silo))
        text = (demo_files() / f"{silo}.toml").read_text()
        text = text.replace(f'"demo:{silo}"', f'"{demo_data[silo]}"')
        (root / f"{silo}.toml").write_text(text)
    cli(
        "authority",
        "sign-roster",
        *(str(root / s / "enrolment.json") for s in SILOS),
        "--authority",
        str(root / "authority"),
        "--contract",
        str(contract),
        "--coordinator",
        str(root / "hub" / "coordinator.pub"),
        "--out",
        str(root / "roster.json"),
    )
    (root / "hub.toml").write_text(
        "[hub]\n"
        'listen = "127.0.0.1:0"\n'
        f'contract = "{contract}"\n'
        'roster = "roster.json"\n'
        'key = "hub/coordinator.key"\n'
        'authority = "authority/authority.pub"\n'
        "insecure_local = true\n"
    )
    port_file = root / "hub.port"
    hub = spawn(
        "hub",
        "serve",
        "--config",
        str(root / "hub.toml"),
        "--port-file",
        str(port_file),
        log=root / "hub.log",
    )
    wait_for(port_file.exists)
    target = f"127.0.0.1:{port_file.read_text().strip()}"
    silos = {
        s: spawn(
            "silo",
            "serve",
            "--policy",
            str(root / f"{s}.toml"),
            "--contract",
            str(contract),
            "--hub",
            target,
            "--state",
            str(root / s),
            "--authority",
            str(root / "authority" / "authority.pub"),
            log=root / f"{s}.log",
        )
        for s in SILOS
    }
    client = AnalystClient(target, timeout_s=30)
    wait_for(lambda: len(client.status().silos) == len(SILOS))
    yield {"root": root, "target": target, "hub": hub, "silos": silos, "client": client}
    client.close()
    for proc in [*silos.values(), hub]:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in [*silos.values(), hub]:
        proc.wait(timeout=30)


def test_key_files_are_private(deployment: dict[str, object]) -> None:
    root = deployment["root"]
    assert isinstance(root, Path)
    for key in [
        root / "authority" / "authority.key",
        root / "hub" / "coordinator.key",
        *(root / s / "identity.key" for s in SILOS),
        *(root / s / "x25519.key" for s in SILOS),
    ]:
        assert os.stat(key).st_mode & 0o777 == 0o600, key


def test_query_through_separate_processes(deployment: dict[str, object]) -> None:
    proc = cli(
        "query",
        "--hub",
        str(deployment["target"]),
        "--format",
        "csv",
        "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex",
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("sex,n,n_margin95")
    assert len(lines) == 3
    for silo in SILOS:
        assert f"{silo} answered" in proc.stderr


def test_status_lists_the_connected_silos(deployment: dict[str, object]) -> None:
    proc = cli("status", "--hub", str(deployment["target"]))
    assert "fedsql-demo" in proc.stdout
    for silo in SILOS:
        assert silo in proc.stdout


def test_processes_stop_cleanly_on_sigterm(deployment: dict[str, object]) -> None:
    silos = deployment["silos"]
    assert isinstance(silos, dict)
    proc = silos["seoul"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    client = deployment["client"]
    assert isinstance(client, AnalystClient)
    wait_for(lambda: len(client.status().silos) == len(SILOS) - 1)


def test_a_roster_from_another_authority_is_refused(
    deployment: dict[str, object], tmp_path: Path
) -> None:
    root, silos, client = deployment["root"], deployment["silos"], deployment["client"]
    assert isinstance(root, Path) and isinstance(silos, dict) and isinstance(client, AnalystClient)
    if silos["seoul"].poll() is None:
        silos["seoul"].send_signal(signal.SIGTERM)
        silos["seoul"].wait(timeout=30)
    wait_for(lambda: "seoul" not in {s.silo_id for s in client.status().silos})
    cli("authority", "init", str(tmp_path / "rogue"))
    log = tmp_path / "rogue-silo.log"
    proc = spawn(
        "silo", "serve",
        "--policy", str(root / "seoul.toml"),
        "--contract", str(demo_files() / "contract.toml"),
        "--hub", str(deployment["target"]),
        "--state", str(root / "seoul"),
        "--authority", str(tmp_path / "rogue" / "authority.pub"),
        log=log,
    )  # fmt: skip
    try:
        wait_for(lambda: b"enrolment authority" in log.read_bytes())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
