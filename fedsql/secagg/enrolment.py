"""Enrolment: a silo's private keys, the public request it sends, and the roster built from them.

A silo generates its keys locally (an Ed25519 identity and an X25519 key) and keeps them in its
state folder with 0600 permissions; only the public halves travel, in an enrolment request, to the
enrolment authority, which signs the roster (:class:`~fedsql.secagg.roster.Authority`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedsql.errors import ConfigError
from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.keyfiles import read_key_file, write_key_file
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.roster import Roster, RosterEntry

IDENTITY_FILE = "identity.key"
X25519_FILE = "x25519.key"
REQUEST_FILE = "enrolment.json"


@dataclass(frozen=True)
class EnrolmentRequest:
    """The public half of a silo's credentials, as the enrolment authority receives it."""

    silo_id: str
    x25519_public: bytes
    ed25519_public: bytes

    def to_json(self) -> str:
        """JSON text with hex keys."""
        return json.dumps(
            {
                "silo_id": self.silo_id,
                "x25519_public": self.x25519_public.hex(),
                "ed25519_public": self.ed25519_public.hex(),
            },
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> EnrolmentRequest:
        """Parse :meth:`to_json` output.

        Raises:
            ConfigError: The text is not an enrolment request.
        """
        try:
            body = json.loads(text)
            return cls(
                silo_id=str(body["silo_id"]),
                x25519_public=bytes.fromhex(body["x25519_public"]),
                ed25519_public=bytes.fromhex(body["ed25519_public"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not an enrolment request ({type(exc).__name__})") from None


@dataclass(frozen=True)
class SiloCredentials:
    """A silo's private keys: its Ed25519 identity and its long-term X25519 key."""

    silo_id: str
    identity: IdentityKey
    x25519: SiloKeyPair

    @classmethod
    def generate(cls, silo_id: str) -> SiloCredentials:
        """Fresh random credentials for ``silo_id``."""
        return cls(silo_id, IdentityKey.generate(), SiloKeyPair.generate())

    @property
    def request(self) -> EnrolmentRequest:
        """The public enrolment request for these credentials."""
        return EnrolmentRequest(self.silo_id, self.x25519.public_bytes, self.identity.public_bytes)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the keys (0600) and the public request into ``folder``; never overwrites keys.

        Returns:
            The path of the enrolment request to send to the authority.

        Raises:
            ConfigError: Keys already exist there.
        """
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.identity.save(root / IDENTITY_FILE)
        write_key_file(root / X25519_FILE, self.x25519.private_bytes)
        request = root / REQUEST_FILE
        request.write_text(self.request.to_json() + "\n")
        return request

    @classmethod
    def load(cls, folder: str | os.PathLike[str], silo_id: str) -> SiloCredentials:
        """Read credentials written by :meth:`save`.

        Raises:
            ConfigError: A key file is missing, has loose permissions or a wrong size.
        """
        root = Path(folder)
        identity = IdentityKey.load(root / IDENTITY_FILE)
        x25519 = SiloKeyPair.from_private_bytes(read_key_file(root / X25519_FILE, 32))
        return cls(silo_id, identity, x25519)


def build_roster(
    fed_id: str,
    version: int,
    contract_hash: str,
    coordinator_public: bytes,
    requests: Sequence[EnrolmentRequest],
    analysts: Sequence[AnalystKey] = (),
) -> Roster:
    """An unsigned roster listing ``requests`` (indices 1.. in silo-id order) and ``analysts``.

    Raises:
        ConfigError: Two requests name the same silo.
    """
    ordered = sorted(requests, key=lambda r: r.silo_id)
    ids = [r.silo_id for r in ordered]
    if len(set(ids)) != len(ids):
        raise ConfigError("two enrolment requests name the same silo")
    return Roster(
        fed_id=fed_id,
        version=version,
        entries=tuple(
            RosterEntry(r.silo_id, i + 1, r.x25519_public, r.ed25519_public)
            for i, r in enumerate(ordered)
        ),
        contract_hash=contract_hash,
        coordinator_public=coordinator_public,
        analysts=tuple(sorted(analysts, key=lambda a: a.name)),
    )
