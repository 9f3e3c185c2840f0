"""Loading a silo policy (TOML) into a catalog.SiloPolicy checked against the contract."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

from fedsql.catalog import AGGREGATE_FUNCTIONS, UNIT_USES, Contract, RateLimit, SiloPolicy, Table
from fedsql.config.fields import Section, epsilon_value
from fedsql.config.names import index_path, is_slug, quote, slugify
from fedsql.config.problems import Problems, describe, did_you_mean, read_config_text, read_toml
from fedsql.config.source_policy import BIND_KEYS, COLUMN_KEYS, SOURCE_KEYS, read_source

#: Keys each table of a policy file accepts. ``share`` and ``privacy.analysts`` are open tables
#: (see POLICY_OPEN_TABLES) whose keys are table and analyst names.
POLICY_KEYS: Mapping[str, frozenset[str]] = {
    "": frozenset({"silo", "share", "privacy", "queries", "limits", "approval", "source", "bind"}),
    "silo": frozenset({"id", "name", "data"}),
    "privacy": frozenset(
        {
            "max_epsilon_per_query",
            "budget_epsilon",
            "budget_renewal_days",
            "min_group_size",
            "analysts",
        }
    ),
    "queries": frozenset({"aggregates", "unit_uses", "max_cells", "allow_per_clinic"}),
    "limits": frozenset({"query_timeout_s", "rate_limit"}),
    "approval": frozenset({"mode"}),
    "source": SOURCE_KEYS,
    "bind.*": BIND_KEYS,
    "bind.*.columns.*": COLUMN_KEYS,
}
#: Tables of a policy file whose keys are names chosen by the operator.
POLICY_OPEN_TABLES: frozenset[str] = frozenset(
    {"share", "privacy.analysts", "bind", "bind.*.columns", "bind.*.columns.*.values"}
)

#: Prefix of a ``data`` value naming a synthetic demo clinic instead of a file.
DEMO_PREFIX = "demo:"
#: The approval modes a silo may run in.
APPROVAL_MODES: tuple[str, ...] = ("auto", "manual", "deny")
#: Longest budget renewal period accepted, in days (a century: longer is a lifetime budget).
MAX_RENEWAL_DAYS = 36_500
#: Seconds in each window a rate limit may name.
RATE_WINDOWS: Mapping[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
_RATE_LIMIT = re.compile(r"\s*(?P<queries>\d{1,9})\s*/\s*(?P<window>[a-z]+)\s*")

_DEFAULTS = SiloPolicy(silo_id="defaults", shared={})


def load_policy(path: str | os.PathLike[str], contract: Contract) -> SiloPolicy:
    """Read a silo policy file and check it against the federation contract.

    A relative ``data`` path is resolved against the folder holding the policy file.

    Args:
        path: The policy's TOML file.
        contract: The federation contract the policy must agree with.

    Returns:
        The validated SiloPolicy.

    Raises:
        ConfigError: naming the file, and the key and fix of every problem found.
    """
    return parse_policy(
        read_config_text(path), contract, file=str(path), base_dir=Path(path).parent
    )


def parse_policy(
    text: str,
    contract: Contract,
    *,
    file: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
) -> SiloPolicy:
    """Validate policy TOML text against ``contract`` and build the SiloPolicy it describes.

    Every problem is reported at once, each as ``file: key: what; what to do``. Shared tables and
    columns must exist in the contract and each shared table must share its unit column. Shared
    columns are kept in contract order. ``data`` values of the form ``demo:<clinic>`` are kept
    verbatim; a relative path is resolved against ``base_dir`` (kept as written without one).

    Args:
        text: The TOML text.
        contract: The federation contract.
        file: How to name the text in messages.
        base_dir: The folder relative ``data`` paths are resolved against.

    Returns:
        The validated SiloPolicy. ``name`` defaults to the silo id.

    Raises:
        ConfigError: with ``problems`` listing every ``(key, message)`` found.
    """
    problems = Problems(file)
    root = Section(read_toml(text, file), "", problems)
    root.check_keys(POLICY_KEYS[""])
    silo = root.table("silo", "[silo] with id, name and data", required=True)
    source_section = root.table("source", '[source] with connector = "postgres" and url')
    # [source] and [bind.<table>] are read by fedsql.config.source_policy.
    identity = _read_silo(silo, base_dir, source_section is None) if silo is not None else None
    share = root.table("share", "[share] with one table = [columns] line per table", required=True)
    shared = _read_share(share, contract) if share is not None else {}
    bind = root.table("bind", '[bind.<table>] with table = "source_table"')
    if bind is not None and source_section is None:
        root.add("bind", '[bind] needs a [source]; add [source] with connector = "..."')
    source = None if source_section is None else read_source(source_section, bind, shared, base_dir)
    privacy = root.table("privacy", "[privacy] with max_epsilon_per_query and budget_epsilon")
    queries = root.table("queries", '[queries] with aggregates = ["COUNT", "SUM", "AVG"]')
    limits = root.table("limits", "[limits] with query_timeout_s")
    approval = root.table("approval", '[approval] with mode = "auto"')

    max_eps, budget, min_group, analysts = _read_privacy(privacy)
    renewal = _read_renewal(privacy)
    aggregates, unit_uses, max_cells = _read_queries(queries)
    per_clinic = _read_per_clinic(queries, contract, identity[0] or None if identity else None)
    timeout, rate_limit = _read_limits(limits)
    mode = _read_approval(approval)

    problems.raise_if_any()
    assert identity is not None
    silo_id, name, data = identity
    return SiloPolicy(
        silo_id=silo_id,
        shared=shared,
        data=data,
        name=name,
        max_epsilon_per_query=max_eps,
        budget_epsilon=budget,
        analyst_budgets=analysts,
        min_group_size=min_group,
        query_timeout_s=timeout,
        approval=mode,
        budget_renewal_days=renewal,
        aggregates=aggregates,
        unit_uses=unit_uses,
        max_cells=max_cells,
        rate_limit=rate_limit,
        source=source,
        allow_per_clinic=per_clinic,
    )


def _read_silo(
    section: Section, base_dir: str | os.PathLike[str] | None, needs_data: bool = True
) -> tuple[str, str, str]:
    section.check_keys(POLICY_KEYS["silo"])
    silo_id = section.string("id", 'id = "my-clinic"', required=True)
    if silo_id is not None and not is_slug(silo_id):
        section.add(
            "id",
            f"{quote(silo_id)} is not a valid silo id; use lower-case letters, digits and inner "
            f'hyphens (at most 63 characters), e.g. id = "{slugify(silo_id)}"',
        )
    name = section.string("name", 'name = "My Clinic"')
    data = section.string("data", 'data = "clinic.duckdb"', required=needs_data)
    if data is not None and not needs_data:
        section.add("data", "give data or a [source], not both; remove data to serve the source")
        data = None
    resolved = ""
    if data is not None:
        resolved = _resolve_data(section, data, base_dir)
    return silo_id or "", name if name is not None else (silo_id or ""), resolved


def _resolve_data(section: Section, data: str, base_dir: str | os.PathLike[str] | None) -> str:
    if data.startswith(DEMO_PREFIX):
        clinic = data[len(DEMO_PREFIX) :]
        if not is_slug(clinic):
            section.add(
                "data",
                f'{quote(data)} does not name a demo clinic; write data = "demo:<clinic id>", '
                'e.g. data = "demo:san-francisco"',
            )
        return data
    if not data.strip():
        section.add("data", 'the path is empty; write data = "clinic.duckdb"')
        return ""
    path = Path(data).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = (Path(base_dir) / path).resolve()
    return str(path)


def _read_share(section: Section, contract: Contract) -> dict[str, tuple[str, ...]]:
    if not section.data:
        section.problems.add(
            section.path,
            "the silo shares no table; add one line per shared table, "
            'e.g. patients = ["patient_id"]',
        )
        return {}
    known = [t.name for t in contract.tables]
    shared: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for raw_name, value in section.items():
        name = raw_name.lower()
        table = contract.table(name)
        if name in seen:
            section.add(
                raw_name,
                f"table {quote(raw_name)} repeats {quote(seen[name])} (names are "
                "case-insensitive); merge the two lists",
            )
            continue
        seen[name] = raw_name
        if table is None:
            section.add(
                raw_name,
                f"table {quote(raw_name)} is not in the contract{did_you_mean(name, known)}; "
                f"share only tables the contract declares: {', '.join(known)}",
            )
            continue
        columns = _read_shared_columns(section, raw_name, value, table)
        if columns is not None:
            shared[name] = columns
    return {t.name: shared[t.name] for t in contract.tables if t.name in shared}


def _read_shared_columns(
    section: Section, raw_name: str, value: object, table: Table
) -> tuple[str, ...] | None:
    example = f'{raw_name} = ["{table.unit}", ...]'
    if not isinstance(value, list):
        section.add(
            raw_name, f"expected an array of column names, got {describe(value)}; write {example}"
        )
        return None
    if not value:
        section.add(
            raw_name,
            f"the list is empty; list the columns to share, or remove {raw_name} "
            "to share none of it",
        )
        return None
    key = section.key(raw_name)
    chosen: set[str] = set()
    ok = True
    for i, item in enumerate(value):
        where = index_path(key, i)
        if not isinstance(item, str):
            section.problems.add(
                where, f"expected a column name (a string), got {describe(item)}; write {example}"
            )
            ok = False
            continue
        column = item.lower()
        if table.column(column) is None:
            section.problems.add(
                where,
                f"column {quote(item)} is not in contract table {table.name}"
                f"{did_you_mean(column, table.column_names)}; share only its columns: "
                f"{', '.join(table.column_names)}",
            )
            ok = False
        elif column in chosen:
            section.problems.add(where, f"column {quote(item)} is listed twice; list it once")
            ok = False
        chosen.add(column)
    if table.unit not in chosen:
        section.add(
            raw_name,
            f"the unit column {quote(table.unit)} of {table.name} is not shared; add it to the "
            "list (it is needed to cap each patient's rows and is never released)",
        )
        ok = False
    if not ok:
        return None
    return tuple(name for name in table.column_names if name in chosen)


def _read_privacy(section: Section | None) -> tuple[float, float, int, dict[str, float]]:
    if section is None:
        d = _DEFAULTS
        return d.max_epsilon_per_query, d.budget_epsilon, d.min_group_size, {}
    section.check_keys(POLICY_KEYS["privacy"])
    max_eps = epsilon_value(section, "max_epsilon_per_query", "max_epsilon_per_query = 1.0")
    budget = epsilon_value(section, "budget_epsilon", "budget_epsilon = 10.0")
    min_group = section.integer("min_group_size", "min_group_size = 10")
    if min_group is not None and min_group < 0:
        section.add(
            "min_group_size",
            f"min_group_size must be 0 or more, got {min_group}; write min_group_size = 10",
        )
        min_group = None
    analysts: dict[str, float] = {}
    table = section.table("analysts", "[privacy.analysts] with one analyst = epsilon line each")
    if table is not None:
        for name, _ in table.items():
            if not name.strip() or any(ch.isspace() for ch in name):
                table.add(name, "an analyst name cannot be empty or contain spaces; rename it")
                continue
            amount = epsilon_value(
                table, name, f"{name} = 10.0" if name.isidentifier() else '"name" = 10.0'
            )
            if amount is not None:
                analysts[name] = amount
    return (
        _DEFAULTS.max_epsilon_per_query if max_eps is None else max_eps,
        _DEFAULTS.budget_epsilon if budget is None else budget,
        _DEFAULTS.min_group_size if min_group is None else min_group,
        analysts,
    )


def _read_renewal(section: Section | None) -> int | None:
    if section is None:
        return None
    days = section.integer("budget_renewal_days", "budget_renewal_days = 365")
    if days is not None and not 1 <= days <= MAX_RENEWAL_DAYS:
        section.add(
            "budget_renewal_days",
            f"budget_renewal_days must be between 1 and {MAX_RENEWAL_DAYS}, got {days}; write "
            "budget_renewal_days = 365, or remove it for lifetime budgets",
        )
        return None
    return days


def _read_names(
    section: Section, name: str, allowed: tuple[str, ...], example: str, *, upper: bool
) -> tuple[str, ...] | None:
    """A list of distinct names from ``allowed`` (case-insensitive), kept in ``allowed`` order."""
    values = section.array(name, example)
    if values is None:
        return None
    key = section.key(name)
    chosen: set[str] = set()
    ok = True
    for i, item in enumerate(values):
        where = index_path(key, i)
        if not isinstance(item, str):
            section.problems.add(
                where, f"expected a name (a string), got {describe(item)}; write {example}"
            )
            ok = False
            continue
        word = item.upper() if upper else item.lower()
        if word not in allowed:
            section.problems.add(
                where,
                f"unknown {name[:-1].replace('_', ' ')} {quote(item)}"
                f"{did_you_mean(word, allowed)}; use some of: {', '.join(allowed)}",
            )
            ok = False
        elif word in chosen:
            section.problems.add(where, f"{quote(item)} is listed twice; list it once")
            ok = False
        chosen.add(word)
    if not ok:
        return None
    return tuple(word for word in allowed if word in chosen)


def _read_queries(section: Section | None) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    if section is None:
        return _DEFAULTS.aggregates, _DEFAULTS.unit_uses, _DEFAULTS.max_cells
    section.check_keys(POLICY_KEYS["queries"])
    aggregates = _read_names(
        section,
        "aggregates",
        AGGREGATE_FUNCTIONS,
        'aggregates = ["COUNT", "SUM", "AVG"]',
        upper=True,
    )
    if aggregates == ():
        section.add(
            "aggregates",
            "the list is empty, so no query could run; allow at least one, e.g. aggregates = "
            '["COUNT"], or set [approval] mode = "deny" to refuse every query',
        )
        aggregates = None
    unit_uses = _read_names(
        section, "unit_uses", UNIT_USES, 'unit_uses = ["join", "count_distinct"]', upper=False
    )
    max_cells = section.integer("max_cells", "max_cells = 10000")
    if max_cells is not None and max_cells < 1:
        section.add(
            "max_cells", f"max_cells must be 1 or more, got {max_cells}; write max_cells = 10000"
        )
        max_cells = None
    return (
        _DEFAULTS.aggregates if aggregates is None else aggregates,
        _DEFAULTS.unit_uses if unit_uses is None else unit_uses,
        max_cells,
    )


def _read_per_clinic(section: Section | None, contract: Contract, silo_id: str | None) -> bool:
    """``allow_per_clinic``: whether queries may group by the ``silo`` pseudo-column here."""
    if section is None:
        return _DEFAULTS.allow_per_clinic
    allowed = section.boolean("allow_per_clinic", "allow_per_clinic = false")
    if not allowed:
        return _DEFAULTS.allow_per_clinic
    if not contract.silos:
        section.add(
            "allow_per_clinic",
            "the contract declares no [federation] silos list, so no query can group by silo; "
            "remove allow_per_clinic, or ask the federation to add silos = [...] to its contract",
        )
    elif silo_id is not None and silo_id not in contract.silos:
        section.add(
            "allow_per_clinic",
            f"this silo's id {quote(silo_id)} is not in the contract's [federation] silos "
            f"({', '.join(contract.silos)}), so its rows could fill no per-clinic cell; ask the "
            "federation to add it, or set allow_per_clinic = false",
        )
    return True


def _read_limits(section: Section | None) -> tuple[float, RateLimit | None]:
    if section is None:
        return _DEFAULTS.query_timeout_s, None
    section.check_keys(POLICY_KEYS["limits"])
    timeout = section.number("query_timeout_s", "query_timeout_s = 30")
    if timeout is not None and timeout <= 0:
        section.add(
            "query_timeout_s",
            f"query_timeout_s must be above 0 seconds, got {timeout:g}; write query_timeout_s = 30",
        )
        timeout = None
    rate = section.string("rate_limit", 'rate_limit = "60/hour"')
    limit = None if rate is None else _parse_rate_limit(section, rate)
    return (_DEFAULTS.query_timeout_s if timeout is None else timeout), limit


def _parse_rate_limit(section: Section, text: str) -> RateLimit | None:
    example = 'rate_limit = "60/hour"'
    match = _RATE_LIMIT.fullmatch(text.lower())
    if match is None:
        section.add(
            "rate_limit",
            f"{quote(text)} is not a rate limit; write queries/window with a window of "
            f"{', '.join(RATE_WINDOWS)}, e.g. {example}",
        )
        return None
    window = match["window"]
    if window.endswith("s") and window[:-1] in RATE_WINDOWS:
        window = window[:-1]  # "60/hours" reads as "60/hour"
    if window not in RATE_WINDOWS:
        section.add(
            "rate_limit",
            f"unknown window {quote(match['window'])}"
            f"{did_you_mean(window, RATE_WINDOWS)}; use one of: {', '.join(RATE_WINDOWS)}, "
            f"e.g. {example}",
        )
        return None
    queries = int(match["queries"])
    if queries < 1:
        section.add(
            "rate_limit",
            f"a rate limit of 0 queries would refuse every query; write {example}, or set "
            '[approval] mode = "deny"',
        )
        return None
    return RateLimit(queries=queries, window_s=RATE_WINDOWS[window])


def _read_approval(section: Section | None) -> Literal["auto", "manual", "deny"]:
    if section is None:
        return _DEFAULTS.approval
    section.check_keys(POLICY_KEYS["approval"])
    mode = section.string("mode", 'mode = "auto"')
    if mode is None:
        return _DEFAULTS.approval
    if mode not in APPROVAL_MODES:
        section.add(
            "mode",
            f"unknown approval mode {quote(mode)}{did_you_mean(mode, APPROVAL_MODES)}; "
            f"use one of: {', '.join(APPROVAL_MODES)}",
        )
        return _DEFAULTS.approval
    return cast(Literal["auto", "manual", "deny"], mode)
