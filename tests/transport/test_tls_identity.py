"""What a certificate names: identity URIs, name rules, and certificates whose copies disagree."""

from __future__ import annotations

import datetime as dt
import doctest
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from fedsql.transport import authorize, tls, tls_identity
from fedsql.transport.tls_identity import (
    ROLES,
    PeerIdentity,
    certificate_identity,
    identity_uri,
    name_problem,
    parse_identity_uri,
)

SLUGS = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
ANALYSTS = st.from_regex(r"[A-Za-z0-9._@+-]{1,64}", fullmatch=True)


@pytest.mark.parametrize("module", [authorize, tls, tls_identity], ids=lambda m: m.__name__)
def test_docstring_examples_hold(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@given(role=st.sampled_from(("hub", "silo")), name=SLUGS)
def test_hub_and_silo_uris_round_trip(role: str, name: str) -> None:
    identity = PeerIdentity(role, name)  # type: ignore[arg-type]
    assert parse_identity_uri(identity.uri) == identity


@given(name=ANALYSTS)
def test_analyst_uris_round_trip(name: str) -> None:
    assert parse_identity_uri(identity_uri("analyst", name)) == PeerIdentity("analyst", name)


@pytest.mark.parametrize(
    "uri",
    [
        "fedsql:silo:",
        "fedsql:silo:a:b",
        "fedsql:silo:A",
        "fedsql:root:a",
        "fedsql:analyst:bob smith",
        "spiffe://fed/silo/a",
        "fedsql:silo",
    ],
)
def test_malformed_uris_name_nobody(uri: str) -> None:
    assert parse_identity_uri(uri) is None


def test_every_role_has_a_name_rule() -> None:
    assert ROLES == ("hub", "silo", "analyst")
    assert all(name_problem(role, "a") is None for role in ROLES)
    assert name_problem("silo", "a" * 64) is not None
    assert name_problem("analyst", "a" * 65) is not None


KEY = ec.generate_private_key(ec.SECP256R1())


def certificate(
    *,
    ou: str = "silo",
    cn: str = "a",
    uris: tuple[str, ...] = ("fedsql:silo:a",),
    usage: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CLIENT_AUTH,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate that writes its identity as told (self-signed: only its contents matter)."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(u) for u in uris] + [x509.DNSName("x")]
            ),
            critical=False,
        )
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(KEY, hashes.SHA256())


def test_a_consistent_certificate_names_its_identity() -> None:
    assert certificate_identity(certificate()) == PeerIdentity("silo", "a")
    hub = certificate(
        ou="hub", cn="h", uris=("fedsql:hub:h",), usage=ExtendedKeyUsageOID.SERVER_AUTH
    )
    assert certificate_identity(hub) == PeerIdentity("hub", "h")


@pytest.mark.parametrize(
    "cert_args",
    [
        {"ou": "hub"},
        {"cn": "b"},
        {"uris": ()},
        {"uris": ("fedsql:silo:a", "fedsql:silo:b")},
        {"uris": ("fedsql:silo:A",)},
        {"usage": ExtendedKeyUsageOID.SERVER_AUTH},
        {"usage": None},
        {"ca": True},
    ],
    ids=lambda args: ",".join(f"{k}={v}" for k, v in args.items()),
)
def test_a_certificate_whose_copies_disagree_names_nobody(cert_args: dict[str, object]) -> None:
    assert certificate_identity(certificate(**cert_args)) is None  # type: ignore[arg-type]


def test_a_foreign_uri_beside_the_identity_is_ignored() -> None:
    cert = certificate(uris=("spiffe://elsewhere/x", "fedsql:silo:a"))
    assert certificate_identity(cert) == PeerIdentity("silo", "a")
