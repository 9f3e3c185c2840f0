"""Deterministic, injective byte encodings for hashing, key-derivation info and AEAD data.

Every variable-length field is prefixed by its length, integers and floats have fixed widths,
so two different field sequences of the same schema never encode to the same bytes. FSA-1
writes ``a ‖ b`` for concatenation; where a field has variable length, ‖ means these encodings.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable

from fedsql.errors import ProtocolError

__all__ = ["bytes_field", "float_field", "int_field", "seq_field", "str_field"]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_U32_MAX = 2**32 - 1


def bytes_field(value: bytes) -> bytes:
    """A byte string prefixed with its 4-byte big-endian length.

    Args:
        value: The bytes to encode.

    Returns:
        ``len(value)`` as 4 bytes big-endian, then ``value``.

    Raises:
        ProtocolError: If the value is longer than 2^32 - 1 bytes.

    >>> bytes_field(b"ab").hex()
    '000000026162'
    """
    if len(value) > _U32_MAX:
        raise ProtocolError("a field is too long to encode (more than 2^32 - 1 bytes)")
    return struct.pack(">I", len(value)) + bytes(value)


def str_field(value: str) -> bytes:
    """A UTF-8 string prefixed with its 4-byte big-endian byte length.

    Args:
        value: The string to encode.

    Returns:
        The length-prefixed UTF-8 bytes.

    Raises:
        ProtocolError: If the encoded string is longer than 2^32 - 1 bytes.

    >>> str_field("é").hex()
    '00000002c3a9'
    """
    return bytes_field(value.encode("utf-8"))


def int_field(value: int) -> bytes:
    """A signed integer as 8 bytes big-endian (two's complement).

    Args:
        value: An integer in the int64 range.

    Returns:
        Eight bytes.

    Raises:
        ProtocolError: If the integer is outside the int64 range.

    >>> int_field(-1).hex()
    'ffffffffffffffff'
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("an integer field holds a non-integer")
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ProtocolError("an integer field is outside the 64-bit range")
    return struct.pack(">q", value)


def float_field(value: float) -> bytes:
    """A finite float as its 8-byte IEEE-754 big-endian form, with -0.0 written as 0.0.

    Args:
        value: A finite float.

    Returns:
        Eight bytes.

    Raises:
        ProtocolError: If the value is NaN or infinite.

    >>> float_field(-0.0) == float_field(0.0)
    True
    """
    value = float(value)
    if not math.isfinite(value):
        raise ProtocolError("a float field is not finite")
    return struct.pack(">d", value + 0.0)


def seq_field(items: Iterable[bytes]) -> bytes:
    """A sequence of already-encoded items, prefixed with the item count (4 bytes big-endian).

    Each item must itself be self-delimiting (one of the encodings above, or a concatenation
    of them), which keeps the whole encoding injective.

    Args:
        items: Encoded items.

    Returns:
        The count followed by the items.

    Raises:
        ProtocolError: If there are more than 2^32 - 1 items.

    >>> seq_field([int_field(1), int_field(2)]).hex()
    '0000000200000000000000010000000000000002'
    """
    parts = list(items)
    if len(parts) > _U32_MAX:
        raise ProtocolError("a sequence field has too many items to encode")
    return struct.pack(">I", len(parts)) + b"".join(parts)
