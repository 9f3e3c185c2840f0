"""The mask generator PRG(k, d): the AES-128-CTR keystream under k with IV 0^16, read as uint64.

Each key expands to exactly one stream, so the fixed IV is safe. The keystream is written by
one ``update_into`` call straight into the result array, which costs about 0.1 ms for
d = 100,000 words on a small machine.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from fedsql.errors import ProtocolError

__all__ = ["KEY_BYTES", "add_stream", "expand"]

#: Length of a PRG key in bytes (AES-128).
KEY_BYTES = 16
_IV = bytes(16)
_LITTLE = sys.byteorder == "little"

_zeros_lock = threading.Lock()
_zeros = bytes(8 * 4096)


def _zero_input(nbytes: int) -> memoryview:
    """A read-only view of ``nbytes`` zero bytes (the CTR plaintext), grown on demand."""
    global _zeros
    buf = _zeros
    if len(buf) < nbytes:
        with _zeros_lock:
            if len(_zeros) < nbytes:
                _zeros = bytes(max(nbytes, 2 * len(_zeros)))
            buf = _zeros
    return memoryview(buf)[:nbytes]


def expand(key: bytes, d: int) -> NDArray[np.uint64]:
    """Expand a 16-byte key into d pseudorandom words.

    Args:
        key: The 16-byte AES key (a self-mask seed or a pairwise mask key).
        d: Number of 64-bit words.

    Returns:
        A fresh, writable uint64 array: the first 8d keystream bytes, read little-endian.

    Raises:
        ProtocolError: If the key is not 16 bytes or ``d`` is negative.

    >>> hex(int(expand(bytes(16), 2)[0]))  # AES-128(0^16, 0^16) = 66e94bd4ef8a2c3b...
    '0x3b2c8aefd44be966'
    """
    if len(key) != KEY_BYTES:
        raise ProtocolError(f"a mask key must be {KEY_BYTES} bytes, got {len(key)}")
    if d < 0:
        raise ProtocolError("a mask length cannot be negative")
    out = np.empty(d, dtype="<u8")
    if d:
        encryptor = Cipher(algorithms.AES(bytes(key)), modes.CTR(_IV)).encryptor()
        written = encryptor.update_into(_zero_input(8 * d), out.view(np.uint8).data)
        if written != 8 * d:  # pragma: no cover - CTR is a stream mode
            raise ProtocolError("the mask generator produced a short keystream")
    if _LITTLE:
        return out.view(np.uint64)
    return out.astype(np.uint64)  # pragma: no cover - big-endian hosts


def add_stream(acc: NDArray[np.uint64], key: bytes, sign: int) -> None:
    """Add (sign = +1) or subtract (sign = -1) PRG(key, len(acc)) into ``acc`` in place, mod 2^64.

    Args:
        acc: The accumulator (uint64, 1-D, writable).
        key: The 16-byte key.
        sign: +1 or -1.

    Raises:
        ProtocolError: If the key is malformed or ``sign`` is not ±1.

    >>> acc = np.zeros(3, dtype=np.uint64)
    >>> add_stream(acc, bytes(16), +1); add_stream(acc, bytes(16), -1)
    >>> acc.tolist()
    [0, 0, 0]
    """
    stream = expand(key, acc.shape[0])
    if sign == 1:
        np.add(acc, stream, out=acc)
    elif sign == -1:
        np.subtract(acc, stream, out=acc)
    else:
        raise ProtocolError("a mask sign must be +1 or -1")
