"""PEP 249 (DB-API 2.0) driver: connect to a hub or the embedded demo and run private SQL."""

from __future__ import annotations

from fedsql.dbapi.connection import Connection, connect
from fedsql.dbapi.cursor import Cursor, PrivacyReport
from fedsql.dbapi.types import (
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)

__all__ = [
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
]
