"""The federation's CA and the certificates it issues: contents, files, permissions, refusals."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fedsql.errors import ConfigError
from fedsql.transport.tls import (
    CA_CERT_FILE,
    CA_KEY_FILE,
    CERT_FILE,
    KEY_FILE,
    PeerIdentity,
    init_ca,
    issue,
    read_identity,
)
from fedsql.transport.tls_files import read_certificate, read_private_key


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("authority") / "ca"
    init_ca(folder, "authority test CA", days=400)
    return folder


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_ca_is_a_p256_root_that_signs_certificates_only(ca: Path) -> None:
    cert = read_certificate(ca / CA_CERT_FILE)
    key, _ = read_private_key(ca / CA_KEY_FILE)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "authority test CA"
    cert.verify_directly_issued_by(cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and not usage.value.digital_signature
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=400) < lifetime < dt.timedelta(days=400, minutes=10)


def test_ca_files_are_private_where_they_must_be(ca: Path) -> None:
    assert mode(ca) == 0o700
    assert mode(ca / CA_KEY_FILE) == 0o600
    assert mode(ca / CA_CERT_FILE) == 0o644


def test_a_ca_is_never_overwritten(ca: Path) -> None:
    before = (ca / CA_KEY_FILE).read_bytes()
    with pytest.raises(ConfigError, match="already holds a CA") as info:
        init_ca(ca)
    assert info.value.file == str(ca / CA_KEY_FILE)
    assert (ca / CA_KEY_FILE).read_bytes() == before


@pytest.mark.parametrize(("name", "days"), [("", 10), ("x" * 65, 10), ("ok", 0), ("ok", -1)])
def test_ca_arguments_are_checked(tmp_path: Path, name: str, days: int) -> None:
    with pytest.raises(ConfigError):
        init_ca(tmp_path / "ca", name, days=days)
    assert not (tmp_path / "ca" / CA_KEY_FILE).exists()


def test_a_hub_certificate_serves_and_covers_its_name_and_hosts(ca: Path, tmp_path: Path) -> None:
    issued = issue(
        ca, "hub", "hub-eu", tmp_path / "hub", days=7, hosts=("10.1.2.3", "Hub.Example.org.")
    )
    cert = read_certificate(tmp_path / "hub" / CERT_FILE)
    ca_cert = read_certificate(ca / CA_CERT_FILE)
    cert.verify_directly_issued_by(ca_cert)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["fedsql:hub:hub-eu"]
    assert san.get_values_for_type(x509.DNSName) == ["hub-eu", "hub.example.org"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.subject.rfc4514_string() == "CN=hub-eu,OU=hub"
    assert issued.identity == PeerIdentity("hub", "hub-eu")
    assert issued.hosts == ("10.1.2.3", "hub-eu", "hub.example.org")
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert issued.not_after - issued.not_before == dt.timedelta(days=7, minutes=5)


def test_a_hub_certificate_covers_loopback_by_default(ca: Path, tmp_path: Path) -> None:
    issued = issue(ca, "hub", "hub", tmp_path / "hub")
    assert issued.hosts == ("127.0.0.1", "hub", "localhost")


@pytest.mark.parametrize(("role", "name"), [("silo", "san-francisco"), ("analyst", "bob@ex.org")])
def test_silo_and_analyst_certificates_are_client_certificates(
    ca: Path, tmp_path: Path, role: str, name: str
) -> None:
    issue(ca, role, name, tmp_path / "id")  # type: ignore[arg-type]
    cert = read_certificate(tmp_path / "id" / CERT_FILE)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == []
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"fedsql:{role}:{name}"]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not constraints.ca
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert key_usage.digital_signature and not key_usage.key_cert_sign
    assert read_identity(tmp_path / "id") == PeerIdentity(role, name)  # type: ignore[arg-type]


def test_an_identity_folder_holds_private_key_certificate_and_ca(ca: Path, tmp_path: Path) -> None:
    issue(ca, "silo", "seoul", tmp_path / "seoul")
    assert mode(tmp_path / "seoul") == 0o700
    assert mode(tmp_path / "seoul" / KEY_FILE) == 0o600
    assert mode(tmp_path / "seoul" / CERT_FILE) == 0o644
    assert (tmp_path / "seoul" / CA_CERT_FILE).read_bytes() == (ca / CA_CERT_FILE).read_bytes()
    assert sorted(p.name for p in (tmp_path / "seoul").iterdir()) == [
        CA_CERT_FILE,
        CERT_FILE,
        KEY_FILE,
    ]


def test_every_certificate_gets_its_own_key_and_serial(ca: Path, tmp_path: Path) -> None:
    issue(ca, "silo", "a", tmp_path / "a")
    issue(ca, "silo", "b", tmp_path / "b")
    a, b = (read_certificate(tmp_path / s / CERT_FILE) for s in ("a", "b"))
    assert a.serial_number != b.serial_number
    assert a.public_key() != b.public_key()


def test_an_issued_certificate_is_never_overwritten_unless_replaced(
    ca: Path, tmp_path: Path
) -> None:
    issue(ca, "silo", "a", tmp_path / "a")
    first = (tmp_path / "a" / KEY_FILE).read_bytes()
    with pytest.raises(ConfigError, match="already holds a certificate"):
        issue(ca, "silo", "a", tmp_path / "a")
    assert (tmp_path / "a" / KEY_FILE).read_bytes() == first
    issue(ca, "silo", "a", tmp_path / "a", replace=True)
    assert (tmp_path / "a" / KEY_FILE).read_bytes() != first
    assert read_identity(tmp_path / "a") == PeerIdentity("silo", "a")


def test_a_folder_of_another_federation_is_refused(ca: Path, tmp_path: Path) -> None:
    init_ca(tmp_path / "other", "other CA")
    issue(tmp_path / "other", "silo", "a", tmp_path / "a")
    with pytest.raises(ConfigError, match="certificate of another CA"):
        issue(ca, "silo", "a", tmp_path / "a", replace=True)


def test_a_certificate_cannot_outlive_its_ca(ca: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="outlive the CA"):
        issue(ca, "silo", "a", tmp_path / "a", days=401)
    assert not (tmp_path / "a" / KEY_FILE).exists()


def test_an_explicit_start_gives_an_exact_validity(ca: Path, tmp_path: Path) -> None:
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    issued = issue(ca, "silo", "a", tmp_path / "a", days=2, not_before=start)
    assert (issued.not_before, issued.not_after) == (start, start + dt.timedelta(days=2))
    with pytest.raises(ConfigError, match="timezone-aware"):
        issue(ca, "silo", "b", tmp_path / "b", not_before=dt.datetime(2020, 1, 1))


@pytest.mark.parametrize(
    ("role", "name", "key"),
    [
        ("silo", "San Francisco", "name"),
        ("silo", "-a", "name"),
        ("hub", "hub.example.org", "name"),
        ("analyst", "bob smith", "name"),
        ("analyst", "a:b", "name"),
        ("auditor", "x", "role"),
    ],
)
def test_names_that_cannot_be_identities_are_refused(
    ca: Path, tmp_path: Path, role: str, name: str, key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        issue(ca, role, name, tmp_path / "x")  # type: ignore[arg-type]
    assert info.value.key == key
    assert not (tmp_path / "x").exists()


def test_hosts_are_for_hub_certificates_only(ca: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only hub certificates"):
        issue(ca, "silo", "a", tmp_path / "a", hosts=("localhost",))
    with pytest.raises(ConfigError, match="neither an IP address nor a DNS name"):
        issue(ca, "hub", "hub", tmp_path / "h", hosts=("not a host",))


def test_issuing_needs_a_readable_private_ca_key(ca: Path, tmp_path: Path) -> None:
    copy = tmp_path / "ca"
    copy.mkdir()
    (copy / CA_CERT_FILE).write_bytes((ca / CA_CERT_FILE).read_bytes())
    with pytest.raises(ConfigError, match="does not exist"):
        issue(copy, "silo", "a", tmp_path / "a")
    (copy / CA_KEY_FILE).write_bytes((ca / CA_KEY_FILE).read_bytes())
    (copy / CA_KEY_FILE).chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        issue(copy, "silo", "a", tmp_path / "a")
    (copy / CA_KEY_FILE).chmod(0o600)
    assert issue(copy, "silo", "a", tmp_path / "a").identity == PeerIdentity("silo", "a")


def test_a_leaf_certificate_cannot_act_as_the_ca(ca: Path, tmp_path: Path) -> None:
    issue(ca, "silo", "a", tmp_path / "a")
    fake_ca = tmp_path / "fake-ca"
    fake_ca.mkdir()
    (fake_ca / CA_CERT_FILE).write_bytes((tmp_path / "a" / CERT_FILE).read_bytes())
    (fake_ca / CA_KEY_FILE).write_bytes((tmp_path / "a" / KEY_FILE).read_bytes())
    (fake_ca / CA_KEY_FILE).chmod(0o600)
    with pytest.raises(ConfigError, match="not a CA certificate"):
        issue(fake_ca, "silo", "b", tmp_path / "b")
