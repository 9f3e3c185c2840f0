"""Small files in a silo's state folder: its audit-signing key and the pinned roster version."""

from __future__ import annotations

from pathlib import Path

from fedsql.secagg.identity import IdentityKey


def audit_signer(state: Path, silo_id: str, identity: IdentityKey | None) -> IdentityKey:
    """The key that signs this silo's audit log: its enrolled identity, or a key of its own.

    The public half is written beside the log (``<id>.audit.pub``) so anyone can verify it.
    """
    if identity is not None:
        key = identity
    else:
        path = state / f"{silo_id}.audit.key"
        if path.exists():
            key = IdentityKey.load(path)
        else:
            key = IdentityKey.generate()
            key.save(path)
    (state / f"{silo_id}.audit.pub").write_text(key.public_bytes.hex() + "\n")
    return key


class RosterPin:
    """The highest roster version this silo accepted, kept in a file so it never goes back."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def version(self) -> int:
        """The pinned version (0 when none is pinned yet)."""
        try:
            return int(self.path.read_text())
        except (OSError, ValueError):
            return 0

    def pin(self, version: int) -> None:
        """Pin ``version`` (atomically: a crash leaves the old or the new pin)."""
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(version))
        tmp.replace(self.path)
