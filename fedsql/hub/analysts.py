"""The hub's analysts and their API tokens, stored hashed in one JSON file (0600).

``fedsql hub analyst add NAME`` makes a random token, prints it once and stores only its SHA-256;
the running hub re-reads the file when it changes, so adding or revoking an analyst needs no
restart. A token says who may call the hub; what a silo charges is decided by the analyst's own
signature on each query (:mod:`fedsql.silo.signed_queries`), which the hub cannot make.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from pathlib import Path

from fedsql.errors import ConfigError, DataError

#: Analyst names: what budgets are charged to (as in policies and certificates).
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AnalystTokens:
    """Hashed API tokens by analyst name, kept in ``path``.

    Args:
        path: The JSON file (created on the first :meth:`add`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._hashes: dict[str, str] = {}

    def _load(self) -> dict[str, str]:
        """The stored hashes, re-read when the file changed (size or modification time)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._hashes = None, {}
            return self._hashes
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            try:
                body = json.loads(self.path.read_text(encoding="utf-8"))
                hashes = {str(k): str(v) for k, v in body["analysts"].items()}
            except (OSError, ValueError, KeyError, AttributeError, TypeError):
                raise ConfigError(
                    "the analysts file is not one `fedsql hub analyst add` writes",
                    file=str(self.path),
                ) from None
            self._stamp, self._hashes = stamp, hashes
        return self._hashes

    def names(self) -> list[str]:
        """Every analyst with a token, sorted."""
        with self._lock:
            return sorted(self._load())

    def analyst_for(self, token: str) -> str | None:
        """The analyst ``token`` belongs to, or None (compared in constant time per entry)."""
        digest = _digest(token)
        with self._lock:
            try:
                hashes = self._load()
            except ConfigError:
                return None  # a damaged file admits no one
        found = None
        for name, stored in hashes.items():
            if hmac.compare_digest(stored, digest):
                found = name
        return found

    def _write(self, hashes: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"analysts": hashes}, out, indent=2, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)

    def add(self, name: str) -> str:
        """Give ``name`` a new token (replacing any old one) and return it; it is not stored.

        Raises:
            DataError: The name is not a valid analyst name.
        """
        if not NAME.fullmatch(name):
            raise DataError(
                "an analyst name is 1-63 lower-case letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        token = secrets.token_urlsafe(32)
        with self._lock:
            hashes = dict(self._load())
            hashes[name] = _digest(token)
            self._write(hashes)
        return token

    def remove(self, name: str) -> None:
        """Revoke ``name``'s token.

        Raises:
            DataError: No analyst of that name has a token.
        """
        with self._lock:
            hashes = dict(self._load())
            if hashes.pop(name, None) is None:
                raise DataError(f"analyst {name} has no token here")
            self._write(hashes)
