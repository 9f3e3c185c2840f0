"""``fedsql ca init`` and ``fedsql ca issue`` in real subprocesses; mTLS with the files written."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fedsql.errors import ProtocolError
from fedsql.transport import (
    AnalystClient,
    ExecuteReply,
    ExecuteRequest,
    Hello,
    SiloChannel,
    StatusReply,
    Welcome,
    connect_to_hub,
    start_hub_server,
)
from fedsql.transport.messages import RosterEntry
from fedsql.transport.tls import (
    PeerIdentity,
    channel_credentials,
    read_identity,
    server_credentials,
)
from fedsql.transport.tls_files import fingerprint, read_certificate

WAIT_S = 10.0


def fedsql(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess, as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(*args: str) -> str:
    proc = fedsql(*args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class WelcomingHub:
    """A hub handler that welcomes every silo and answers status with nobody."""

    def on_connect(self, hello: Hello, channel: SiloChannel) -> Welcome:
        del channel
        entry = RosterEntry(silo_id=hello.silo_id, index=1, x25519_public=hello.x25519_public)
        return Welcome(fed_id="fed-ca-test", roster_version=1, epoch=0, roster=(entry,))

    def on_message(self, silo_id: str, msg: object) -> None:
        del silo_id, msg

    def on_disconnect(self, silo_id: str) -> None:
        del silo_id

    def execute(self, req: ExecuteRequest) -> ExecuteReply:
        return ExecuteReply(report_json="{}", explain=(req.sql,))

    def status(self) -> StatusReply:
        return StatusReply(silos=(), fed_id="fed-ca-test")


def hello(silo_id: str) -> Hello:
    return Hello(
        silo_id=silo_id,
        name=f"clinic {silo_id}",
        version="0.1.0",
        contract_fingerprint="f" * 64,
        x25519_public=bytes(32),
        min_group_size=10,
        max_epsilon_per_query="1.0",
        shared=(("patients", ("age",)),),
        test_mode=True,
    )


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a hub, a silo and an analyst certificate, all made with the CLI."""
    root = tmp_path_factory.mktemp("ca-cli")
    out = ok("ca", "init", str(root / "ca"), "--name", "clinics CA", "--days", "800")
    assert "CA written to" in out and "subject: CN=clinics CA" in out
    ok(
        "ca",
        "issue",
        "hub",
        "hub-1",
        "--ca",
        str(root / "ca"),
        "--out",
        str(root / "hub"),
        "--host",
        "127.0.0.1",
        "--host",
        "hub.clinics.example",
    )
    ok("ca", "issue", "silo", "mumbai", "--ca", str(root / "ca"), "--out", str(root / "mumbai"))
    ok(
        "ca",
        "issue",
        "analyst",
        "bob@example.org",
        "--ca",
        str(root / "ca"),
        "--out",
        str(root / "bob"),
        "--days",
        "30",
    )
    return root


def test_ca_init_writes_a_private_key_and_prints_the_fingerprint(tmp_path: Path) -> None:
    out = ok("ca", "init", str(tmp_path / "ca"))
    cert = read_certificate(tmp_path / "ca" / "ca.crt")
    assert f"SHA-256 fingerprint: {fingerprint(cert)}" in out
    assert "subject: CN=fedsql federation CA" in out
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600


