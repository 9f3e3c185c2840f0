"""Frozen dataclasses describing a federation: tables, columns, domains, bounds, contract, policy.

These are plain values with no I/O. ``fedsql.config`` builds them from TOML files; every other
layer reads them. Names are stored lower-case: SQL identifiers are matched case-insensitively.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

ColumnType = Literal["INTEGER", "BIGINT", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "BOOLEAN"]
COLUMN_TYPES: tuple[str, ...] = (
    "INTEGER",
    "BIGINT",
    "DOUBLE",
    "VARCHAR",
    "DATE",
    "TIMESTAMP",
    "BOOLEAN",
)
NUMERIC_TYPES: frozenset[str] = frozenset({"INTEGER", "BIGINT", "DOUBLE"})

KeyValue = str | int | bool | _dt.date

#: Name of the per-clinic pseudo-column: a group key whose value is the clinic's id, with the
#: contract's ``silos`` list as its public domain.
SILO_COLUMN = "silo"


@dataclass(frozen=True)
class Bounds:
    """Closed interval ``[lo, hi]`` that every value of a numeric column is clamped to."""

    lo: float
    hi: float

    @property
    def magnitude(self) -> float:
        """B = max(|lo|, |hi|), the largest absolute value a clamped row can carry.

        >>> Bounds(-3.0, 2.0).magnitude
        3.0
        """
        return max(abs(self.lo), abs(self.hi))


@dataclass(frozen=True)
class Domain:
    """A public, data-independent set of values a column may be grouped on.

    ``kind`` is ``"enum"`` (explicit ``values``), ``"int_range"`` (``lo``..``hi`` inclusive by
    ``step``) or ``"date_range"`` (``lo``..``hi`` inclusive, ISO dates, by ``step`` days).
    """

    kind: Literal["enum", "int_range", "date_range"]
    values: tuple[KeyValue, ...] = ()
    lo: int | str | None = None
    hi: int | str | None = None
    step: int = 1

    def keys(self) -> tuple[KeyValue, ...]:
        """Every value of the domain, in its canonical order.

        >>> Domain("int_range", lo=0, hi=10, step=5).keys()
        (0, 5, 10)
        >>> Domain("enum", values=("F", "M")).keys()
        ('F', 'M')
        """
        if self.kind == "enum":
            return self.values
        if self.kind == "int_range":
            assert isinstance(self.lo, int) and isinstance(self.hi, int)
            return tuple(range(self.lo, self.hi + 1, self.step))
        assert isinstance(self.lo, str) and isinstance(self.hi, str)
        start, end = _dt.date.fromisoformat(self.lo), _dt.date.fromisoformat(self.hi)
        out: list[KeyValue] = []
        day = start
        while day <= end:
            out.append(day)
            day += _dt.timedelta(days=self.step)
        return tuple(out)

    @property
    def size(self) -> int:
        """Number of keys in the domain."""
        if self.kind == "enum":
            return len(self.values)
        if self.kind == "int_range":
            assert isinstance(self.lo, int) and isinstance(self.hi, int)
            return len(range(self.lo, self.hi + 1, self.step))
        assert isinstance(self.lo, str) and isinstance(self.hi, str)
        days = (_dt.date.fromisoformat(self.hi) - _dt.date.fromisoformat(self.lo)).days
        return days // self.step + 1


@dataclass(frozen=True)
class Column:
    """One column of a federated table as the contract declares it."""

    name: str
    type: ColumnType
    bounds: Bounds | None = None
    domain: Domain | None = None
    description: str = ""

    @property
    def is_numeric(self) -> bool:
        """True for INTEGER, BIGINT and DOUBLE columns."""
        return self.type in NUMERIC_TYPES


@dataclass(frozen=True)
class Table:
    """A federated table: the same logical table held by every silo (a horizontal partition)."""

    name: str
    unit: str
    max_rows_per_unit: int
    columns: tuple[Column, ...]
    description: str = ""

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (case-insensitive), or None."""
        low = name.lower()
        for col in self.columns:
            if col.name == low:
                return col
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        """Column names in declaration order."""
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class SecAggParams:
    """Federation-wide secure-aggregation parameters (SECAGG.md section 2)."""

    n_min: int = 3
    c_max: int = 1
    threshold: int | None = None
    max_rows_per_silo: int = 100_000_000

    def threshold_for(self, n: int) -> int:
        """Shamir threshold t for a cohort of n silos: the configured one, or floor(n/2)+1 clamped.

        >>> SecAggParams(c_max=1).threshold_for(4)
        2
        >>> SecAggParams(c_max=0).threshold_for(2)
        1
        """
        if self.threshold is not None:
            return self.threshold
        if n <= 2:
            return 1
        t = n // 2 + 1
        return max(self.c_max + 1, min(t, n - 2))

    def survivors_needed(self, n: int) -> int:
        """Smallest survivor set that may be released: max(t + 1, n_min), at most n.

        >>> SecAggParams().survivors_needed(4)
        3
        """
        return min(n, max(self.threshold_for(n) + 1, self.n_min))

    def m_min(self, n: int) -> int:
        """Minimum number of honest silos whose noise is guaranteed in a released total.

        >>> SecAggParams().m_min(4)
        2
        """
        return max(1, self.survivors_needed(n) - self.c_max)

    def m_all(self, n: int) -> int:
        """Honest silos guaranteed in a total to which every one of n cohort members contributed.

        The noise is sized for ``m_min``; when all n answer, the part sized for the silos that
        may be missing is removed and ``m_all = n - c_max`` honest shares remain.

        >>> SecAggParams().m_all(4)
        3
        """
        return max(self.m_min(n), n - self.c_max)


