"""Mutual TLS between hub, silos and analysts over real gRPC on loopback, with real certificates.

The refusal matrix comes first: each way a peer can be wrong, refused where it should be (in the
TLS handshake, by the hub's identity binding, or by the hub's roster) and never reaching the hub
handler otherwise. Every refusal has a twin that succeeds with the one thing fixed, so a refusal
cannot come from a broken setup.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedsql.errors import ConfigError, InterfaceError, OperationalError, ProtocolError
from fedsql.transport import (
    AnalystClient,
    ExecuteReply,
    ExecuteRequest,
    HubConnection,
    MaskedUpload,
    RunningServer,
    connect_to_hub,
    start_hub_server,
)
from fedsql.transport.messages import ExecuteProgress, SiloStatus
from fedsql.transport.tls import (
    CA_CERT_FILE,
    CERT_FILE,
    KEY_FILE,
    PeerIdentity,
    channel_credentials,
    check_insecure_bind,
    check_insecure_target,
    init_ca,
    is_loopback,
    issue,
    read_identity,
    server_credentials,
)
from fedsql.transport.tls_files import read_certificate, read_private_key, write_file

from .toyhub import WAIT_S, Inbox, ToyHub, make_hello, make_query, make_upload, qid_for

HUB = "hub-test"


@dataclass(frozen=True)
class Pki:
    """The folders of one test federation's CA and identities, and of a stranger CA."""

    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    init_ca(root / "ca", "transport test CA")
    issue(root / "ca", "hub", HUB, root / "hub")
    issue(root / "ca", "hub", HUB, root / "hub-named-only", hosts=())
    for silo in ("a", "b"):
        issue(root / "ca", "silo", silo, root / f"silo-{silo}")
    issue(root / "ca", "analyst", "ana", root / "analyst-ana")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    issue(root / "ca", "silo", "a", root / "silo-a-expired", days=1, not_before=past)
    # Another federation's CA, issuing a silo certificate with the very same name.
    init_ca(root / "other-ca", "another federation's CA")
    issue(root / "other-ca", "silo", "a", root / "silo-a-other-ca")
    return Pki(root)


@pytest.fixture
def hub() -> ToyHub:
    return ToyHub()


@pytest.fixture
def server(pki: Pki, hub: ToyHub) -> Iterator[RunningServer]:
    with start_hub_server(hub, credentials=server_credentials(pki["hub"]), max_workers=8) as srv:
        yield srv


@pytest.fixture
def connections() -> Iterator[list[HubConnection]]:
    opened: list[HubConnection] = []
    yield opened
    for conn in opened:
        conn.close(grace=0.2)


def raw_credentials(folder: Path) -> grpc.ChannelCredentials:
    """Channel credentials straight from a folder's files, as a client that skips every local
    check would build them (to show the hub refuses what the loader would)."""
    return grpc.ssl_channel_credentials(
        root_certificates=(folder / CA_CERT_FILE).read_bytes(),
        private_key=(folder / KEY_FILE).read_bytes(),
        certificate_chain=(folder / CERT_FILE).read_bytes(),
    )


def dial(
    server: RunningServer,
    credentials: grpc.ChannelCredentials,
    silo_id: str,
    connections: list[HubConnection],
) -> HubConnection:
    conn = connect_to_hub(server.address, make_hello(silo_id), Inbox(), credentials=credentials)
    connections.append(conn)
    return conn


def refused_in_handshake(conn: HubConnection, hub: ToyHub) -> OperationalError:
    """The stream failed before any Hello reached the hub handler."""
    with pytest.raises(OperationalError) as info:
        conn.welcome(timeout=WAIT_S)
    assert not isinstance(info.value, ProtocolError)  # not a refusal by the hub handler
    assert "TLS" in str(info.value)
    assert hub.events == []
    return info.value


# -- the refusal matrix -----------------------------------------------------------------------


