"""Parameter binding: placeholders in the syntax tree become typed literals before validation.

Values are never formatted into SQL text. Each placeholder node is replaced by a literal node
(``Literal``, ``Boolean``, ``Null`` or a ``CAST`` of a string literal for floats, dates and
timestamps), so a bound string is always a string literal whatever it contains, and the
validator sees exactly what will run.

Styles: ``?`` (qmark) and ``$1`` (numbered) take a sequence; ``$name`` and ``:name`` take a
mapping. One query uses one style.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence

from sqlglot import exp

from fedsql.errors import DataError, ProgrammingError

#: Meta key set on literals that came from a bound parameter (they are values, never ordinals).
BOUND_META = "fedsql_bound"

_SUPPORTED = "int, float, str, bool, None, datetime.date or datetime.datetime (naive)"


def bind_parameters(
    tree: exp.Expr, params: Sequence[object] | Mapping[str, object] | None
) -> tuple[object, ...]:
    """Replace every placeholder in ``tree`` (in place) by a literal of its bound value.

    Args:
        tree: A parsed statement whose ``?`` placeholders carry their text offset.
        params: A sequence for ``?`` / ``$1`` placeholders, a mapping for ``$name`` / ``:name``,
            or None when the query has no placeholders.

    Returns:
        The parameters in canonical form for the plan: the values in order for a sequence,
        ``(name, value)`` pairs sorted by name for a mapping, ``()`` when there are none.

    Raises:
        ProgrammingError: Wrong container, wrong number of values, unknown or unused names, or
            mixed placeholder styles.
        DataError: A value of an unsupported type, a non-finite float or an aware datetime.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("SELECT COUNT(*) FROM t WHERE name = $n", read="duckdb")
    >>> bind_parameters(tree, {"n": "x'; DROP TABLE t; --"})
    (('n', "x'; DROP TABLE t; --"),)
    >>> tree.sql("duckdb")
    "SELECT COUNT(*) FROM t WHERE name = 'x''; DROP TABLE t; --'"
    """
    holders = list(tree.find_all(exp.Placeholder, bfs=False))
    if params is not None and (
        isinstance(params, str | bytes | bytearray) or not isinstance(params, Sequence | Mapping)
    ):
        raise ProgrammingError(
            f"parameters must be a sequence (for ?) or a mapping (for $name), "
            f"not {type(params).__name__}"
        )
    if not holders:
        if params:
            raise ProgrammingError(
                f"the query has no parameter placeholders but {len(params)} "
                f"parameter(s) were given; remove them or add placeholders"
            )
        return ()
    styles = {_style(h) for h in holders}
    if len(styles) > 1:
        raise ProgrammingError(
            "the query mixes parameter styles; use either ? or $1 placeholders with a "
            "sequence, or $name / :name placeholders with a mapping"
        )
    style = styles.pop()
    if params is None:
        raise ProgrammingError(
            f"the query has {len(holders)} parameter placeholder(s) but no parameters were given"
        )
    if style == "named":
        return _bind_named(holders, params)
    return _bind_positional(holders, params, style)


def _style(holder: exp.Placeholder) -> str:
    """``qmark`` for ``?``, ``numbered`` for ``$1``, ``named`` for ``$name`` / ``:name``."""
    name = _name(holder)
    if name is None:
        return "qmark"
    return "numbered" if name.isdigit() else "named"


def _name(holder: exp.Placeholder) -> str | None:
    """The placeholder's name as written, or None for ``?``."""
    this = holder.args.get("this")
    if this is None:
        return None
    if isinstance(this, exp.Identifier):
        return str(this.name)
    return str(this)


