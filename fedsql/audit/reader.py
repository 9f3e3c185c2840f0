"""Reading an audit log line by line without judging it, to show even a damaged log.

Verification (:mod:`fedsql.audit.verify`) says whether a log can be trusted; this module only
says what each line holds, so an operator can look at a log that failed verification.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from fedsql.audit.heads import HEAD_TYPE, TreeHead, decode_head
from fedsql.audit.records import ENTRY_TYPE, AuditEntry, decode_entry
from fedsql.errors import IntegrityError

__all__ = ["LogLine", "read_log_lines"]


@dataclass(frozen=True)
class LogLine:
    """One line of a log file and what it holds.

    Attributes:
        number: Its line number (1 first).
        entry: The entry it holds, if it is one.
        head: The head it holds, if it is one.
        problem: Why it is neither, if so.
    """

    number: int
    entry: AuditEntry | None = None
    head: TreeHead | None = None
    problem: str = ""


def _classify(number: int, raw: bytes) -> LogLine:
    if not raw.endswith(b"\n"):
        return LogLine(number, problem="a partial line (no newline at the end)")
    line = raw[:-1]
    try:
        obj = json.loads(line)
    except ValueError:
        return LogLine(number, problem="not JSON")
    if not isinstance(obj, dict):
        return LogLine(number, problem="not a JSON object")
    try:
        if obj.get("type") == ENTRY_TYPE:
            return LogLine(number, entry=decode_entry(line, obj))
        if obj.get("type") == HEAD_TYPE:
            return LogLine(number, head=decode_head(line, obj))
    except (ValueError, TypeError) as exc:
        return LogLine(number, problem=f"malformed: {exc}")
    return LogLine(number, problem="neither an entry nor a head")


def read_log_lines(path: str | os.PathLike[str]) -> list[LogLine]:
    """Every line of a log file, classified; nothing is verified.

    Args:
        path: The log file.

    Returns:
        The lines in file order.

    Raises:
        IntegrityError: The file does not exist or cannot be read.
    """
    try:
        with open(path, "rb") as stream:
            return [_classify(number, raw) for number, raw in enumerate(stream, start=1)]
    except FileNotFoundError:
        raise IntegrityError("the audit log does not exist; check the path") from None
    except OSError as exc:
        raise IntegrityError(f"the audit log cannot be read ({exc.strerror})") from None
