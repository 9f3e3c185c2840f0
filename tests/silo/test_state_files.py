"""A silo's small state files: the audit key survives restarts, the roster pin is atomic."""

from __future__ import annotations

from pathlib import Path

from fedsql.secagg.identity import IdentityKey
from fedsql.silo.state_files import RosterPin, audit_signer


def test_an_unenrolled_silo_keeps_one_audit_key_across_restarts(tmp_path: Path) -> None:
    first = audit_signer(tmp_path, "a", None)
    again = audit_signer(tmp_path, "a", None)
    assert first.public_bytes == again.public_bytes
    assert (tmp_path / "a.audit.pub").read_text().strip() == first.public_bytes.hex()


def test_an_enrolled_silo_signs_its_log_with_its_identity(tmp_path: Path) -> None:
    identity = IdentityKey.generate()
    assert audit_signer(tmp_path, "a", identity) is identity
    assert not (tmp_path / "a.audit.key").exists()


def test_the_roster_pin_starts_at_zero_and_keeps_what_was_pinned(tmp_path: Path) -> None:
    pin = RosterPin(tmp_path / "a.roster-version")
    assert pin.version() == 0
    pin.pin(7)
    assert RosterPin(tmp_path / "a.roster-version").version() == 7
    (tmp_path / "a.roster-version").write_text("garbage")
    assert pin.version() == 0  # unreadable: nothing pinned, the roster check still applies
    assert not (tmp_path / "a.roster-version.tmp").exists()
