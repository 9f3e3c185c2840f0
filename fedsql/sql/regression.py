"""Model aggregates: LINEAR_REGRESSION and LOGISTIC_REGRESSION planned as bounded secure sums.

``LINEAR_REGRESSION(y, x1, ..., xk)`` releases, per cell, the sufficient statistics of least
squares: the sums of ``z_a z_b`` over ``z = (1, x1, ..., xk, y)`` (so XᵀX, Xᵀy, yᵀy and n) in one
round. ``LOGISTIC_REGRESSION(y, x1, ..., xk [, l2 => 1.0, max_iter => 10, tol => 1e-6])`` releases,
per round of Newton's method, the log-likelihood's gradient and Hessian at the coefficients the
round's request names with ``at => [...]`` (the hub adds it; the analyst never writes it).

Every value is clamped to its contract bounds and rescaled to [-1, 1] before products are
summed, so one row adds at most 1 to a linear or gradient measure and 1/4 to a Hessian measure
whatever the coefficients, and one unit (at most k rows) changes each measure's cell vector by
at most k times that in L2 norm. The silo plans every round itself from the SQL text: the
coefficients are numbers in the text, bounded by construction.

Shape accepted: ``SELECT [keys,] MODEL(...) [AS name] FROM <rows> [WHERE ...] [GROUP BY keys]``:
one model per query, one model per group, no HAVING / ORDER BY / LIMIT. The rows are those of
any other aggregate (``row_source``): one table, or tables joined on the privacy unit, CTEs,
row-level subqueries and semi-joins. The target and features are then columns of the joined
rows (``l.value``, ``p.age``, a CTE's column), each bounded by the contract column it passes
through, and k is the cap of the joined rows, the product of the joined tables' caps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from sqlglot import exp

from fedsql.catalog import Contract
from fedsql.errors import QueryRejected
from fedsql.sql.check_aggregates import check_aggregates
from fedsql.sql.check_clauses import check_clauses
from fedsql.sql.check_expressions import check_expressions
from fedsql.sql.check_types import check_row_types
from fedsql.sql.group_keys import check_grouped_references, key_source, plan_keys
from fedsql.sql.model_arguments import (
    argument_bounds,
    argument_column,
    check_arguments,
    check_not_unit,
    surrogate_select,
)
from fedsql.sql.plan import FederatedPlan, KeySpace, Measure, ModelKind, ModelSpec, OutputColumn
from fedsql.sql.query import Query
from fedsql.sql.regression_sql import TERM_CLIP, build_model_sql, term_sql
from fedsql.sql.resolve_names import resolve_names
from fedsql.sql.statement import DIALECT, parse_statement

#: The model aggregates, by upper-case SQL name.
MODEL_FUNCTIONS: dict[str, ModelKind] = {
    "LINEAR_REGRESSION": "linear",
    "LOGISTIC_REGRESSION": "logistic",
}
#: Named options each model takes, with their defaults.
DEFAULTS: dict[ModelKind, dict[str, float]] = {
    "linear": {},
    "logistic": {"l2": 0.0, "max_iter": 10, "tol": 1e-6},
}
#: Most Newton rounds a logistic model may ask for.
MAX_ROUNDS = 50
#: The named argument that carries a round's coefficients (set by the hub, never the analyst).
AT = "at"


def model_call(select: exp.Expr) -> exp.Anonymous | None:
    """The first model aggregate call anywhere in the statement, or None.

    >>> import sqlglot
    >>> model_call(sqlglot.parse_one("SELECT LINEAR_REGRESSION(y, x) FROM t")) is not None
    True
    >>> model_call(sqlglot.parse_one("SELECT COUNT(*) FROM t")) is None
    True
    """
    for node in select.find_all(exp.Anonymous):
        if str(node.name).upper() in MODEL_FUNCTIONS:
            return node
    return None


def round_sql(sql: str, at: Sequence[float]) -> str:
    """The SQL of one Newton round: the analyst's query with ``at => [coefficients]`` added.

    Args:
        sql: The analyst's SQL (with a LOGISTIC_REGRESSION call, without ``at``).
        at: The coefficients, cell-major, on the rescaled features.

    Returns:
        The SQL text every silo plans for that round (placeholders untouched).

    Raises:
        QueryRejected: The text has no model call, or already names ``at``.

    >>> round_sql("SELECT LOGISTIC_REGRESSION(y, x) FROM t", [0.5, -1.0])
    'SELECT LOGISTIC_REGRESSION(y, x, at => [0.5, -1.0]) FROM t'
    """
    tree = parse_statement(sql)
    call = model_call(tree)
    if call is None:
        raise QueryRejected("the query has no model aggregate to run in rounds")
    if AT in _named(call):
        raise QueryRejected(f"`{AT}` is set by fedsql for each round; remove it from the query")
    values = [exp.Literal.number(repr(float(v))) for v in at]
    call.append(
        "expressions",
        exp.Kwarg(this=exp.var(AT), expression=exp.Array(expressions=values)),
    )
    return tree.sql(DIALECT)


def model_rounds(sql: str) -> int | None:
    """The most Newton rounds (``max_iter``) of a logistic model query, or None for any other.

    A silo uses it on the SQL an analyst signed to tell a model query, whose rounds the hub
    builds, from an ordinary one.

    Args:
        sql: SQL text as the analyst signed it.

    Returns:
        ``max_iter`` of its LOGISTIC_REGRESSION call, or None when there is none.

    Raises:
        QueryRejected: The text does not parse, its options are invalid, or it names ``at``.

    >>> model_rounds("SELECT LOGISTIC_REGRESSION(y, x, max_iter => 3) FROM t")
    3
    >>> model_rounds("SELECT COUNT(*) FROM t") is None
    True
    """
    call = model_call(parse_statement(sql))
    if call is None or str(call.name).upper() != "LOGISTIC_REGRESSION":
        return None
    options, at = _options(call, "logistic", str(call.name).upper())
    if at:
        raise QueryRejected(f"`{AT}` is set by fedsql for each round; remove it from the query")
    return int(options["max_iter"])


def unround_sql(sql: str) -> tuple[str, tuple[float, ...]]:
    """Undo :func:`round_sql`: the canonical SQL without ``at => [...]``, and the coefficients.

    Args:
        sql: The SQL of one Newton round.

    Returns:
        The round's SQL with its ``at`` argument removed, in canonical form (as
        :func:`canonical_sql` writes it), and the coefficients it named.

    Raises:
        QueryRejected: The text does not parse, has no model call, or names no ``at``.

    >>> unround_sql("SELECT LOGISTIC_REGRESSION(y, x, at => [0.5, -1.0]) FROM t")
    ('SELECT LOGISTIC_REGRESSION(y, x) FROM t', (0.5, -1.0))
    """
    tree = parse_statement(sql)
    call = model_call(tree)
    if call is None:
        raise QueryRejected("the round's SQL has no model aggregate")
    kept: list[exp.Expr] = []
    at: tuple[float, ...] | None = None
    for arg in call.expressions:
        if isinstance(arg, exp.Kwarg) and str(arg.this.name).lower() == AT:
            if at is not None or not isinstance(arg.expression, exp.Array):
                raise QueryRejected(f"the round's SQL must name `{AT}` once, as a list of numbers")
            at = tuple(
                _literal_number(v, f"each value of `{AT}`") for v in arg.expression.expressions
            )
        else:
            kept.append(arg)
    if at is None:
        raise QueryRejected(f"the round's SQL names no `{AT}` coefficients")
    call.set("expressions", kept)
    return tree.sql(DIALECT), at


def canonical_sql(sql: str) -> str:
    """The text of ``sql`` as the planner writes it back (whitespace, case and quoting fixed).

    Args:
        sql: SQL text.

    Returns:
        The canonical text.

    Raises:
        QueryRejected: The text does not parse.

    >>> canonical_sql("select  count(*)  from t")
    'SELECT COUNT(*) FROM t'
    """
    return parse_statement(sql).sql(DIALECT)


def plan_model(
    sql: str,
    select: exp.Select,
    params: tuple[object, ...],
    contract: Contract,
    visible: Mapping[str, Sequence[str]],
) -> FederatedPlan:
    """Plan a query whose SELECT list holds a model aggregate.

    Args:
        sql: The analyst's SQL text.
        select: Its parsed SELECT with parameters bound.
        params: The canonical parameters (from ``bind_parameters``).
        contract: The federation contract.
        visible: Table -> columns the caller may see.

    Returns:
        The plan: its measures are the model's sums, ``model`` says how to read them.

    Raises:
        QueryRejected: The model call stands where it may not, takes a column that cannot be
            bounded, an unknown option or a bad option value, or the query has HAVING,
            ORDER BY or LIMIT; or its rows are refused as for any aggregate (a join not on
            the privacy unit, a subquery that is not row-level, ...).
        UnknownObject: An unknown or unshared table or column.
    """
    call = model_call(select)
    assert call is not None
    name = str(call.name).upper()
    kind = MODEL_FUNCTIONS[name]
    item_index = _model_item(select, call, name)
    for clause in ("having", "order", "limit", "offset"):
        if select.args.get(clause):
            raise QueryRejected(
                f"{clause.upper()} is not supported with {name}; it returns one model per group"
            )
    arguments = [a for a in call.expressions if not isinstance(a, exp.Kwarg)]
    options, at = _options(call, kind, name)
    if len(arguments) < 2:
        raise QueryRejected(
            f"{name} takes the target then at least one feature: {name}(y, x1, ...)"
        )
    surrogate, positions = surrogate_select(select, item_index, arguments, name)
    check_clauses(surrogate)
    check_expressions(surrogate)
    query = resolve_names(surrogate, contract, visible)
    if query.per_silo:
        raise QueryRejected(
            f"{name} cannot use the per-clinic pseudo-column silo: per-clinic models are not "
            "supported; fit the model over the whole federation, or group it by a column"
        )
    keys = plan_keys(query)
    check_grouped_references(query)
    check_not_unit(query, positions, name)
    check_aggregates(query)
    check_row_types(query)
    columns = [argument_column(query, position) for position in positions]
    check_arguments(query, columns, kind, name)
    target, features = columns[0], columns[1:]
    cells = 1
    for key in keys:
        cells *= len(key.values)
    width = len(features) + 1
    if kind == "logistic":
        _check_at(at, cells, width)
    scaled = features if kind == "logistic" else [*features, target]
    centers = tuple((argument_bounds(c).lo + argument_bounds(c).hi) / 2.0 for c in scaled)
    scales = tuple((argument_bounds(c).hi - argument_bounds(c).lo) / 2.0 for c in scaled)
    spec = ModelSpec(
        kind=kind,
        output=_output_name(select, item_index, name),
        target=target.name,
        features=tuple(c.name for c in features),
        centers=centers,
        scales=scales,
        terms=_terms(kind, len(features)),
        l2=float(options.get("l2", 0.0)),
        max_iter=int(options.get("max_iter", 1)),
        tol=float(options.get("tol", 0.0)),
        at=tuple(float(v) for v in at),
    )
    # the cap of the rows the model reads: the product of the joined tables' caps
    k = query.table.max_rows_per_unit
    measures = tuple(_measure(spec, j, term, k) for j, term in enumerate(spec.terms))
    outputs = _outputs(query, item_index, spec, measures)
    source_key = {key.source: key.name for key in keys}
    layout = tuple(
        "" if out.kind != "key" else source_key[_key_source(query, i)]
        for i, out in enumerate(outputs)
    )
    spec = dataclasses.replace(spec, layout=layout)
    ordered = [*features, target]
    tables, read_columns, joins = query.reads()
    return FederatedPlan(
        sql=sql,
        params=params,
        contract_fingerprint=contract.fingerprint,
        tables=tables,
        columns=read_columns,
        joins=joins,
        row_cap=k,
        keys=keys,
        measures=measures,
        count_measure="m0",
        outputs=outputs,
        partial_sql=build_model_sql(query, keys, spec, ordered),
        partial_sql_uncapped=build_model_sql(query, keys, spec, ordered, cap=False),
        finalize_sql="",
        projection_sql="",
        explanation=_explain(spec, query, measures, keys),
        model=spec,
    )


def with_coefficients(plan: FederatedPlan, sql: str, at: Sequence[float]) -> FederatedPlan:
    """The plan of one Newton round, from the plan of its model query without ``at``.

    Equal to planning the round's SQL from scratch: the coefficients reach the partial SQL as
    bound parameters (``FederatedPlan.run_params``), so only ``sql`` and the model's ``at``
    differ, and every round of a model is planned (and compiled by each silo) once.

    Args:
        plan: The plan of :func:`unround_sql`'s canonical SQL.
        sql: The round's SQL text, as sent.
        at: The coefficients the round's SQL names.

    Raises:
        QueryRejected: ``plan`` is not a logistic model, or ``at`` has the wrong length.
    """
    spec = plan.model
    if spec is None or spec.kind != "logistic":
        raise QueryRejected(f"`{AT}` is set by fedsql for the rounds of LOGISTIC_REGRESSION only")
    _check_at(at, plan.cells, len(spec.features) + 1)
    coefficients = tuple(float(v) for v in at)
    return dataclasses.replace(plan, sql=sql, model=dataclasses.replace(spec, at=coefficients))


def _check_at(at: Sequence[float], cells: int, width: int) -> None:
    """A round's coefficients: none (the first round) or one per cell and term."""
    if at and len(at) != cells * width:
        raise QueryRejected(
            f"`{AT}` must hold {cells * width} coefficients ({cells} cell(s) x {width}); "
            "it is set by fedsql for each round"
        )