def test_ca_init_refuses_a_folder_that_holds_a_ca(federation: Path) -> None:
    before = (federation / "ca" / "ca.key").read_bytes()
    proc = fedsql("ca", "init", str(federation / "ca"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("fedsql: ConfigError: ")
    assert "already holds a CA" in proc.stderr
    assert (federation / "ca" / "ca.key").read_bytes() == before


def test_ca_issue_writes_identity_folders_for_every_role(federation: Path) -> None:
    assert read_identity(federation / "hub") == PeerIdentity("hub", "hub-1")
    assert read_identity(federation / "mumbai") == PeerIdentity("silo", "mumbai")
    assert read_identity(federation / "bob") == PeerIdentity("analyst", "bob@example.org")
    for folder in ("hub", "mumbai", "bob"):
        key = federation / folder / "tls.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_ca_issue_prints_what_it_issued(tmp_path: Path, federation: Path) -> None:
    out = ok(
        "ca",
        "issue",
        "hub",
        "hub-2",
        "--ca",
        str(federation / "ca"),
        "--out",
        str(tmp_path / "hub2"),
        "--host",
        "10.1.1.1",
        "--days",
        "10",
    )
    cert = read_certificate(tmp_path / "hub2" / "tls.crt")
    assert "hub certificate for hub-2 written to" in out
    assert "identity: fedsql:hub:hub-2" in out
    assert "hosts: 10.1.1.1, hub-2" in out
    assert f"SHA-256 fingerprint: {fingerprint(cert)}" in out
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 10


def test_ca_issue_refuses_to_overwrite_unless_asked(tmp_path: Path, federation: Path) -> None:
    args = ("ca", "issue", "silo", "seoul", "--ca", str(federation / "ca"))
    ok(*args, "--out", str(tmp_path / "seoul"))
    first = (tmp_path / "seoul" / "tls.key").read_bytes()
    proc = fedsql(*args, "--out", str(tmp_path / "seoul"))
    assert proc.returncode == 1
    assert "already holds a certificate" in proc.stderr and "--replace" in proc.stderr
    assert (tmp_path / "seoul" / "tls.key").read_bytes() == first
    ok(*args, "--out", str(tmp_path / "seoul"), "--replace")
    assert (tmp_path / "seoul" / "tls.key").read_bytes() != first


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ca", "issue", "nurse", "x"), 2, "nurse"),
        (("ca", "issue", "silo", "Mumbai Central"), 1, "is not a DNS label"),
        (("ca", "issue", "silo", "seoul", "--host", "localhost"), 1, "only hub certificates"),
        (("ca", "issue", "silo", "seoul", "--days", "0"), 1, "at least 1"),
        (("ca", "issue", "silo", "seoul", "--days", "5000"), 1, "outlive the CA"),
    ],
)
def test_ca_issue_refuses_bad_arguments(
    tmp_path: Path, federation: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    proc = fedsql(*args, "--ca", str(federation / "ca"), "--out", str(tmp_path / "x"))
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "x" / "tls.key").exists()


def test_ca_issue_needs_the_ca(tmp_path: Path) -> None:
    proc = fedsql(
        "ca", "issue", "silo", "a", "--ca", str(tmp_path / "nope"), "--out", str(tmp_path / "a")
    )
    assert proc.returncode == 1
    assert "ca.crt: the file does not exist" in proc.stderr


def test_the_issued_files_serve_mutual_tls(federation: Path) -> None:
    with start_hub_server(
        WelcomingHub(), "127.0.0.1:0", credentials=server_credentials(federation / "hub")
    ) as server:
        silo = connect_to_hub(
            server.address,
            hello("mumbai"),
            lambda msg: None,
            credentials=channel_credentials(
                federation / "mumbai", expect=PeerIdentity("silo", "mumbai")
            ),
        )
        try:
            assert silo.welcome(timeout=WAIT_S).roster[0].silo_id == "mumbai"
        finally:
            silo.close(grace=0.2)
        impostor = connect_to_hub(
            server.address,
            hello("seoul"),
            lambda msg: None,
            credentials=channel_credentials(federation / "mumbai"),
        )
        try:
            with pytest.raises(ProtocolError, match="cannot connect as silo seoul"):
                impostor.welcome(timeout=WAIT_S)
        finally:
            impostor.close(grace=0.2)
        with AnalystClient(
            server.address, channel_credentials(federation / "bob"), timeout_s=WAIT_S
        ) as analyst:
            assert analyst.status().fed_id == "fed-ca-test"
            reply = analyst.execute(ExecuteRequest(sql="SELECT 1", analyst="bob@example.org"))
            assert reply.explain == ("SELECT 1",)
