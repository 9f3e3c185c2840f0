"""The partial query of a model aggregate: bounded per-row products summed per cell.

Shape (DuckDB dialect; ``$fedsql_salt`` is bound by the silo)::

    WITH __rows AS (
      SELECT "<unit>" AS __unit, rowid AS __rid, "<key>" AS k0,
             (clamp("x1") - c1) / s1 AS z1, ..., <target> AS zy
      FROM "<table>" WHERE <analyst's WHERE, guarded> AND ("x1" IS NOT NULL AND ...)),
    __capped AS (SELECT * FROM __rows QUALIFY ROW_NUMBER() OVER (...) <= <k>),
    __beta(k0, __b0, __b1, ...) AS (VALUES (<key value>, $fedsql_b0_0, ...), ...),  -- logistic
    __scored AS (SELECT *, 1 / (1 + EXP(-LEAST(GREATEST(<eta>, -40), 40))) AS __p
                 FROM __capped JOIN __beta USING (k0))                              -- logistic
    SELECT k0, COUNT(*) AS m0, SUM(LEAST(GREATEST(<term>, -c), c)) AS m1, ... GROUP BY k0

Every feature is clamped to its contract bounds and rescaled to [-1, 1], so every product term
of a linear model lies in [-1, 1]; a logistic model's gradient terms ``(y - p) z_a`` lie in
[-1, 1] and its Hessian terms ``p (1 - p) z_a z_b`` in [-1/4, 1/4] whatever coefficients the
request carries (``p`` is a probability). Each summed term is clamped to that range once more,
so floating-point rounding cannot push one row past the bound its sensitivity is computed
from. Rows with a NULL target or feature are left out before the per-unit row cap.

Over joins, CTEs, subqueries and semi-joins ``__rows`` and ``__capped`` are those of every
other aggregate (``partial_sql.unit_rows`` and ``partial_sql.capped_rows``): relations under
generated aliases, the unit of the first relation, one row id per joined relation hashed
together, and the cap k of the joined rows (the product of the joined tables' caps).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp

from fedsql.catalog import Bounds, Column, KeyValue
from fedsql.sql.measures import ValueSlot
from fedsql.sql.partial_sql import capped_rows, slot_value, unit_rows
from fedsql.sql.plan import BETA_PARAM, KeySpace, ModelSpec
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT

#: Largest |linear predictor| before the logistic function (beyond it p is 0 or 1 in doubles).
ETA_LIMIT = 40.0
#: Largest |term| one row adds to each kind of model measure (rescaled features lie in [-1, 1]).
TERM_CLIP = {"count": 1.0, "cross": 1.0, "gradient": 1.0, "hessian": 0.25}


def term_sql(spec: ModelSpec, term: tuple[str, int, int]) -> str:
    """The per-row value a measure sums, as shown in explain and in the measure's expression.

    >>> spec = ModelSpec("logistic", "m", "y", ("age",), (55.0,), (55.0,), ())
    >>> term_sql(spec, ("hessian", 0, 1))
    'p*(1-p)*z_age'
    >>> term_sql(spec, ("gradient", 1, -1))
    '(y-p)*z_age'
    """
    kind, a, b = term
    names = ["1", *(f"z_{f}" for f in spec.features), f"z_{spec.target}"]
    factors = [names[i] for i in (a, b) if i > 0]
    if kind == "gradient":
        factors = [f"({spec.target}-p)", *factors]
    elif kind == "hessian":
        factors = ["p*(1-p)", *factors]
    return "*".join(factors) or "1"


def build_model_sql(
    query: Query,
    keys: tuple[KeySpace, ...],
    spec: ModelSpec,
    columns: Sequence[Column],
    *,
    cap: bool = True,
) -> str:
    """The silo's partial query of a model aggregate.

    Args:
        query: The resolved query (table, WHERE).
        keys: Its key spaces.
        spec: The model: features, rescaling, terms and (logistic) coefficients.
        columns: The columns of the features then the target (of the query's rows).
        cap: Keep at most k rows per unit (see ``partial_sql.build_partial_sql``).

    Returns:
        DuckDB SQL returning one row per non-empty group: key columns then ``m0``, ``m1``, ...
    """
    z_names = [f"z{i + 1}" for i in range(len(spec.features))] + ["zy"]
    values = [
        (name, _rescaled(column, center, scale))
        for name, column, center, scale in zip(
            z_names, columns, spec.centers, spec.scales, strict=False
        )
    ]
    if spec.kind == "logistic":
        values.append(("zy", slot_value(_slot(columns[-1], Bounds(0.0, 1.0)))))
    complete = [exp.Not(this=exp.Is(this=_quoted(c.name), expression=exp.Null())) for c in columns]
    rows, row_ids = unit_rows(query, keys, values, [exp.and_(*complete)])
    capped = capped_rows(row_ids, query.table.max_rows_per_unit, cap=cap)
    source = "__capped"
    ctes: list[tuple[str, exp.Expr]] = [("__rows", rows), ("__capped", capped)]
    if spec.kind == "logistic":
        ctes.append(("__beta", _beta_values(keys, spec)))
        ctes.append(("__scored", _scored(keys, spec)))
        source = "__scored"
    outputs: list[exp.Expr] = [exp.column(key.name) for key in keys]
    for j, term in enumerate(spec.terms):
        outputs.append(exp.alias_(_term_aggregate(term, z_names), f"m{j}"))
    partial = exp.select(*outputs, copy=False).from_(source, copy=False)
    if keys:
        partial = partial.group_by(*(exp.column(key.name) for key in keys), copy=False)
    for name, body in ctes:
        partial = partial.with_(name, as_=body, copy=False)
    return partial.sql(DIALECT, pretty=True, comments=False)


def _slot(column: Column, bounds: Bounds) -> ValueSlot:
    return ValueSlot(
        name=column.name,
        source=column.name,
        expression=exp.column(column.name),
        clamp=bounds,
        integral=False,
    )


def _rescaled(column: Column, center: float, scale: float) -> exp.Expr:
    """``(clamp(col) - center) / scale``: the column on [-1, 1] (NULL stays NULL)."""
    bounds = column.bounds if column.bounds is not None else Bounds(0.0, 1.0)
    value = slot_value(_slot(column, bounds))
    shifted = exp.Sub(this=exp.Paren(this=value), expression=_number(center))
    return exp.Div(this=exp.Paren(this=shifted), expression=_number(scale))


def _number(value: float) -> exp.Expr:
    """A DOUBLE literal that round-trips ``value`` exactly.

    >>> _number(-0.25).sql("duckdb")
    '(-0.25)'
    """
    literal = exp.Literal.number(repr(abs(float(value))))
    return exp.Paren(this=exp.Neg(this=literal)) if value < 0 else literal


def inline_coefficients(sql: str, params: Mapping[str, object]) -> str:
    """``sql`` with a logistic round's coefficient parameters written in as DOUBLE literals.

    For engines that take the partial SQL as text without DuckDB's named parameters (pushdown
    to a clinic's database). Other placeholders (the salt) are left as they are.

    >>> inline_coefficients("SELECT CAST($fedsql_b0_0 AS DOUBLE) AS b", {"fedsql_b0_0": -0.5})
    'SELECT CAST((-0.5) AS DOUBLE) AS b'
    """
    values = {k: v for k, v in params.items() if k.startswith(BETA_PARAM)}
    if not values:
        return sql

    def substitute(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and str(node.name) in values:
            return _number(float(values[str(node.name)]))  # type: ignore[arg-type]
        return node

    return sqlglot.parse_one(sql, read=DIALECT).transform(substitute).sql(DIALECT)


def _key_literal(value: KeyValue, sql_type: str) -> exp.Expr:
    """A typed literal of one public key value."""
    if isinstance(value, _dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    return exp.cast(exp.convert(value), exp.DataType.build(sql_type))


def _beta_values(keys: tuple[KeySpace, ...], spec: ModelSpec) -> exp.Expr:
    """``SELECT`` of the coefficients per cell (one row without keys), as bound parameters.

    The coefficients are the round's (``FederatedPlan.run_params``), so the text is the same
    in every round of one model: planned and compiled once.
    """
    width = len(spec.features) + 1
    combos: list[tuple[KeyValue, ...]] = [()]
    for key in keys:
        combos = [(*c, v) for c in combos for v in key.values]
    rows = []
    for cell, combo in enumerate(combos):
        values = [_key_literal(v, k.sql_type) for v, k in zip(combo, keys, strict=True)]
        values += [
            exp.cast(exp.Placeholder(this=f"{BETA_PARAM}{cell}_{i}"), exp.DataType.build("DOUBLE"))
            for i in range(width)
        ]
        rows.append(exp.Tuple(expressions=values))
    names = [k.name for k in keys] + [f"__b{i}" for i in range(width)]
    values_node = exp.Values(
        expressions=rows,
        alias=exp.TableAlias(
            this=exp.to_identifier("__v"), columns=[exp.to_identifier(n) for n in names]
        ),
    )
    return exp.select(*names, copy=False).from_(values_node, copy=False)


def _scored(keys: tuple[KeySpace, ...], spec: ModelSpec) -> exp.Expr:
    """The capped rows with ``__p``, the probability at the cell's coefficients."""
    eta: exp.Expr = exp.column("__b0")
    for i in range(len(spec.features)):
        eta = exp.Add(
            this=eta,
            expression=exp.Mul(this=exp.column(f"__b{i + 1}"), expression=exp.column(f"z{i + 1}")),
        )
    limited = _clamped(eta, ETA_LIMIT)
    prob = exp.Div(
        this=exp.Literal.number("1.0"),
        expression=exp.Paren(
            this=exp.Add(
                this=exp.Literal.number("1.0"), expression=exp.Exp(this=exp.Neg(this=limited))
            )
        ),
    )
    scored = exp.select("*", exp.alias_(prob, "__p"), copy=False).from_("__capped", copy=False)
    if keys:
        return scored.join("__beta", using=[k.name for k in keys], copy=False)
    return scored.join("__beta", join_type="cross", copy=False)


def _term_aggregate(term: tuple[str, int, int], z_names: list[str]) -> exp.Expr:
    """``COUNT(*)`` or ``SUM`` of one clamped per-row term."""
    kind, a, b = term
    if kind == "count":
        return exp.Count(this=exp.Star())
    factors: list[exp.Expr] = [exp.column(z_names[i - 1]) for i in (a, b) if i > 0]
    if kind == "gradient":
        factors.insert(
            0, exp.Paren(this=exp.Sub(this=exp.column("zy"), expression=exp.column("__p")))
        )
    elif kind == "hessian":
        one_minus = exp.Paren(
            this=exp.Sub(this=exp.Literal.number("1.0"), expression=exp.column("__p"))
        )
        factors = [exp.column("__p"), one_minus, *factors]
    value: exp.Expr = factors[0] if factors else exp.Literal.number("1.0")
    for factor in factors[1:]:
        value = exp.Mul(this=value, expression=factor)
    return exp.Sum(this=_clamped(value, TERM_CLIP[kind]))


def _clamped(value: exp.Expr, limit: float) -> exp.Expr:
    """``LEAST(GREATEST(value, -limit), limit)`` (the value is never NULL here)."""
    floor = exp.Greatest(this=value, expressions=[_number(-limit)], ignore_nulls=True)
    return exp.Least(this=floor, expressions=[_number(limit)], ignore_nulls=True)


def _quoted(name: str) -> exp.Column:
    return exp.Column(this=exp.to_identifier(name, quoted=True))