def test_a_silo_with_its_certificate_is_welcomed_and_bound(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    conn = dial(server, channel_credentials(pki["silo-a"]), "a", connections)
    assert [entry.silo_id for entry in conn.welcome(timeout=WAIT_S).roster] == ["a"]
    assert hub.events == [("connect", "a")]


def test_no_client_certificate_is_refused_in_the_handshake(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    trusting_only = grpc.ssl_channel_credentials(
        root_certificates=(pki["silo-a"] / CA_CERT_FILE).read_bytes()
    )
    refused_in_handshake(dial(server, trusting_only, "a", connections), hub)


def test_a_certificate_from_another_ca_is_refused_in_the_handshake(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    # It trusts the federation's CA for the hub, but presents the stranger CA's certificate.
    stranger = grpc.ssl_channel_credentials(
        root_certificates=(pki["silo-a"] / CA_CERT_FILE).read_bytes(),
        private_key=(pki["silo-a-other-ca"] / KEY_FILE).read_bytes(),
        certificate_chain=(pki["silo-a-other-ca"] / CERT_FILE).read_bytes(),
    )
    refused_in_handshake(dial(server, stranger, "a", connections), hub)


def test_an_expired_certificate_is_refused_in_the_handshake(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    expired = read_certificate(pki["silo-a-expired"] / CERT_FILE)
    assert expired.not_valid_after_utc < dt.datetime.now(dt.UTC)
    refused_in_handshake(
        dial(server, raw_credentials(pki["silo-a-expired"]), "a", connections), hub
    )


def test_a_silo_certificate_presented_as_the_hub_is_refused_by_the_silo(
    pki: Pki, connections: list[HubConnection]
) -> None:
    impostor_hub = ToyHub()
    impostor = grpc.ssl_server_credentials(
        [((pki["silo-b"] / KEY_FILE).read_bytes(), (pki["silo-b"] / CERT_FILE).read_bytes())],
        root_certificates=(pki["silo-b"] / CA_CERT_FILE).read_bytes(),
        require_client_auth=True,
    )
    with start_hub_server(impostor_hub, credentials=impostor) as srv:
        conn = dial(srv, channel_credentials(pki["silo-a"]), "a", connections)
        error = refused_in_handshake(conn, impostor_hub)
    assert "certificate" in str(error)


def test_a_silo_certificate_covering_the_hub_name_is_still_refused_as_the_hub(
    pki: Pki, connections: list[HubConnection]
) -> None:
    """The silo refuses by key usage, not only because the name does not match."""
    ca_cert = read_certificate(pki["ca"] / CA_CERT_FILE)
    ca_key, _ = read_private_key(pki["ca"] / "ca.key")
    silo_key, silo_key_pem = read_private_key(pki["silo-b"] / KEY_FILE)
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HUB)]))
        .issuer_name(ca_cert.subject)
        .public_key(silo_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(HUB), x509.DNSName("localhost")]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    impostor = grpc.ssl_server_credentials(
        [(silo_key_pem, forged.public_bytes(Encoding.PEM))],
        root_certificates=(pki["ca"] / CA_CERT_FILE).read_bytes(),
        require_client_auth=True,
    )
    impostor_hub = ToyHub()
    with start_hub_server(impostor_hub, credentials=impostor) as srv:
        conn = connect_to_hub(
            srv.address,
            make_hello("a"),
            Inbox(),
            credentials=channel_credentials(pki["silo-a"]),
            server_name=HUB,
        )
        connections.append(conn)
        error = refused_in_handshake(conn, impostor_hub)
    assert "unsupported certificate purpose" in str(error)


def test_a_valid_certificate_not_in_the_roster_is_refused_by_the_hub(
    pki: Pki, tmp_path: Path, connections: list[HubConnection]
) -> None:
    from fedsql.config.contract import load_contract
    from fedsql.demo.generator import demo_files
    from fedsql.hub.coordinator import Hub
    from fedsql.secagg.enrolment import SiloCredentials, build_roster
    from fedsql.secagg.identity import IdentityKey
    from fedsql.secagg.roster import Authority

    contract = load_contract(demo_files() / "contract.toml")
    coordinator = IdentityKey.generate()
    enrolled = SiloCredentials.generate("a")
    roster = Authority.generate().sign(
        build_roster(
            contract.federation_id,
            1,
            contract.fingerprint,
            coordinator.public_bytes,
            [enrolled.request],
        )
    )
    hub = Hub(contract, roster=roster, coordinator=coordinator)
    with start_hub_server(hub, credentials=server_credentials(pki["hub"])) as srv:
        outsider = dial(srv, channel_credentials(pki["silo-b"]), "b", connections)
        with pytest.raises(ProtocolError, match="silo b is not enrolled"):
            outsider.welcome(timeout=WAIT_S)
        # The enrolled silo's certificate passes TLS and binding too: the roster is what decides
        # (here it refuses the toy Hello's key, which the roster does not list).
        member = dial(srv, channel_credentials(pki["silo-a"]), "a", connections)
        with pytest.raises(ProtocolError, match="silo a presents a key the roster does not list"):
            member.welcome(timeout=WAIT_S)
        assert hub.registry.snapshot()[1] == []