def _key_source(query: Query, index: int) -> str:
    node = query.outputs[index].expression
    assert isinstance(node, exp.Column)
    return key_source(node)


def _model_item(select: exp.Select, call: exp.Anonymous, name: str) -> int:
    """The SELECT-list position of the model call; refuses every other placement."""
    calls = [n for n in select.find_all(exp.Anonymous) if str(n.name).upper() in MODEL_FUNCTIONS]
    if len(calls) > 1:
        raise QueryRejected("one model aggregate per query; run each model as its own query")
    for index, item in enumerate(select.expressions):
        bare = item.this if isinstance(item, exp.Alias) else item
        if bare is call:
            return index
    raise QueryRejected(
        f"{name} must stand alone in the SELECT list (optionally with AS name), beside the "
        "group keys; it cannot be nested in an expression or used in WHERE, GROUP BY, HAVING "
        "or ORDER BY"
    )


def _named(call: exp.Anonymous) -> dict[str, exp.Expr]:
    named: dict[str, exp.Expr] = {}
    for arg in call.expressions:
        if isinstance(arg, exp.Kwarg):
            key = str(arg.this.name).lower()
            if key in named:
                raise QueryRejected(f"option {key} is given twice")
            named[key] = arg.expression
    return named


def _literal_number(node: exp.Expr, what: str) -> float:
    """The value of a numeric literal (optionally negated), or a rejection naming ``what``."""
    negative = False
    bare = node.unnest()
    if isinstance(bare, exp.Neg):
        negative, bare = True, bare.this.unnest()
    if not (isinstance(bare, exp.Literal) and not bare.is_string):
        raise QueryRejected(f"{what} must be a number literal")
    value = float(bare.name)
    if not math.isfinite(value):
        raise QueryRejected(f"{what} must be finite")
    return -value if negative else value


