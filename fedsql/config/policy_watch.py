"""A silo policy file kept current: re-read when it changes, never used stale once it breaks."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config.names import quote
from fedsql.config.policy import parse_policy
from fedsql.config.problems import read_config_text
from fedsql.errors import ConfigError

__all__ = ["PolicySource"]

#: What identifies one version of a file on disk: device, inode, size, mtime and ctime (ns).
_Stamp = tuple[int, int, int, int, int]


def _stamp(path: Path) -> _Stamp | None:
    """The file's identity and change times, or None if it cannot be examined."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class PolicySource:
    """The policy in force at a silo, read from its file and re-read whenever the file changes.

    A silo asks :meth:`current` before each query. When the file changed since the last call
    (its size, inode, modification or change time), the file is read and checked again: a
    valid new version applies from that query on; an invalid one makes :meth:`current` raise
    until the file is fixed, so the silo refuses every query instead of running under the
    previous, stale policy. Changing ``silo.id`` or ``silo.data`` of a running silo counts as
    invalid (they name the silo and its database, which only a restart can change).

    A source is safe to share between threads.

    Args:
        path: The policy file.
        contract: The federation contract the policy must agree with.

    Raises:
        ConfigError: The file is missing or invalid at start (a silo must not start then).
    """

    def __init__(self, path: str | os.PathLike[str], contract: Contract) -> None:
        self._path = Path(path)
        self._contract = contract
        self._lock = threading.Lock()
        stamp = _stamp(self._path)
        text = read_config_text(self._path)
        policy = self._parse(text)
        self._policy = policy
        self._digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self._identity = (policy.silo_id, policy.data)
        self._source = policy.source
        self._stamp = stamp if stamp == _stamp(self._path) else None
        self._error: ConfigError | None = None
        self._version = 1

    @property
    def path(self) -> Path:
        """The policy file."""
        return self._path

    @property
    def contract(self) -> Contract:
        """The contract policies are checked against."""
        return self._contract

    @property
    def version(self) -> int:
        """How many distinct valid versions of the file have been in force (1 at start)."""
        return self._version

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the text of the policy in force (or last in force, if broken now)."""
        return self._digest

    @property
    def error(self) -> ConfigError | None:
        """Why the file is refused now, or None while the policy in force is current."""
        return self._error

    def current(self) -> SiloPolicy:
        """The policy to apply to the next query, re-reading the file if it changed.

        Returns:
            The current, valid policy.

        Raises:
            ConfigError: The file is missing, unreadable or invalid now (it may have been valid
                before: the old policy is never returned once the file changed), or it changes
                the silo's id or data.
        """
        with self._lock:
            stamp = _stamp(self._path)
            if stamp is None or stamp != self._stamp:
                self._reload(stamp)
            if self._error is not None:
                raise self._error.with_traceback(None)
            return self._policy

    def _reload(self, before: _Stamp | None) -> None:
        """Read the file again and make it the policy in force, or record why it cannot be."""
        try:
            text = read_config_text(self._path)
        except ConfigError as exc:
            self._error, self._stamp = exc, None
            return
        # A file replaced while it was being read is read again at the next call.
        self._stamp = before if before is not None and before == _stamp(self._path) else None
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest == self._digest and self._error is None:
            return
        try:
            policy = self._parse(text)
            self._check_identity(policy)
        except ConfigError as exc:
            self._error = exc
            return
        if digest != self._digest:
            self._version += 1
        self._policy, self._digest, self._error = policy, digest, None

    def _parse(self, text: str) -> SiloPolicy:
        return parse_policy(
            text, self._contract, file=self._path.name, base_dir=self._path.parent.resolve()
        )

    def _check_identity(self, policy: SiloPolicy) -> None:
        silo_id, data = self._identity
        file = self._path.name
        if policy.silo_id != silo_id:
            raise ConfigError(
                f"changed from {quote(silo_id)} to {quote(policy.silo_id)} while the silo runs; "
                f'write id = "{silo_id}" again, or restart the silo to change its identity',
                file=file,
                key="silo.id",
            )
        if policy.data != data:
            raise ConfigError(
                "the clinic's database changed while the silo runs; restore the previous data "
                "value, or restart the silo to open the new database",
                file=file,
                key="silo.data",
            )
        if policy.source != self._source:
            raise ConfigError(
                "the clinic's [source] or [bind] changed while the silo runs; restore them, or "
                "restart the silo to serve the new source",
                file=file,
                key="source",
            )
