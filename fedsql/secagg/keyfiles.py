"""Raw private-key files: written atomically with owner-only permissions, refused if exposed.

A key file holds exactly the raw key bytes (32 for Ed25519 and X25519). Writing goes through a
temporary file in the same directory, created with mode 0600, flushed to disk and renamed over
the target, so a crash never leaves a half-written key. Reading refuses a file that is not a
regular file, is readable or writable by group or others, or has the wrong length.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from fedsql.errors import ConfigError

__all__ = ["KEY_FILE_MODE", "read_key_file", "write_key_file"]

#: Permissions of a key file: read and write for the owner only.
KEY_FILE_MODE = 0o600


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable (best effort where directories cannot open)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that refuse fsync on directories
        pass
    finally:
        os.close(fd)


def write_key_file(path: str | os.PathLike[str], raw: bytes, *, overwrite: bool = False) -> None:
    """Store raw key bytes at ``path`` with mode 0600, atomically and durably.

    Args:
        path: Where the key goes; its directory must exist.
        raw: The raw key bytes.
        overwrite: Replace an existing file instead of refusing.

    Raises:
        ConfigError: If the file exists and ``overwrite`` is false, or it cannot be written.
    """
    target = Path(path)
    temp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"cannot create the key file ({exc.strerror})", file=str(target)) from exc
    try:
        try:
            os.fchmod(fd, KEY_FILE_MODE)  # whatever the umask removed or left
            view = memoryview(bytes(raw))
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temp, target)
        else:
            os.link(temp, target)  # fails if the target exists, with no window for a race
            os.unlink(temp)
    except FileExistsError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ConfigError(
            "a key file already exists here; move it away or allow overwriting", file=str(target)
        ) from exc
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ConfigError(f"cannot write the key file ({exc.strerror})", file=str(target)) from exc
    _fsync_directory(target.parent)


def read_key_file(path: str | os.PathLike[str], size: int) -> bytes:
    """Read raw key bytes from a file that only its owner can access.

    Args:
        path: The key file.
        size: The exact number of bytes expected.

    Returns:
        The raw key bytes.

    Raises:
        ConfigError: If the file is missing, is not a regular file, is accessible by group or
            others (fix with ``chmod 600``), or does not hold exactly ``size`` bytes.
    """
    source = Path(path)
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot open the key file ({exc.strerror})", file=str(source)) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("a key file must be a regular file", file=str(source))
        if info.st_mode & 0o077:
            raise ConfigError(
                f"the key file is accessible by group or others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); restrict it with chmod 600",
                file=str(source),
            )
        data = os.read(fd, size + 1)
    finally:
        os.close(fd)
    if len(data) != size:
        raise ConfigError(f"a key file must hold exactly {size} bytes", file=str(source))
    return data