def _options(
    call: exp.Anonymous, kind: ModelKind, name: str
) -> tuple[dict[str, float], tuple[float, ...]]:
    """The checked named options (defaults filled in) and ``at`` (empty when absent)."""
    named = _named(call)
    positional_after = False
    for arg in call.expressions:
        if isinstance(arg, exp.Kwarg):
            positional_after = True
        elif positional_after:
            raise QueryRejected(f"{name}: named options come after the columns")
    allowed = DEFAULTS[kind]
    options: dict[str, float] = dict(allowed)
    at: tuple[float, ...] = ()
    for key, node in named.items():
        if key == AT and kind == "logistic":
            if not isinstance(node, exp.Array):
                raise QueryRejected(f"`{AT}` must be a list of numbers")
            at = tuple(_literal_number(v, f"each value of `{AT}`") for v in node.expressions)
            continue
        if key not in allowed:
            known = ", ".join(f"{k} => ..." for k in allowed) or "none"
            raise QueryRejected(f"{name} has no option {key}; options: {known}")
        value = _literal_number(node, f"option {key}")
        if key == "l2" and value < 0:
            raise QueryRejected("option l2 must be zero or positive")
        if key == "tol" and value <= 0:
            raise QueryRejected("option tol must be positive")
        if key == "max_iter" and (not value.is_integer() or not 1 <= value <= MAX_ROUNDS):
            raise QueryRejected(f"option max_iter must be a whole number from 1 to {MAX_ROUNDS}")
        options[key] = value
    return options, at


