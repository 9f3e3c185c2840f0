"""Signed tree heads: a log's size and root at a moment, signed by the log's owner.

The audit package does no public-key cryptography itself. A log is given a :class:`Signer`
(anything with ``public_bytes`` and ``sign(data) -> signature``, such as
:class:`fedsql.secagg.identity.IdentityKey`) and a :data:`Verifier` (such as
:func:`fedsql.secagg.identity.verify_signature`) by the role or command that opens it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fedsql.audit.merkle import HASH_BYTES
from fedsql.audit.records import canonical_json

__all__ = ["HEAD_TYPE", "Signer", "TreeHead", "Verifier", "decode_head", "sign_head"]

#: ``type`` of a head line.
HEAD_TYPE = "head"
#: Domain label that starts every signed head message.
HEAD_DOMAIN = b"fedsql/audit/v1/tree-head\x00"
#: Keys of a head line.
HEAD_KEYS = frozenset({"type", "log", "size", "root", "at", "key", "sig"})

_LOG_ID = re.compile(r"[a-z0-9][a-z0-9:._-]{0,127}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")

#: ``verifier(public_key, message, signature) -> bool``: True only for a valid signature.
Verifier = Callable[[bytes, bytes, bytes], bool]


class Signer(Protocol):
    """The signing key of a log's owner."""

    @property
    def public_bytes(self) -> bytes:
        """The public key that verifies this signer's signatures."""
        ...

    def sign(self, data: bytes) -> bytes:
        """A signature of ``data``."""
        ...


def check_log_id(log_id: str) -> str:
    """Return ``log_id`` if it is a valid log name (``silo:san-francisco``, ``hub``).

    Raises:
        ValueError: It is not lower-case letters, digits and ``:._-``, 1 to 128 long.

    >>> check_log_id("silo:san-francisco")
    'silo:san-francisco'
    """
    if not _LOG_ID.fullmatch(log_id):
        raise ValueError("a log id is lower-case letters, digits and :._- (e.g. silo:clinic-a)")
    return log_id


@dataclass(frozen=True)
class TreeHead:
    """A signed statement: log ``log_id`` had ``size`` entries with tree root ``root``.

    Attributes:
        log_id: Which log (heads of one log cannot be passed off for another's).
        size: Number of entries covered.
        root: Merkle tree hash of those entries.
        at_ms: When it was signed, Unix milliseconds.
        key: The signer's public key.
        signature: The signature of :meth:`message`.
    """

    log_id: str
    size: int
    root: bytes
    at_ms: int
    key: bytes
    signature: bytes

    def message(self) -> bytes:
        """The signed bytes: domain label, log id, size, time and root, length-delimited.

        >>> TreeHead("hub", 1, bytes(32), 2, b"k", b"s").message()[:26]
        b'fedsql/audit/v1/tree-head\\x00'
        """
        name = self.log_id.encode()
        return (
            HEAD_DOMAIN
            + len(name).to_bytes(2, "big")
            + name
            + self.size.to_bytes(8, "big")
            + self.at_ms.to_bytes(8, "big")
            + self.root
        )

    def line(self) -> bytes:
        """The head's line in the log (and its head file), without newline."""
        return canonical_json(
            {
                "type": HEAD_TYPE,
                "log": self.log_id,
                "size": self.size,
                "root": self.root.hex(),
                "at": self.at_ms,
                "key": self.key.hex(),
                "sig": self.signature.hex(),
            }
        )

    def verifies(self, verifier: Verifier) -> bool:
        """Whether the signature verifies under the head's own key."""
        return verifier(self.key, self.message(), self.signature)


def sign_head(log_id: str, size: int, root: bytes, at_ms: int, signer: Signer) -> TreeHead:
    """A head for ``(size, root)`` signed by ``signer`` now.

    Args:
        log_id: The log's id.
        size: Entries covered.
        root: Their tree root.
        at_ms: The signing time, Unix milliseconds.
        signer: The log owner's key.

    Returns:
        The signed head.
    """
    unsigned = TreeHead(check_log_id(log_id), size, root, at_ms, bytes(signer.public_bytes), b"")
    return TreeHead(
        unsigned.log_id, size, root, at_ms, unsigned.key, bytes(signer.sign(unsigned.message()))
    )


def _count(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"{key} is not a non-negative integer")
    return value


def _hex(obj: dict[str, Any], key: str) -> bytes:
    value = obj[key]
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise ValueError(f"{key} is not lower-case hex")
    return bytes.fromhex(value)


def decode_head(line: bytes, obj: dict[str, Any]) -> TreeHead:
    """Check the parsed JSON ``obj`` of a head ``line`` and build the head (signature unchecked).

    Args:
        line: The line's exact bytes.
        obj: ``json.loads(line)``.

    Returns:
        The head.

    Raises:
        ValueError: Missing, extra or mistyped keys, or not in canonical form.
    """
    if set(obj) != HEAD_KEYS:
        raise ValueError("the head has missing or unexpected keys")
    log_id = obj["log"]
    if not isinstance(log_id, str):
        raise ValueError("log is not a string")
    head = TreeHead(
        log_id=check_log_id(log_id),
        size=_count(obj, "size"),
        root=_hex(obj, "root"),
        at_ms=_count(obj, "at"),
        key=_hex(obj, "key"),
        signature=_hex(obj, "sig"),
    )
    if len(head.root) != HASH_BYTES:
        raise ValueError("root is not a 32-byte hash")
    if head.line() != bytes(line):
        raise ValueError("the head is not in canonical form")
    return head
