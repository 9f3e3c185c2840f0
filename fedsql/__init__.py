"""fedsql: differentially private SQL over clinics' data that never leaves them (PEP 249)."""

from __future__ import annotations

from fedsql.errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from fedsql.version import __version__

#: PEP 249: the DB-API level this module implements.
apilevel = "2.0"
#: PEP 249: threads may share the module and connections, not cursors.
threadsafety = 2
#: PEP 249: ``?`` placeholders (named ``$name`` placeholders work too).
paramstyle = "qmark"

_DRIVER_NAMES = frozenset(
    {
        "BINARY",
        "DATETIME",
        "NUMBER",
        "ROWID",
        "STRING",
        "Binary",
        "Connection",
        "Cursor",
        "Date",
        "DateFromTicks",
        "PrivacyReport",
        "Time",
        "TimeFromTicks",
        "Timestamp",
        "TimestampFromTicks",
        "connect",
    }
)


def __getattr__(name: str) -> object:
    """Load the driver on first use, so importing a core module stays light."""
    if name in _DRIVER_NAMES:
        from fedsql import dbapi

        return getattr(dbapi, name)
    raise AttributeError(f"module 'fedsql' has no attribute {name!r}")


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "PrivacyReport",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "__version__",
    "apilevel",
    "connect",
    "paramstyle",
    "threadsafety",
]