def _terms(kind: ModelKind, features: int) -> tuple[tuple[str, int, int], ...]:
    """The measures' terms, in measure order (``m0`` is always the row count).

    >>> _terms("logistic", 1)[3:]
    (('hessian', 0, 0), ('hessian', 0, 1), ('hessian', 1, 1))
    """
    terms: list[tuple[str, int, int]] = [("count", 0, 0)]
    if kind == "linear":
        size = features + 2
        terms += [("cross", a, b) for a in range(size) for b in range(a, size) if (a, b) != (0, 0)]
        return tuple(terms)
    size = features + 1
    terms += [("gradient", a, -1) for a in range(size)]
    terms += [("hessian", a, b) for a in range(size) for b in range(a, size)]
    return tuple(terms)


def _measure(spec: ModelSpec, j: int, term: tuple[str, int, int], k: int) -> Measure:
    """Measure ``m<j>``: COUNT(*) or the SUM of one bounded term."""
    kind = term[0]
    if kind == "count":
        return Measure(f"m{j}", "count", "COUNT(*)", float(k), 1.0, True)
    clip = TERM_CLIP[kind]
    return Measure(f"m{j}", "sum", f"SUM({term_sql(spec, term)})", k * clip, clip, False)


def _output_name(select: exp.Select, item_index: int, name: str) -> str:
    item = select.expressions[item_index]
    if isinstance(item, exp.Alias):
        return str(item.alias)
    return name.lower()