def _bind_positional(
    holders: list[exp.Placeholder], params: Sequence[object] | Mapping[str, object], style: str
) -> tuple[object, ...]:
    """Bind ``?`` (in text order) or ``$n`` placeholders from a sequence."""
    if isinstance(params, Mapping):
        marker = "?" if style == "qmark" else "$1"
        raise ProgrammingError(
            f"the query uses {marker} placeholders, which take a sequence of values, "
            "but a mapping was given"
        )
    values = tuple(params)
    if style == "qmark":
        if len(holders) != len(values):
            raise ProgrammingError(
                f"the query has {len(holders)} ? placeholder(s) but {len(values)} "
                f"parameter(s) were given"
            )
        ordered = sorted(holders, key=lambda h: int(h.meta.get("start", 0)))
        for position, holder in enumerate(ordered):
            holder.replace(to_literal(values[position], f"parameter {position + 1}"))
        return values
    indexes = {int(_name(h) or 0) for h in holders}
    expected = set(range(1, len(values) + 1))
    if indexes != expected:
        raise ProgrammingError(
            f"the query uses placeholders {_listing(f'${i}' for i in sorted(indexes))} "
            f"but {len(values)} parameter(s) were given; number them $1..${len(values)}"
        )
    for holder in holders:
        index = int(_name(holder) or 0)
        holder.replace(to_literal(values[index - 1], f"parameter ${index}"))
    return values


def _bind_named(
    holders: list[exp.Placeholder], params: Sequence[object] | Mapping[str, object]
) -> tuple[object, ...]:
    """Bind ``$name`` / ``:name`` placeholders from a mapping."""
    if not isinstance(params, Mapping):
        raise ProgrammingError(
            "the query uses named placeholders ($name or :name), which take a mapping of "
            "values, but a sequence was given"
        )
    bad_keys = [k for k in params if not isinstance(k, str)]
    if bad_keys:
        raise ProgrammingError("parameter names must be strings")
    used = {str(_name(h)) for h in holders}
    missing = sorted(used - set(params))
    if missing:
        raise ProgrammingError(
            f"no value given for parameter(s) {_listing(missing)}; "
            f"given: {_listing(sorted(params)) or 'none'}"
        )
    unused = sorted(set(params) - used)
    if unused:
        raise ProgrammingError(
            f"parameter(s) {_listing(unused)} are not used by the query; remove them"
        )
    for holder in holders:
        name = str(_name(holder))
        holder.replace(to_literal(params[name], f"parameter {name}"))
    return tuple((name, params[name]) for name in sorted(params))


def to_literal(value: object, what: str = "parameter") -> exp.Expr:
    """The literal syntax node for one parameter value.

    Args:
        value: The bound value.
        what: How to name the parameter in an error message.

    Returns:
        A literal node marked as bound (floats, dates and timestamps as a CAST of a string).

    Raises:
        DataError: The value has an unsupported type or cannot be a literal.

    >>> to_literal(-3).sql("duckdb")
    '(-3)'
    >>> to_literal(0.1).sql("duckdb")
    "CAST('0.1' AS DOUBLE)"
    >>> to_literal(dt.date(2024, 2, 29)).sql("duckdb")
    "CAST('2024-02-29' AS DATE)"
    """
    node: exp.Expr
    if value is None:
        node = exp.Null()
    elif isinstance(value, bool):
        node = exp.Boolean(this=value)
    elif isinstance(value, int):
        node = exp.Literal.number(str(abs(value)))
        if value < 0:
            node = exp.Paren(this=exp.Neg(this=node))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DataError(f"{what} is a non-finite float; pass a finite number or None")
        node = exp.Cast(this=exp.Literal.string(repr(value)), to=exp.DataType.build("DOUBLE"))
    elif isinstance(value, str):
        node = exp.Literal.string(value)
    elif isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise DataError(
                f"{what} is a timezone-aware datetime; pass a naive datetime (TIMESTAMP columns "
                "hold no time zone)"
            )
        node = exp.Cast(
            this=exp.Literal.string(value.isoformat(sep=" ")),
            to=exp.DataType.build("TIMESTAMP"),
        )
    elif isinstance(value, dt.date):
        node = exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    else:
        raise DataError(f"{what} has unsupported type {type(value).__name__}; use {_SUPPORTED}")
    node.meta[BOUND_META] = True
    return node


def _listing(items: Iterable[object]) -> str:
    """Comma-separated rendering of names for messages.

    >>> _listing(["a", "b"])
    'a, b'
    """
    return ", ".join(str(i) for i in items)
