"""Ed25519 identities: RFC 8032 answers, message signatures, and key files kept private."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from fedsql.errors import ConfigError, ProtocolError
from fedsql.secagg.identity import (
    IdentityKey,
    Signable,
    sign_message,
    signed_digest,
    verify_message,
    verify_signature,
)
from fedsql.secagg.keyfiles import read_key_file, write_key_file
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.messages import Abort, MaskedUpload, UnmaskRequest, UnmaskResponse

from .harness import identity_for, make_descriptor, make_federation

# RFC 8032 section 7.1, tests 1 and 2.
RFC_CASES = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC_CASES)
def test_signatures_match_rfc8032(secret: str, public: str, message: str, signature: str) -> None:
    key = IdentityKey.from_private_bytes(bytes.fromhex(secret))
    assert key.public_bytes.hex() == public
    assert key.sign(bytes.fromhex(message)).hex() == signature
    assert verify_signature(key.public_bytes, bytes.fromhex(message), bytes.fromhex(signature))


def test_a_signature_fails_on_any_change_of_message_signature_or_key() -> None:
    key, other = identity_for("id/a"), identity_for("id/b")
    sig = key.sign(b"roster bytes")
    assert verify_signature(key.public_bytes, b"roster bytes", sig)
    assert not verify_signature(key.public_bytes, b"roster bytez", sig)
    assert not verify_signature(other.public_bytes, b"roster bytes", sig)
    for i in (0, 31, 32, 63):
        flipped = bytearray(sig)
        flipped[i] ^= 0x01
        assert not verify_signature(key.public_bytes, b"roster bytes", bytes(flipped))
    assert not verify_signature(key.public_bytes, b"roster bytes", b"")
    assert not verify_signature(key.public_bytes, b"roster bytes", sig[:63])
    assert not verify_signature(b"short", b"roster bytes", sig)


def test_identity_key_hides_its_private_half_and_checks_consistency() -> None:
    key = identity_for("id/repr")
    assert key.private_bytes.hex() not in repr(key)
    assert "private" not in repr(key)
    with pytest.raises(ProtocolError, match="does not belong"):
        IdentityKey(private_bytes=key.private_bytes, public_bytes=identity_for("x").public_bytes)
    with pytest.raises(ProtocolError, match="32 bytes"):
        IdentityKey.from_private_bytes(b"short")
    a, b = IdentityKey.generate(), IdentityKey.generate()
    assert a.public_bytes != b.public_bytes
    assert IdentityKey.from_private_bytes(a.private_bytes) == a


def _messages() -> list[Signable]:
    fed = make_federation(3, label="id/messages")
    qid, hq = bytes(range(16)), bytes(range(32))
    return [
        make_descriptor(fed, cells=2),
        MaskedUpload(qid, "clinic-000", hq, bytes(16), bytes(32), (("clinic-001", bytes(82)),)),
        UnmaskRequest(qid, hq, ("clinic-000", "clinic-001"), ("clinic-002",), ()),
        UnmaskResponse(qid, "clinic-000", hq, (), (("clinic-002", bytes(16)),)),
        Abort(qid, "too few uploads"),
        fed.roster,
    ]


@pytest.mark.parametrize("index", range(6))
def test_every_signed_message_verifies_and_any_altered_field_breaks_it(index: int) -> None:
    message = _messages()[index]
    key = identity_for("id/signer")
    signed = sign_message(message, key)
    assert len(signed.signature) == 64
    assert signed.canonical() == message.canonical()
    assert signed.signature == key.sign(signed_digest(signed))
    verify_message(signed, key.public_bytes, "the message")
    with pytest.raises(ProtocolError, match="does not verify"):
        verify_message(signed, identity_for("id/other").public_bytes, "the message")
    with pytest.raises(ProtocolError, match="not signed"):
        verify_message(message, key.public_bytes, "the message")
    checked = 0
    for f in dataclasses.fields(signed):
        if f.name == "signature" or not f.init:
            continue
        value = getattr(signed, f.name)
        altered = _alter(value)
        if altered is None:
            continue
        try:
            changed = dataclasses.replace(signed, **{f.name: altered})
        except ProtocolError:
            continue  # the change itself is malformed
        if changed.canonical() == signed.canonical():
            continue  # a field outside the signed part (the M2 ciphertexts)
        with pytest.raises(ProtocolError, match="does not verify"):
            verify_message(changed, key.public_bytes, "the message")
        checked += 1
    assert checked >= 2


def _alter(value: object) -> object | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:] if value else b"x" * 32
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple) and value:
        return value[:-1]
    return None


def test_key_files_roundtrip_with_owner_only_permissions(tmp_path: Path) -> None:
    key = identity_for("id/file")
    path = tmp_path / "silo.ed25519"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key.private_bytes
    assert IdentityKey.load(path) == key
    x25519 = SiloKeyPair.from_private_bytes(bytes(range(32)))
    write_key_file(tmp_path / "silo.x25519", x25519.private_bytes)
    assert SiloKeyPair.from_private_bytes(read_key_file(tmp_path / "silo.x25519", 32)) == x25519
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silo.ed25519", "silo.x25519"]


def test_key_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        write_key_file(tmp_path / "k", bytes(32))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_an_existing_key_file_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "silo.ed25519"
    identity_for("id/first").save(path)
    with pytest.raises(ConfigError, match="already exists"):
        identity_for("id/second").save(path)
    assert IdentityKey.load(path) == identity_for("id/first")
    assert [p.name for p in tmp_path.iterdir()] == ["silo.ed25519"]  # no temporary left
    identity_for("id/second").save(path, overwrite=True)
    assert IdentityKey.load(path) == identity_for("id/second")


def test_exposed_short_or_missing_key_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "silo.ed25519"
    identity_for("id/exposed").save(path)
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600") as info:
        IdentityKey.load(path)
    assert info.value.file == str(path)
    path.chmod(0o604)
    with pytest.raises(ConfigError, match="group or others"):
        IdentityKey.load(path)
    path.chmod(0o600)
    path.write_bytes(bytes(31))
    with pytest.raises(ConfigError, match="exactly 32 bytes"):
        IdentityKey.load(path)
    path.write_bytes(bytes(33))
    with pytest.raises(ConfigError, match="exactly 32 bytes"):
        IdentityKey.load(path)
    with pytest.raises(ConfigError, match="cannot open"):
        IdentityKey.load(tmp_path / "missing")
    with pytest.raises(ConfigError, match="regular file"):
        read_key_file(tmp_path, 32)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    identity_for("id/link").save(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="cannot open"):
        IdentityKey.load(link)
    with pytest.raises(ConfigError, match="cannot create"):
        write_key_file(tmp_path / "no-such-dir" / "k", bytes(32))