def _outputs(
    query: Query, item_index: int, spec: ModelSpec, measures: tuple[Measure, ...]
) -> tuple[OutputColumn, ...]:
    """Key columns as written, and the model's struct column in its place."""
    outputs = []
    for index, output in enumerate(query.outputs[: len(query.outputs) - len(spec.features) - 1]):
        if index == item_index:
            used = tuple(m.name for m in measures)
            outputs.append(OutputColumn(spec.output, "expr", "STRUCT", used))
            continue
        if not isinstance(output.expression, exp.Column):
            raise QueryRejected(
                f"beside {spec.kind.upper()}_REGRESSION the SELECT list holds only group keys; "
                f"run {output.expression.sql(DIALECT)} as its own query"
            )
        column = query.table.column(str(output.expression.name))
        assert column is not None
        outputs.append(OutputColumn(output.name, "key", column.type))
    return tuple(outputs)


def _explain(
    spec: ModelSpec, query: Query, measures: tuple[Measure, ...], keys: tuple[KeySpace, ...]
) -> tuple[str, ...]:
    table = query.table
    rows: list[str] = []
    if query.joined:
        assert query.source is not None
        rows = query.source.explanation()
    lines = [
        f"model: {spec.kind} regression of {spec.target} on {', '.join(spec.features)} "
        f"over {table.name}"
        + (f", one model per {', '.join(k.source for k in keys)}" if keys else ""),
        *rows,
        "features clamped to their contract bounds and rescaled to [-1, 1]: "
        + ", ".join(
            f"z_{f} = (x - {c:g}) / {s:g}"
            for f, c, s in zip(spec.features, spec.centers, spec.scales, strict=False)
        ),
    ]
    if spec.kind == "logistic":
        lines.append(
            f"Newton rounds: at most {spec.max_iter} (one secure sum each, epsilon split "
            f"equally), l2 {spec.l2:g}, tol {spec.tol:g}"
        )
    else:
        lines.append("one secure sum of the sufficient statistics (XᵀX, Xᵀy, yᵀy, n)")
    lines += [
        f"  {m.name} {m.expression}: each row adds at most {m.clip:g}, "
        f"sensitivity {m.sensitivity:g} "
        f"(k={table.max_rows_per_unit} rows per {table.unit})"
        for m in measures
    ]
    return tuple(lines)
