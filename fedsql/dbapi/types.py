"""PEP 249 type objects and constructors, and the type codes fedsql reports in ``description``."""

from __future__ import annotations

import datetime as _dt
import time


class DBAPITypeObject:
    """A type object that compares equal to every type code in its group.

    >>> NUMBER == "BIGINT" and STRING == "VARCHAR"
    True
    """

    def __init__(self, *codes: str) -> None:
        """Group ``codes`` under one type object."""
        self.codes = frozenset(codes)

    def __eq__(self, other: object) -> bool:
        """Equal to any code of the group (or to the same type object)."""
        if isinstance(other, DBAPITypeObject):
            return self.codes == other.codes
        return other in self.codes

    def __hash__(self) -> int:
        """Hash of the group."""
        return hash(self.codes)

    def __repr__(self) -> str:
        """The group's codes."""
        return f"DBAPITypeObject({', '.join(sorted(self.codes))})"


STRING = DBAPITypeObject("VARCHAR")
BINARY = DBAPITypeObject("BLOB")
NUMBER = DBAPITypeObject("INTEGER", "BIGINT", "DOUBLE", "BOOLEAN")
DATETIME = DBAPITypeObject("DATE", "TIMESTAMP", "TIME")
ROWID = DBAPITypeObject()

Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime


def DateFromTicks(ticks: float) -> _dt.date:
    """The local date of a POSIX timestamp."""
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> _dt.time:
    """The local time of a POSIX timestamp."""
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> _dt.datetime:
    """The local date and time of a POSIX timestamp."""
    return Timestamp(*time.localtime(ticks)[:6])


def Binary(value: bytes | bytearray | memoryview) -> bytes:
    """A binary value (fedsql queries never take binary parameters)."""
    return bytes(value)


def type_code(arrow_type: object) -> str:
    """The DuckDB-style type name reported for an Arrow type."""
    import pyarrow as pa

    assert isinstance(arrow_type, pa.DataType)
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_integer(arrow_type):
        return "BIGINT" if arrow_type.bit_width > 32 else "INTEGER"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "DOUBLE"
    if pa.types.is_date(arrow_type):
        return "DATE"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP"
    if pa.types.is_binary(arrow_type):
        return "BLOB"
    if pa.types.is_struct(arrow_type):
        return "STRUCT"
    return "VARCHAR"