# -- binding identities to calls --------------------------------------------------------------


def test_a_silo_certificate_cannot_say_hello_as_another_silo(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    conn = dial(server, channel_credentials(pki["silo-a"]), "b", connections)
    with pytest.raises(
        ProtocolError, match="certificate is for silo a; it cannot connect as silo b"
    ):
        conn.welcome(timeout=WAIT_S)
    assert hub.events == []


def test_a_bound_stream_cannot_carry_another_silos_messages(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    conn = dial(server, channel_credentials(pki["silo-a"]), "a", connections)
    conn.welcome(timeout=WAIT_S)
    query = make_query(qid_for("q"), ("a", "b"))
    conn.send(make_upload(query, "a"))
    hub.wait_for(lambda: len(hub.messages) == 1)
    conn.send(make_upload(query, "b"))
    assert conn.wait_closed(WAIT_S)
    assert isinstance(conn.error, ProtocolError)
    assert [silo for silo, _ in hub.messages] == ["a"]
    assert isinstance(hub.messages[0][1], MaskedUpload)
    hub.wait_for(lambda: hub.count("disconnect", "a") == 1)


def test_messages_flow_both_ways_on_a_bound_stream(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    inbox = Inbox()
    conn = connect_to_hub(
        server.address, make_hello("a"), inbox, credentials=channel_credentials(pki["silo-a"])
    )
    connections.append(conn)
    conn.welcome(timeout=WAIT_S)
    query = make_query(qid_for("both"), ("a",))
    hub.channels["a"].send(query)
    assert inbox.wait_for(1) == [query]
    conn.send(make_upload(query, "a"))
    hub.wait_for(lambda: len(hub.messages) == 1)


def test_a_hub_certificate_presented_by_a_client_is_refused_in_the_handshake(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    refused_in_handshake(dial(server, raw_credentials(pki["hub"]), "a", connections), hub)


def test_an_analyst_certificate_cannot_open_a_silo_stream(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    conn = dial(server, channel_credentials(pki["analyst-ana"]), "a", connections)
    with pytest.raises(
        ProtocolError, match=r"an analyst certificate \(analyst ana\) cannot call Coordinator"
    ):
        conn.welcome(timeout=WAIT_S)
    assert hub.events == []


def test_refused_streams_do_not_hold_stream_slots(
    pki: Pki, hub: ToyHub, connections: list[HubConnection]
) -> None:
    with start_hub_server(
        hub, credentials=server_credentials(pki["hub"]), max_workers=2
    ) as srv:  # one silo stream
        for _ in range(3):
            wrong = dial(srv, channel_credentials(pki["analyst-ana"]), "a", connections)
            with pytest.raises(ProtocolError):
                wrong.welcome(timeout=WAIT_S)
        right = dial(srv, channel_credentials(pki["silo-a"]), "a", connections)
        right.welcome(timeout=WAIT_S)
        assert srv.open_streams == 1


def test_an_analyst_calls_the_hub_in_its_own_name(pki: Pki, server: RunningServer) -> None:
    with AnalystClient(
        server.address, channel_credentials(pki["analyst-ana"]), timeout_s=WAIT_S
    ) as client:
        assert client.status().silos == ()
        reply = client.execute(ExecuteRequest(sql="SELECT 1", analyst="ana"))
        assert reply.explain == ("SELECT 1",)
        with pytest.raises(
            ProtocolError, match="certificate is for analyst ana; it cannot act as analyst bob"
        ):
            client.execute(ExecuteRequest(sql="SELECT 1", analyst="bob"))


class StreamingHub(ToyHub):
    """A toy hub that also streams progress."""

    def execute_stream(self, req: ExecuteRequest) -> Iterator[ExecuteProgress | ExecuteReply]:
        yield ExecuteProgress(silos=(SiloStatus(silo_id="a", status="running"),))
        yield ExecuteReply(report_json="{}", explain=(req.sql,))


def test_streaming_analyst_calls_are_bound_too(pki: Pki) -> None:
    with (
        start_hub_server(StreamingHub(), credentials=server_credentials(pki["hub"])) as srv,
        AnalystClient(srv.address, channel_credentials(pki["analyst-ana"]), timeout_s=WAIT_S) as ok,
    ):
        events: list[ExecuteProgress] = []
        reply = ok.execute_stream(ExecuteRequest(sql="SELECT 2", analyst="ana"), events.append)
        assert reply.explain == ("SELECT 2",)
        assert [e.silos[0].status for e in events] == ["running"]
        with pytest.raises(ProtocolError, match="cannot act as analyst eve"):
            ok.execute_stream(ExecuteRequest(sql="SELECT 2", analyst="eve"), events.append)
        assert len(events) == 1


def test_a_silo_certificate_cannot_make_analyst_calls(
    pki: Pki, hub: ToyHub, server: RunningServer
) -> None:
    with AnalystClient(
        server.address, channel_credentials(pki["silo-a"]), timeout_s=WAIT_S
    ) as client:
        with pytest.raises(
            ProtocolError, match=r"a silo certificate \(silo a\) cannot call Analyst"
        ):
            client.status()
        with pytest.raises(ProtocolError, match="cannot call Analyst"):
            client.execute(ExecuteRequest(sql="SELECT 1", analyst="a"))


def test_refusals_carry_permission_denied_on_the_wire(pki: Pki, server: RunningServer) -> None:
    from fedsql.transport.codec import to_proto
    from fedsql.transport.messages import StatusRequest
    from fedsql.transport.proto import fedsql_pb2_grpc as pb_grpc

    channel = grpc.secure_channel(server.address, channel_credentials(pki["silo-a"]))
    try:
        with pytest.raises(grpc.RpcError) as info:
            pb_grpc.AnalystStub(channel).Status(to_proto(StatusRequest()), timeout=WAIT_S)
    finally:
        channel.close()
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_hub_serving_tls_without_client_certificates_refuses_every_call(
    pki: Pki, hub: ToyHub, connections: list[HubConnection]
) -> None:
    hub_folder = pki["hub"]
    server_only = grpc.ssl_server_credentials(
        [((hub_folder / KEY_FILE).read_bytes(), (hub_folder / CERT_FILE).read_bytes())],
        require_client_auth=False,
    )
    trusting_only = grpc.ssl_channel_credentials((hub_folder / CA_CERT_FILE).read_bytes())
    with start_hub_server(hub, credentials=server_only) as srv:
        with (
            AnalystClient(srv.address, trusting_only, timeout_s=WAIT_S) as client,
            pytest.raises(ProtocolError, match="Analyst needs a client certificate naming an"),
        ):
            client.status()
        conn = dial(srv, trusting_only, "a", connections)
        with pytest.raises(ProtocolError, match="needs a client certificate naming a silo"):
            conn.welcome(timeout=WAIT_S)
    assert hub.events == []


def test_plaintext_clients_cannot_reach_an_mtls_hub(hub: ToyHub, server: RunningServer) -> None:
    with (
        AnalystClient(server.address, timeout_s=WAIT_S) as client,
        pytest.raises(OperationalError),
    ):
        client.status()


# -- naming the hub ---------------------------------------------------------------------------


def test_the_hub_name_checks_a_certificate_that_does_not_cover_the_dialled_host(
    pki: Pki, hub: ToyHub, connections: list[HubConnection]
) -> None:
    with start_hub_server(hub, credentials=server_credentials(pki["hub-named-only"])) as srv:
        by_address = dial(srv, channel_credentials(pki["silo-a"]), "a", connections)
        with pytest.raises(OperationalError, match="does not cover the address dialled"):
            by_address.welcome(timeout=WAIT_S)
        by_name = connect_to_hub(
            srv.address,
            make_hello("a"),
            Inbox(),
            credentials=channel_credentials(pki["silo-a"]),
            server_name=HUB,
        )
        connections.append(by_name)
        by_name.welcome(timeout=WAIT_S)
        with pytest.raises(OperationalError, match="does not cover"):
            AnalystClient(
                srv.address,
                channel_credentials(pki["analyst-ana"]),
                timeout_s=WAIT_S,
                server_name="another-hub",
            ).status()


def test_a_server_name_without_credentials_is_a_usage_error() -> None:
    with pytest.raises(InterfaceError, match="server_name"):
        AnalystClient("127.0.0.1:1", server_name=HUB)


# -- loading identity folders -----------------------------------------------------------------


def test_each_role_loads_where_it_belongs(pki: Pki) -> None:
    assert read_identity(pki["silo-a"]) == PeerIdentity("silo", "a")
    assert read_identity(pki["analyst-ana"]) == PeerIdentity("analyst", "ana")
    channel_credentials(pki["silo-a"], expect=PeerIdentity("silo", "a"))
    with pytest.raises(ConfigError, match="the hub serves with a hub certificate"):
        server_credentials(pki["silo-a"])
    with pytest.raises(ConfigError, match="a hub certificate cannot dial the hub"):
        channel_credentials(pki["hub"])
    with pytest.raises(ConfigError, match="is for silo a, not silo b"):
        channel_credentials(pki["silo-a"], expect=PeerIdentity("silo", "b"))


def test_an_expired_certificate_is_refused_when_loaded(pki: Pki) -> None:
    with pytest.raises(ConfigError, match="the certificate expired on") as info:
        channel_credentials(pki["silo-a-expired"])
    assert info.value.file == str(pki["silo-a-expired"] / CERT_FILE)


def test_a_certificate_of_another_ca_is_refused_when_loaded(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in (CERT_FILE, KEY_FILE):
        (folder / name).write_bytes((pki["silo-a-other-ca"] / name).read_bytes())
        (folder / name).chmod(0o600)
    (folder / CA_CERT_FILE).write_bytes((pki["silo-a"] / CA_CERT_FILE).read_bytes())
    with pytest.raises(ConfigError, match="not issued by the CA"):
        channel_credentials(folder)


def test_a_key_that_is_not_the_certificates_is_refused(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "swapped"
    folder.mkdir()
    for source, name in ((pki["silo-a"], CERT_FILE), (pki["silo-b"], KEY_FILE)):
        write_file(folder / name, (source / name).read_bytes(), secret=name == KEY_FILE)
    write_file(folder / CA_CERT_FILE, (pki["silo-a"] / CA_CERT_FILE).read_bytes(), secret=False)
    with pytest.raises(ConfigError, match=r"not the key of tls\.crt"):
        channel_credentials(folder)


def test_a_key_open_to_others_is_refused(pki: Pki, tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    for name in (CA_CERT_FILE, CERT_FILE, KEY_FILE):
        (folder / name).write_bytes((pki["silo-a"] / name).read_bytes())
    (folder / KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        channel_credentials(folder)
    (folder / KEY_FILE).chmod(0o600)
    assert read_identity(folder) == PeerIdentity("silo", "a")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        server_credentials(tmp_path)
    assert info.value.file == str(tmp_path / CA_CERT_FILE)


# -- plaintext on loopback only ---------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1:0", "127.8.9.10:7700", "localhost:7700", "LOCALHOST:1", "[::1]:7700", "unix:/s"],
)
def test_plaintext_may_bind_loopback(address: str) -> None:
    assert is_loopback(address)
    check_insecure_bind(address)
    check_insecure_target(address)


@pytest.mark.parametrize(
    "address", ["0.0.0.0:7700", "[::]:7700", "10.0.0.5:7700", "hub.example.org:443", ":7700"]
)
def test_plaintext_is_refused_beyond_loopback(address: str) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        check_insecure_bind(address)
    with pytest.raises(ConfigError, match="no TLS credentials"):
        check_insecure_target(address)


def test_an_address_without_a_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="not a host:port address"):
        check_insecure_bind("127.0.0.1")


def test_the_server_refuses_plaintext_beyond_loopback() -> None:
    with pytest.raises(ConfigError, match="loopback"):
        start_hub_server(ToyHub(), "0.0.0.0:0")


def test_clients_refuse_plaintext_beyond_loopback() -> None:
    with pytest.raises(ConfigError, match="no TLS credentials"):
        AnalystClient("10.0.0.5:7700")
    with pytest.raises(ConfigError, match="no TLS credentials"):
        connect_to_hub("hub.example.org:443", make_hello("a"), Inbox())


def test_mtls_may_bind_every_interface(pki: Pki, hub: ToyHub) -> None:
    credentials = server_credentials(pki["hub"])
    with (
        start_hub_server(hub, "0.0.0.0:0", credentials=credentials) as srv,
        AnalystClient(
            f"127.0.0.1:{srv.port}", channel_credentials(pki["analyst-ana"]), timeout_s=WAIT_S
        ) as client,
    ):
        assert client.status().silos == ()


def test_concurrent_silos_are_each_bound_to_their_own_certificate(
    pki: Pki, hub: ToyHub, server: RunningServer, connections: list[HubConnection]
) -> None:
    results: dict[str, str] = {}

    def join(silo: str) -> None:
        conn = dial(server, channel_credentials(pki[f"silo-{silo}"]), silo, connections)
        results[silo] = ",".join(e.silo_id for e in conn.welcome(timeout=WAIT_S).roster)

    threads = [threading.Thread(target=join, args=(s,)) for s in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert set(results) == {"a", "b"}
    assert sorted(hub.channels) == ["a", "b"]
