"""Reading one contract column from TOML: its type, its clamping bounds and its public domain."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from fedsql.catalog import COLUMN_TYPES, NUMERIC_TYPES, Bounds, Column, ColumnType, Domain, KeyValue
from fedsql.config.fields import Section, number_value
from fedsql.config.names import index_path, quote
from fedsql.config.problems import describe, did_you_mean

#: Keys a column's inline table accepts.
COLUMN_KEYS: frozenset[str] = frozenset({"type", "bounds", "domain", "description"})
#: Keys a column's ``domain`` accepts (exactly one of values, range or dates).
DOMAIN_KEYS: frozenset[str] = frozenset({"values", "range", "step", "dates", "step_days"})

#: Largest number of keys one domain may have: every key is a cell of every silo's partial
#: vector, and each cell costs noise sampling and secure-aggregation work.
MAX_DOMAIN_KEYS = 100_000

#: Common names of SQL types and the contract type each one means.
TYPE_ALIASES: dict[str, str] = {
    "INT": "INTEGER",
    "INT4": "INTEGER",
    "INT32": "INTEGER",
    "SMALLINT": "INTEGER",
    "TINYINT": "INTEGER",
    "INT8": "BIGINT",
    "INT64": "BIGINT",
    "LONG": "BIGINT",
    "HUGEINT": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT8": "DOUBLE",
    "REAL": "DOUBLE",
    "DECIMAL": "DOUBLE",
    "NUMERIC": "DOUBLE",
    "TEXT": "VARCHAR",
    "STRING": "VARCHAR",
    "CHAR": "VARCHAR",
    "BOOL": "BOOLEAN",
    "DATETIME": "TIMESTAMP",
}

_INT_LIMITS: dict[str, tuple[int, int]] = {
    "INTEGER": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}
_VALUE_EXAMPLES: dict[str, str] = {
    "VARCHAR": '"text"',
    "BOOLEAN": "true or false",
    "INTEGER": "42",
    "BIGINT": "42",
    "DATE": '2024-01-31 (a TOML date) or "2024-01-31"',
}
_TYPE_LIST = ", ".join(COLUMN_TYPES)


def read_column(section: Section, name: str, is_unit: bool) -> Column | None:
    """Build the Column ``name`` from its inline table, recording every problem found.

    Args:
        section: The column's table (``tables.<t>.columns.<name>``).
        name: The column's lower-cased name.
        is_unit: Whether this column is its table's privacy unit.

    Returns:
        The Column, or None when the column has a problem (already recorded).
    """
    before = len(section.problems)
    section.check_keys(COLUMN_KEYS)
    ctype = _read_type(section)
    description = section.string("description", 'description = "what this column holds"')
    bounds = _read_bounds(section, ctype)
    domain = _read_domain(section, ctype, is_unit)
    if ctype is None or len(section.problems) > before:
        return None
    return Column(
        name=name,
        type=cast(ColumnType, ctype),
        bounds=bounds,
        domain=domain,
        description=description or "",
    )


def _read_type(section: Section) -> str | None:
    raw = section.string("type", 'type = "INTEGER"', required=True)
    if raw is None:
        return None
    upper = raw.strip().upper()
    if upper in COLUMN_TYPES:
        return upper
    alias = TYPE_ALIASES.get(upper)
    hint = f' (did you mean "{alias}"?)' if alias else did_you_mean(upper, COLUMN_TYPES)
    section.add("type", f"unknown type {quote(raw)}{hint}; use one of: {_TYPE_LIST}")
    return None


def _read_bounds(section: Section, ctype: str | None) -> Bounds | None:
    example = "bounds = [lo, hi]"
    raw = section.array("bounds", example)
    if raw is None:
        return None
    if ctype is not None and ctype not in NUMERIC_TYPES:
        section.add(
            "bounds",
            f"bounds apply only to numeric columns (INTEGER, BIGINT, DOUBLE), this one is {ctype}; "
            "remove bounds",
        )
        return None
    pair = _pair(section, "bounds", raw, example)
    if pair is None:
        return None
    key = section.key("bounds")
    lo = number_value(pair[0], index_path(key, 0), example, section.problems)
    hi = number_value(pair[1], index_path(key, 1), example, section.problems)
    if lo is None or hi is None:
        return None
    if lo > hi:
        section.add(
            "bounds",
            f"lower bound {lo:g} is above upper bound {hi:g}; "
            "write bounds = [lo, hi] with lo <= hi",
        )
        return None
    return Bounds(lo, hi)


def _pair(section: Section, name: str, raw: list[Any], example: str) -> list[Any] | None:
    if len(raw) != 2:
        section.add(name, f"expected 2 values, got {len(raw)}; write {example}")
        return None
    return raw


def _read_domain(column: Section, ctype: str | None, is_unit: bool) -> Domain | None:
    domain = column.table("domain", "domain = { values = [...] }")
    if domain is None:
        return None
    domain.check_keys(DOMAIN_KEYS)
    forms = [form for form in ("values", "range", "dates") if form in domain]
    if len(forms) != 1:
        what = "none of" if not forms else "more than one of"
        column.add(
            "domain",
            f"domain has {what} values, range and dates; give exactly one, e.g. "
            "domain = { values = [...] }, { range = [lo, hi], step = 1 } or "
            '{ dates = ["2020-01-01", "2024-12-31"], step_days = 1 }',
        )
        return None
    form = forms[0]
    if "step" in domain and form != "range":
        domain.add("step", "step belongs with range; remove it (dates use step_days)")
    if "step_days" in domain and form != "dates":
        domain.add("step_days", "step_days belongs with dates; remove it (range uses step)")
    if is_unit:
        column.add(
            "domain",
            "the privacy unit column can never be a group key; remove its domain",
        )
        return None
    if ctype is None:
        return None
    if form == "values":
        return _enum_domain(domain, ctype)
    if form == "range":
        return _int_range_domain(domain, ctype)
    return _date_range_domain(domain, ctype)


def _enum_domain(domain: Section, ctype: str) -> Domain | None:
    example = "values = [...]"
    raw = domain.array("values", example)
    if raw is None:
        return None
    if ctype not in _VALUE_EXAMPLES:
        domain.add("values", _no_domain_for(ctype))
        return None
    if not raw:
        domain.add("values", "the list is empty; list every value the column may take")
        return None
    if len(raw) > MAX_DOMAIN_KEYS:
        domain.add("values", _too_many(len(raw)))
        return None
    key = domain.key("values")
    keys: list[KeyValue] = []
    seen: set[KeyValue] = set()
    ok = True
    for i, item in enumerate(raw):
        where = index_path(key, i)
        value = _key_value(item, ctype, where, domain)
        if value is None:
            ok = False
            continue
        marker: KeyValue = value
        if marker in seen:
            domain.problems.add(where, f"{_show(value)} is listed twice; list each value once")
            ok = False
            continue
        seen.add(marker)
        keys.append(value)
    return Domain("enum", values=tuple(keys)) if ok else None


def _key_value(item: object, ctype: str, where: str, domain: Section) -> KeyValue | None:
    expected = {
        "VARCHAR": "a string",
        "BOOLEAN": "a boolean",
        "INTEGER": "an integer",
        "BIGINT": "an integer",
        "DATE": "a date",
    }[ctype]
    fix = f"write it as {_VALUE_EXAMPLES[ctype]}"
    if ctype == "VARCHAR" and isinstance(item, str):
        return item
    if ctype == "BOOLEAN" and isinstance(item, bool):
        return item
    if ctype in _INT_LIMITS and isinstance(item, int) and not isinstance(item, bool):
        lo, hi = _INT_LIMITS[ctype]
        if lo <= item <= hi:
            return item
        domain.problems.add(where, f"{item} does not fit in {ctype}; use a value in [{lo}, {hi}]")
        return None
    if ctype == "DATE":
        day = _as_date(item)
        if day is not None:
            return day
        if isinstance(item, str):
            domain.problems.add(where, f"{quote(item)} is not an ISO date; {fix}")
            return None
    domain.problems.add(
        where, f"expected {expected} for a {ctype} column, got {describe(item)}; {fix}"
    )
    return None


def _int_range_domain(domain: Section, ctype: str) -> Domain | None:
    example = "range = [lo, hi]"
    raw = domain.array("range", example)
    step = domain.integer("step", "step = 1")
    if raw is None:
        return None
    if ctype not in _INT_LIMITS:
        domain.add(
            "range",
            f"range fits only INTEGER and BIGINT columns, this one is {ctype}; "
            + _domain_form_for(ctype),
        )
        return None
    pair = _pair(domain, "range", raw, example)
    if pair is None:
        return None
    key = domain.key("range")
    ends = [_key_value(item, ctype, index_path(key, i), domain) for i, item in enumerate(pair)]
    if step is not None and step < 1:
        domain.add("step", f"step must be at least 1, got {step}; write step = 1")
        return None
    lo, hi = ends
    bad_step = "step" in domain and step is None
    if not isinstance(lo, int) or not isinstance(hi, int) or bad_step:
        return None
    step = step or 1
    if lo > hi:
        domain.add("range", f"lower end {lo} is above upper end {hi}; write range = [lo, hi]")
        return None
    if (hi - lo) % step:
        below = hi - (hi - lo) % step
        domain.add(
            "range",
            f"range [{lo}, {hi}] does not end on a multiple of step {step} from {lo}; write "
            f"range = [{lo}, {below}] or [{lo}, {below + step}]",
        )
        return None
    size = (hi - lo) // step + 1
    if size > MAX_DOMAIN_KEYS:
        domain.add("range", _too_many(size))
        return None
    return Domain("int_range", lo=lo, hi=hi, step=step)


def _date_range_domain(domain: Section, ctype: str) -> Domain | None:
    example = 'dates = ["2020-01-01", "2024-12-31"]'
    raw = domain.array("dates", example)
    step = domain.integer("step_days", "step_days = 1")
    if raw is None:
        return None
    if ctype != "DATE":
        domain.add(
            "dates",
            f"dates fits only DATE columns, this one is {ctype}; " + _domain_form_for(ctype),
        )
        return None
    pair = _pair(domain, "dates", raw, example)
    if pair is None:
        return None
    key = domain.key("dates")
    ends = [_key_value(item, ctype, index_path(key, i), domain) for i, item in enumerate(pair)]
    if step is not None and step < 1:
        domain.add("step_days", f"step_days must be at least 1, got {step}; write step_days = 1")
        return None
    lo, hi = ends
    bad_step = "step_days" in domain and step is None
    if not isinstance(lo, dt.date) or not isinstance(hi, dt.date) or bad_step:
        return None
    step = step or 1
    if lo > hi:
        domain.add("dates", f"first date {lo} is after last date {hi}; write dates = [first, last]")
        return None
    span = (hi - lo).days
    if span % step:
        below = hi - dt.timedelta(days=span % step)
        domain.add(
            "dates",
            f"dates [{lo}, {hi}] does not end a whole number of {step}-day steps after {lo}; "
            f'write dates = ["{lo}", "{below}"] or ["{lo}", "{below + dt.timedelta(days=step)}"]',
        )
        return None
    size = span // step + 1
    if size > MAX_DOMAIN_KEYS:
        domain.add("dates", _too_many(size))
        return None
    return Domain("date_range", lo=lo.isoformat(), hi=hi.isoformat(), step=step)


def _as_date(item: object) -> dt.date | None:
    if isinstance(item, dt.datetime):
        return None
    if isinstance(item, dt.date):
        return item
    if isinstance(item, str):
        try:
            return dt.date.fromisoformat(item)
        except ValueError:
            return None
    return None


def _no_domain_for(ctype: str) -> str:
    if ctype == "DOUBLE":
        return (
            "a DOUBLE column cannot have a domain (group keys must be exact values); declare the "
            "column INTEGER if its values are whole numbers, or remove domain"
        )
    return (
        "a TIMESTAMP column cannot have a domain; keep the day in a DATE column with dates = [...]"
    )


def _domain_form_for(ctype: str) -> str:
    if ctype in ("VARCHAR", "BOOLEAN"):
        return "write domain = { values = [...] }"
    if ctype == "DATE":
        return 'write domain = { dates = ["2020-01-01", "2024-12-31"], step_days = 1 }'
    if ctype in _INT_LIMITS:
        return "write domain = { range = [lo, hi], step = 1 }"
    return _no_domain_for(ctype)


def _too_many(size: int) -> str:
    return (
        f"the domain has {size} keys, more than the limit of {MAX_DOMAIN_KEYS}; use a coarser "
        "step or fewer values"
    )


def _show(value: KeyValue) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