@dataclass(frozen=True)
class Contract:
    """The federation contract: logical schema, bounds, domains and privacy parameters.

    ``silos`` lists the clinic ids of the federation, in the order the contract declares them:
    the public key domain of the ``silo`` pseudo-column (per-clinic breakdowns). Empty means
    queries cannot group by clinic.
    """

    federation_id: str
    tables: tuple[Table, ...]
    delta: float = 1e-6
    default_epsilon: float = 1.0
    secagg: SecAggParams = field(default_factory=SecAggParams)
    description: str = ""
    silos: tuple[str, ...] = ()

    def table(self, name: str) -> Table | None:
        """The table called ``name`` (case-insensitive), or None."""
        low = name.lower()
        for tab in self.tables:
            if tab.name == low:
                return tab
        return None

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of a canonical rendering: equal contracts have equal fingerprints.

        A contract without a ``silos`` list renders as it did before the list existed, so its
        fingerprint is unchanged.
        """
        rendering = asdict(self)
        if not self.silos:
            del rendering["silos"]
        blob = json.dumps(rendering, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


#: Aggregate functions a policy may allow (the ones the planner produces measures for).
AGGREGATE_FUNCTIONS: tuple[str, ...] = ("COUNT", "SUM", "AVG")
#: Ways a query may use the privacy unit column besides capping rows: in WHERE (``filter``), as a
#: join key (``join``) and in ``COUNT(DISTINCT unit)`` (``count_distinct``).
UNIT_USES: tuple[str, ...] = ("filter", "join", "count_distinct")


@dataclass(frozen=True)
class RateLimit:
    """At most ``queries`` queries per analyst in any window of ``window_s`` seconds."""

    queries: int
    window_s: int

    def describe(self) -> str:
        """The limit in words, as operators write it.

        >>> RateLimit(60, 3600).describe()
        '60 queries per hour'
        >>> RateLimit(1, 90).describe()
        '1 query per 90 seconds'
        """
        noun = "query" if self.queries == 1 else "queries"
        names = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
        per = names.get(self.window_s, f"{self.window_s} seconds")
        return f"{self.queries} {noun} per {per}"


#: How a silo serves a bound source: load it into DuckDB, or run partial queries in it.
SourceMode = Literal["snapshot", "pushdown"]


@dataclass(frozen=True)
class ColumnBinding:
    """One contract column of a bound table: the source column (or ``None`` for the same
    name), an optional cast to the contract type, and an optional map of source values."""

    name: str
    source: str
    cast: bool = False
    values: tuple[tuple[str, KeyValue], ...] = ()


@dataclass(frozen=True)
class TableBinding:
    """A federated table bound to a source table (``table``) or query (``query``)."""

    name: str
    table: str = ""
    query: str = ""
    columns: tuple[ColumnBinding, ...] = ()

    def column(self, name: str) -> ColumnBinding:
        """The binding of contract column ``name``: declared, or the column of the same name."""
        for col in self.columns:
            if col.name == name:
                return col
        return ColumnBinding(name=name, source=name)


@dataclass(frozen=True)
class SourceSpec:
    """Where a silo's tables live when not in a DuckDB file: a connector and its bindings.

    ``location`` is a connection URL (never holding a password) or a path; the password comes
    from the environment variable ``password_env`` or the file ``password_file``.
    """

    connector: str
    mode: SourceMode
    location: str
    bindings: tuple[TableBinding, ...]
    password_env: str = ""
    password_file: str = ""

    def binding(self, table: str) -> TableBinding:
        """The binding of federated table ``table``: declared, or the source table of that name."""
        for bound in self.bindings:
            if bound.name == table:
                return bound
        return TableBinding(name=table, table=table)


@dataclass(frozen=True)
class SiloPolicy:
    """What one clinic's operator allows: shared tables and columns, caps, budgets, group size.

    ``shared`` maps a table name to the columns the clinic shares; tables and columns not
    listed are invisible to every query. ``data`` is the path of the clinic's DuckDB file
    (resolved against the policy file's folder by the loader).

    Budgets are lifetime budgets unless ``budget_renewal_days`` is set: then each analyst may
    spend their budget in any window of that many days. ``aggregates`` are the aggregate
    functions queries may use here, ``unit_uses`` how they may use the privacy unit column,
    ``max_cells`` the largest key space (None: the planner's own limit) and ``rate_limit`` how
    many queries one analyst may send in a window (None: no limit). ``source``, when set,
    serves the shared tables from a connector instead of the DuckDB file ``data``.
    ``allow_per_clinic`` allows queries grouped by the ``silo`` pseudo-column, whose cells
    each hold one clinic's own (noisy) numbers.
    """

    silo_id: str
    shared: dict[str, tuple[str, ...]]
    data: str = ""
    name: str = ""
    max_epsilon_per_query: float = 1.0
    budget_epsilon: float = 10.0
    analyst_budgets: dict[str, float] = field(default_factory=dict)
    min_group_size: int = 10
    query_timeout_s: float = 30.0
    approval: Literal["auto", "manual", "deny"] = "auto"
    budget_renewal_days: int | None = None
    aggregates: tuple[str, ...] = AGGREGATE_FUNCTIONS
    unit_uses: tuple[str, ...] = UNIT_USES
    max_cells: int | None = None
    rate_limit: RateLimit | None = None
    source: SourceSpec | None = None
    allow_per_clinic: bool = False

    def shares(self, table: str, column: str | None = None) -> bool:
        """True if the clinic shares ``table`` (and ``column`` of it, when given)."""
        cols = self.shared.get(table.lower())
        if cols is None:
            return False
        return column is None or column.lower() in cols

    def budget_for(self, analyst: str) -> float:
        """The lifetime epsilon budget of ``analyst`` at this clinic."""
        return self.analyst_budgets.get(analyst, self.budget_epsilon)
