"""Naming rules for configuration: SQL identifiers, federation and silo ids, keys in messages."""

from __future__ import annotations

import re

_RESERVED_TEXT = """
    all analyse analyze and anti any array as asc asof asymmetric at authorization binary both
    by case cast check collate collation column columns concurrently constraint create cross
    default deferrable desc describe distinct do else end except false fetch for foreign
    freeze from full generated glob group having ilike in initially inner intersect into is
    isnull join lambda lateral leading left like limit map natural not notnull null offset on
    only or order outer overlaps pivot pivot_longer pivot_wider placing positional primary
    qualify references returning right select semi show similar some struct summarize
    symmetric table tablesample then to trailing true try_cast tuple union unique unpack
    unpivot using variadic verbose when where window with
"""
#: Words DuckDB reserves (categories ``reserved`` and ``type_function``): a table or column with
#: one of these names could not be written in a query without quotes, so the contract refuses them.
RESERVED_WORDS: frozenset[str] = frozenset(_RESERVED_TEXT.split())

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

#: Longest table or column name accepted.
MAX_IDENTIFIER_LENGTH = 63


def identifier_problem(name: str) -> str | None:
    """Why ``name`` (already lower-cased) cannot be a table or column name, or None if it can.

    Args:
        name: The lower-cased name as written in the file.

    Returns:
        A message of the form ``what is wrong; what to do``, or None for a valid identifier.

    >>> identifier_problem("visit_date") is None
    True
    >>> identifier_problem("2nd")
    'name "2nd" is not an SQL identifier; use letters, digits and _ and start with a letter or _'
    """
    if not _IDENTIFIER.fullmatch(name):
        return (
            f"name {quote(name)} is not an SQL identifier; use letters, digits and _ and start "
            "with a letter or _"
        )
    if len(name) > MAX_IDENTIFIER_LENGTH:
        return (
            f"name {quote(name)} is longer than {MAX_IDENTIFIER_LENGTH} characters; "
            "choose a shorter name"
        )
    if name.startswith("__"):
        return f"name {quote(name)} starts with __, which fedsql reserves; rename it"
    if name in RESERVED_WORDS:
        return f"name {quote(name)} is a reserved SQL word; choose another name"
    return None


def is_slug(text: str) -> bool:
    """True for a lower-case id of letters, digits and inner hyphens, at most 63 characters.

    >>> is_slug("san-francisco"), is_slug("San-Francisco"), is_slug("-x")
    (True, False, False)
    """
    return _SLUG.fullmatch(text) is not None


def key_path(parent: str, key: str) -> str:
    """The dotted TOML path of ``key`` under ``parent``, quoting keys that are not bare.

    >>> key_path("tables", "visits")
    'tables.visits'
    >>> key_path("privacy.analysts", "a b")
    'privacy.analysts."a b"'
    >>> key_path("", "federation")
    'federation'
    """
    part = key if _BARE_KEY.fullmatch(key) else quote(key)
    return f"{parent}.{part}" if parent else part


def index_path(parent: str, index: int) -> str:
    """The path of element ``index`` of the array at ``parent``.

    >>> index_path("share.patients", 2)
    'share.patients[2]'
    """
    return f"{parent}[{index}]"


def quote(text: str, limit: int = 60) -> str:
    """``text`` in double quotes, shortened to ``limit`` characters, for use in messages.

    >>> quote('say "hi"')
    '"say \\\\"hi\\\\""'
    """
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return '"' + short.replace("\\", "\\\\").replace('"', '\\"') + '"'


def slugify(text: str) -> str:
    """A suggestion for an id: lower-case, runs of other characters turned into one hyphen.

    >>> slugify("San Francisco (synthetic)")
    'san-francisco-synthetic'
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63].strip("-") or "my-id"
