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
from fedsql.errors import Error
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
        try:
            if predicate():
                return
        except Error:  # e.g. the hub is restarting
            pass
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

    root = deployment["root"]
    assert isinstance(root, Path)
    hub_key = (root / "hub" / "coordinator.pub").read_text().strip()
    check = cli("audit", "verify", "--log", str(root / "hub.audit.log"), "--key", hub_key)
    assert check.stdout.startswith("verified: 2 entries")  # planned, released
    for silo in SILOS:
        cli("audit", "verify", "--log", str(root / silo / f"{silo}.audit.log"))


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spent(root: Path, silo: str, analyst: str) -> int:
    from fedsql.privacy.ledger import Ledger

    return Ledger(root / silo / f"{silo}.ledger.sqlite").spent(analyst)


def test_silo_killed_and_hub_restarted(deployment: dict[str, object]) -> None:
    root, silos = deployment["root"], deployment["silos"]
    assert isinstance(root, Path) and isinstance(silos, dict)
    contract = demo_files() / "contract.toml"
    # A hub on a fixed port, so that it can be restarted where the silos expect it.
    port = _free_port()
    config = root / "hub-fixed.toml"
    config.write_text(
        (root / "hub.toml").read_text().replace("127.0.0.1:0", f"127.0.0.1:{port}")
        + 'audit = "hub-fixed.audit.log"\n'  # one writer per log: the first hub still runs
    )
    target = f"127.0.0.1:{port}"

    def start_hub() -> subprocess.Popen[bytes]:
        return spawn("hub", "serve", "--config", str(config), log=root / "hub-fixed.log")

    def start_silo(s: str) -> subprocess.Popen[bytes]:
        return spawn(
            "silo", "serve",
            "--policy", str(root / f"{s}.toml"), "--contract", str(contract),
            "--hub", target, "--state", str(root / s),
            "--authority", str(root / "authority" / "authority.pub"),
            log=root / f"{s}-fixed.log",
        )  # fmt: skip

    for proc in silos.values():  # the module's silos move to the fixed hub
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    hub = start_hub()
    procs = {s: start_silo(s) for s in SILOS}
    client = AnalystClient(target, timeout_s=30)
    try:
        wait_for(lambda: len(client.status().silos) == 4)
        query = ("query", "--hub", target, "--analyst", "resilience", "--format", "csv",
                 "SELECT COUNT(*) FROM visits")  # fmt: skip
        assert cli(*query).returncode == 0
        before = {s: _spent(root, s, "resilience") for s in SILOS}
        assert set(before.values()) == {1_000_000}

        # SIGKILL one silo while a query runs: it completes over the others or fails cleanly.
        running = subprocess.Popen(
            [sys.executable, "-m", "fedsql.cli.app", *query],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs["sydney"].kill()
        procs["sydney"].wait(timeout=30)
        _out, err = running.communicate(timeout=120)
        assert running.returncode in (0, 1), err
        if running.returncode == 1:
            assert err.startswith("fedsql: ") and len(err.strip().splitlines()) == 1

        # Restart it: it reconnects, and nothing it charged is charged again.
        procs["sydney"] = start_silo("sydney")
        wait_for(lambda: len(client.status().silos) == 4)
        sydney_spent = _spent(root, "sydney", "resilience")
        assert cli(*query).returncode == 0
        assert _spent(root, "sydney", "resilience") == sydney_spent + 1_000_000

        # Restart the hub: the silos reconnect by themselves and every ledger is intact.
        ledgers = {s: _spent(root, s, "resilience") for s in SILOS}
        hub.send_signal(signal.SIGTERM)
        assert hub.wait(timeout=30) == 0
        hub = start_hub()
        wait_for(lambda: len(client.status().silos) == 4, timeout_s=60)
        assert {s: _spent(root, s, "resilience") for s in SILOS} == ledgers
        assert cli(*query).returncode == 0
        assert all(_spent(root, s, "resilience") == ledgers[s] + 1_000_000 for s in SILOS)
    finally:
        client.close()
        for proc in [*procs.values(), hub]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*procs.values(), hub]:
            proc.wait(timeout=30)


def test_mtls_deployment(deployment: dict[str, object], tmp_path: Path) -> None:
    from fedsql.transport.messages import ExecuteRequest
    from fedsql.transport.tls import channel_credentials

    root, silos = deployment["root"], deployment["silos"]
    assert isinstance(root, Path) and isinstance(silos, dict)
    for proc in silos.values():  # each silo's state (ledger, audit log) has one writer
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    contract = demo_files() / "contract.toml"
    ca = tmp_path / "ca"
    cli("ca", "init", str(ca))
    cli("ca", "issue", "hub", "hub", "--ca", str(ca), "--out", str(tmp_path / "tls-hub"))
    cli("ca", "issue", "analyst", "alice", "--ca", str(ca), "--out", str(tmp_path / "tls-alice"))
    for s in SILOS:
        cli("ca", "issue", "silo", s, "--ca", str(ca), "--out", str(tmp_path / f"tls-{s}"))
    config = tmp_path / "hub.toml"
    config.write_text(
        (root / "hub.toml")
        .read_text()
        .replace("insecure_local = true", f'tls = "{tmp_path / "tls-hub"}"')
        .replace('roster = "roster.json"', f'roster = "{root / "roster.json"}"')
        .replace('key = "hub/coordinator.key"', f'key = "{root / "hub" / "coordinator.key"}"')
        .replace(
            'authority = "authority/authority.pub"',
            f'authority = "{root / "authority" / "authority.pub"}"',
        )
    )
    port_file = tmp_path / "hub.port"
    hub = spawn("hub", "serve", "--config", str(config), "--port-file", str(port_file),
                log=tmp_path / "hub.log")  # fmt: skip
    procs: list[subprocess.Popen[bytes]] = [hub]
    try:
        wait_for(port_file.exists)
        target = f"127.0.0.1:{port_file.read_text().strip()}"
        for s in SILOS:
            procs.append(
                spawn(
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
                    "--tls",
                    str(tmp_path / f"tls-{s}"),
                    "--hub-name",
                    "hub",
                    log=tmp_path / f"{s}.log",
                )
            )
        client = AnalystClient(
            target, channel_credentials(tmp_path / "tls-alice"), timeout_s=30, server_name="hub"
        )
        wait_for(lambda: len(client.status().silos) == len(SILOS))
        reply = client.execute(
            ExecuteRequest(sql="SELECT COUNT(*) FROM patients", analyst="alice", epsilon="0.1")
        )
        assert {s.status for s in reply.silos} == {"answered"}
        client.close()
        # The standard health service answers any peer with a federation certificate.
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        channel = grpc.secure_channel(
            target,
            channel_credentials(tmp_path / "tls-alice"),
            options=[("grpc.ssl_target_name_override", "hub")],
        )
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        channel.close()
        # The CLI through a profile: mTLS, the analyst named by the certificate.
        profiles = tmp_path / "profiles.toml"
        profiles.write_text(
            f'[prod]\nhub = "{target}"\ntls = "tls-alice"\nserver_name = "hub"\nepsilon = 0.1\n'
        )
        proc = subprocess.run(
            [sys.executable, "-m", "fedsql.cli.app", "query", "--profile", "prod",
             "--format", "csv", "SELECT COUNT(*) AS n FROM patients"],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "FEDSQL_PROFILES": str(profiles)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("n,n_margin95")
        # Plaintext is refused by the TLS hub.
        plain = AnalystClient(target, timeout_s=5)
        with pytest.raises(Error):
            plain.status()
        plain.close()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
