"""Collecting configuration problems and raising them together as one ConfigError."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fedsql.errors import ConfigError

_TOML_POSITION = re.compile(r"^(?P<what>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_END = re.compile(r"^(?P<what>.*?)\s*\(at end of document\)$")

#: Plainer words for the parser's most common complaints.
_TOML_HINTS: dict[str, str] = {
    "Cannot overwrite a value": "a key is defined twice; keep one definition",
    "Cannot declare": "a table is declared twice; merge the two [table] sections",
    "Invalid value": "the value is not valid TOML; quote strings and write arrays as [a, b]",
    "Expected '=' after a key in a key/value pair": "a key has no value; write key = value",
    "Invalid statement": "this line is not a key = value pair or a [table] header",
    "Unclosed array": "an array is missing its closing ]",
    "Unclosed inline table": "an inline table is missing its closing }",
    "Unterminated string": 'a string is missing its closing "',
    "Expected newline": "only one key = value pair fits on a line",
}


class Problems:
    """An ordered list of ``(key, message)`` problems found in one file.

    Loaders add every problem they find and call :meth:`raise_if_any` once at the end, so an
    operator sees all mistakes of a file at once.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        """Record that ``key`` is wrong; ``message`` says what is wrong and what to do."""
        self.items.append((key, message))

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        """Raise one ConfigError naming the file and every problem, if any were recorded.

        Raises:
            ConfigError: with ``problems`` set to every recorded ``(key, message)``.
        """
        if not self.items:
            return
        if len(self.items) == 1:
            key, message = self.items[0]
            raise ConfigError(message, file=self.file, key=key or None, problems=self.items)
        raise ConfigError(
            f"{len(self.items)} problems; each is listed below with its key and fix",
            file=self.file,
            problems=self.items,
        )


def read_toml(text: str, file: str) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into a ConfigError that names the line.

    Args:
        text: The file's contents.
        file: How to name the file in messages.

    Returns:
        The parsed document.

    Raises:
        ConfigError: if the text is not valid TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_syntax_message(str(exc), text), file=file) from None


def _syntax_message(raw: str, text: str) -> str:
    """Reword a tomllib error message as ``where: what; what to do``."""
    where = ""
    what = raw
    match = _TOML_POSITION.match(raw)
    if match:
        where = f"line {match['line']}, column {match['col']}"
        what = match["what"]
    else:
        end = _TOML_END.match(raw)
        if end:
            last = len(text.rstrip().splitlines()) or 1
            where = f"line {last} (end of file)"
            what = end["what"]
    hint = next((h for prefix, h in _TOML_HINTS.items() if what.startswith(prefix)), None)
    detail = f"{what} ({hint})" if hint else what
    place = f" at {where}" if where else ""
    return f"TOML syntax error{place}: {detail}; fix the file there and load it again"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A `` (did you mean "x"?)`` suffix naming the closest choice, or an empty string.

    >>> did_you_mean("max_rows_per_unti", ["unit", "max_rows_per_unit"])
    ' (did you mean "max_rows_per_unit"?)'
    >>> did_you_mean("zzz", ["unit"])
    ''
    """
    pool = list(choices)
    best = difflib.get_close_matches(word, pool, n=1, cutoff=0.6)
    if not best:
        lowered = {c.lower(): c for c in pool}
        best = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        best = [lowered[b] for b in best]
    return f' (did you mean "{best[0]}"?)' if best else ""


def describe(value: object) -> str:
    """The TOML kind of a parsed value, with an article, for messages.

    >>> describe("x"), describe(True), describe(3), describe([1])
    ('a string', 'a boolean', 'an integer', 'an array')
    """
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dt.time):
        return "a time"
    return "a value of unknown kind"


def read_config_text(path: str | os.PathLike[str]) -> str:
    """The text of a configuration file, or a ConfigError that says why it cannot be read.

    Args:
        path: The file to read.

    Returns:
        The file's contents.

    Raises:
        ConfigError: if the file is missing, unreadable or not UTF-8.
    """
    file = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file; check the path", file=file) from None
    except IsADirectoryError:
        raise ConfigError("is a folder, not a file; name the .toml file", file=file) from None
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text; save it as UTF-8", file=file) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot be read ({exc.strerror}); check its permissions", file=file
        ) from None
