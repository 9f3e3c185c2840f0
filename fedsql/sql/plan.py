"""The FederatedPlan: what the planner hands to the hub and to every silo, as plain values.

A plan says which partial aggregates each silo computes (``partial_sql``), how its result is laid
out as a dense vector over the public key space (``keys`` x ``measures``), how each measure is
bounded (sensitivity), and how the hub turns noisy totals into the answer (``finalize_sql``).
No sqlglot object appears here: hub and silo read strings, numbers and tuples.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

from fedsql.catalog import KeyValue

MeasureKind = Literal["count", "sum", "sumsq", "distinct", "bin"]
ModelKind = Literal["linear", "logistic"]
OutputKind = Literal["key", "count", "sum", "avg", "expr"]

#: Name of the table the finalize SQL reads: one row per cell, keys then noisy measures.
PARTIALS_TABLE = "partials"
#: Column holding the cell index in the partials table and in the finalize output.
CELL_COLUMN = "__cell"
#: Named parameter of ``partial_sql`` that the silo binds to a fresh secret per query.
SALT_PARAM = "fedsql_salt"
#: Prefix of the named parameters holding a logistic round's coefficients: ``$fedsql_b<cell>_<i>``.
BETA_PARAM = "fedsql_b"
#: Named parameter of ``partial_sql`` that each silo binds to its own id (the ``silo`` key).
SILO_PARAM = "fedsql_silo"


@dataclass(frozen=True)
class KeySpace:
    """One GROUP BY key: its column in the partial and partials tables and its public domain."""

    name: str
    sql_type: str
    values: tuple[KeyValue, ...]
    source: str


@dataclass(frozen=True)
class Measure:
    """One aggregate per cell of the partial vector.

    ``sensitivity`` is the L2 sensitivity, in value units, of this measure's whole cell vector
    for one privacy unit (e.g. k for COUNT, k*B for SUM). ``clip`` is the largest magnitude one
    row can add (1 for counts, B for sums); ``integral`` says the per-row values are integers.
    Kinds: ``count`` (rows, or non-NULL values), ``sum`` (clamped values), ``sumsq`` (squares of
    clamped values), ``distinct`` (distinct privacy units) and ``bin`` (rows in one bin of a
    quantile histogram). Measures with the same non-empty ``group`` form one vector whose L2
    sensitivity is ``sensitivity`` (each member's) and are noised as one. ``share`` is this
    measure's relative share of the query's privacy cost (rho_j = rho * share_j / sum of
    shares) and ``typical`` the value one typical row adds (the reference of the budget split).
    """

    name: str
    kind: MeasureKind
    expression: str
    sensitivity: float
    clip: float
    integral: bool
    hidden: bool = False
    share: float = 1.0
    typical: float = 1.0
    group: str = ""


@dataclass(frozen=True)
class OutputColumn:
    """One column of the analyst's result and how it derives from measures."""

    name: str
    kind: OutputKind
    sql_type: str
    measures: tuple[str, ...] = ()
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    """A model aggregate (LINEAR_REGRESSION, LOGISTIC_REGRESSION) and how its measures read.

    Features (and, for linear models, the target) are clamped to their contract bounds and
    rescaled to [-1, 1] before any product is summed: ``z = (clamp(x) - center) / scale``.
    ``terms`` is aligned with the plan's measures: ``("count", 0, 0)`` for COUNT(*); for a
    linear model ``("cross", a, b)`` is the sum of ``z_a * z_b`` over ``z = (1, features...,
    target)``; for a logistic model ``("gradient", a, -1)`` is the sum of ``(y - p) * z_a`` and
    ``("hessian", a, b)`` the sum of ``p (1 - p) z_a z_b`` over ``z = (1, features...)``, with
    ``p`` the predicted probability at the coefficients ``at`` (cell-major, on the rescaled
    features; empty means all zero). ``layout`` names, for each output column in order, the
    key it shows (``k0``, ...) or ``""`` for the model itself.
    """

    kind: ModelKind
    output: str
    target: str
    features: tuple[str, ...]
    centers: tuple[float, ...]
    scales: tuple[float, ...]
    terms: tuple[tuple[str, int, int], ...]
    layout: tuple[str, ...] = ()
    l2: float = 0.0
    max_iter: int = 1
    tol: float = 1e-6
    at: tuple[float, ...] = ()


@dataclass(frozen=True)
class FederatedPlan:
    """Everything hub and silos need to run one query; equal inputs give an equal ``plan_hash``.

    Layout: the partial vector has ``cells * len(measures)`` coordinates, cell-major; the cell
    index of a key tuple is its mixed-radix position over ``keys`` (first key most significant).
    ``partial_sql`` returns one row per non-empty group with the key columns (named as in
    ``keys``) followed by one column per measure (named as in ``measures``); groups whose key is
    outside the domain are dropped by the silo. ``partial_sql_uncapped`` is the same query without
    the per-unit row cap: a silo may run it instead only for tables in which it has verified that
    no unit has more than ``row_cap`` rows (then the cap could never drop a row).
    ``finalize_sql`` reads the table ``partials(__cell, <keys>, <measures>)`` and returns the
    output columns then ``__cell``.

    ``per_silo`` says the query groups by the ``silo`` pseudo-column: each cell holds one
    clinic's numbers, so every clinic in the cohort must allow per-clinic breakdowns, and each
    silo binds ``$fedsql_silo`` in ``partial_sql`` to its own id.

    ``tables`` and ``columns`` list every contract table and column the query reads, through
    every join, CTE and subquery; ``joins`` describes each join and semi-join on the privacy
    unit (unit columns used only as join keys appear there, not in ``columns``); ``row_cap`` is
    the cap of the joined rows, the product of the joined tables' caps.
    """

    sql: str
    params: tuple[object, ...]
    contract_fingerprint: str
    tables: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    row_cap: int
    keys: tuple[KeySpace, ...]
    measures: tuple[Measure, ...]
    count_measure: str
    outputs: tuple[OutputColumn, ...]
    partial_sql: str
    partial_sql_uncapped: str
    finalize_sql: str
    projection_sql: str
    explanation: tuple[str, ...] = ()
    joins: tuple[str, ...] = ()
    model: ModelSpec | None = None
    per_silo: bool = False

    @property
    def cells(self) -> int:
        """Number of cells: the product of the key domains' sizes (1 without GROUP BY)."""
        n = 1
        for key in self.keys:
            n *= len(key.values)
        return n

    @property
    def dimension(self) -> int:
        """Length of the partial vector of values: cells x measures.

        The encoded vector that silos upload is longer when a measure is sent in two limbs
        (its length is ``fedsql.secagg.encoding.dimension`` of the query's encoding).
        """
        return self.cells * len(self.measures)

    @functools.cached_property
    def plan_hash(self) -> str:
        """SHA-256 (hex) over the canonical JSON of the whole plan (computed once per plan)."""
        blob = json.dumps(asdict(self), sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def run_params(self, sql: str, salt: int) -> dict[str, object]:
        """Named parameters of ``sql``, one of this plan's partial queries.

        The salt of its row-capping hash when it has one, and for a logistic model the
        coefficients of the round (zero without ``at``), so the partial SQL of every round of
        one model is the same text.
        """
        params: dict[str, object] = {SALT_PARAM: salt} if f"${SALT_PARAM}" in sql else {}
        spec = self.model
        if spec is not None and spec.kind == "logistic":
            width = len(spec.features) + 1
            at = spec.at or (0.0,) * (self.cells * width)
            for index, value in enumerate(at):
                params[f"{BETA_PARAM}{index // width}_{index % width}"] = float(value)
        return params

    def key_index(self) -> dict[tuple[KeyValue, ...], int]:
        """Map from key tuple to cell index (mixed radix, first key most significant)."""
        index: dict[tuple[KeyValue, ...], int] = {(): 0}
        for key in self.keys:
            index = {
                (*old, val): pos * len(key.values) + j
                for old, pos in index.items()
                for j, val in enumerate(key.values)
            }
        return index

    def measure(self, name: str) -> Measure:
        """The measure called ``name``."""
        for m in self.measures:
            if m.name == name:
                return m
        raise KeyError(name)
