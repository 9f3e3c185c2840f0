"""The hub's finalize and projection queries over the noisy partials, and the output columns.

Both read ``partials(__cell, k0.., m0..)`` (one row per cell; measures DOUBLE, NULL when
suppressed). Each aggregate of the analyst's query is replaced by post-processing of noisy
measures, each group key column by its key column:

* ``COUNT(*)`` / ``COUNT(x)`` / ``COUNT(DISTINCT unit)`` -> ``CAST(ROUND(m) AS BIGINT)``
* ``SUM(x)`` -> ``m`` (``CAST(ROUND(m) AS BIGINT)`` when the clamped values are integral)
* ``AVG(x)`` -> ``CASE WHEN ms IS NOT NULL AND mc <> 0 THEN LEAST(GREATEST(ms / mc, L), U) END``
  (a noisy ratio clamped back into x's interval [L, U]; NULL-guarded because DuckDB's
  LEAST / GREATEST skip NULLs)
* ``VAR_POP(x)`` -> ``(mq - ms * ms / mc) / mc`` and ``VAR_SAMP(x)`` -> ``(mq - ms * ms / mc) /
  (mc - 1)`` from the noisy sum of squares, sum and count, defined when mc > 0 (mc > 1), clamped
  to [0, (U - L)² / 4] ([0, (U - L)² / 2]), the largest variance values in [L, U] can have;
  ``STDDEV_*`` is the square root of the matching variance
* ``MEDIAN(x)`` / ``QUANTILE_CONT(x, q)`` -> the quantile interpolated in the noisy histogram
  of x (``quantiles.quantile_expression``)

Ratios and other arithmetic over aggregates (``SUM(CASE WHEN c THEN 1 ELSE 0 END) / COUNT(*)``)
are computed from the merged noisy totals, never from per-clinic ratios. A group key
expression (``age // 10``) is replaced by its key column wherever it appears.

The projection query is the SELECT list (outputs then ``__cell``) alone; the finalize query adds
HAVING (as WHERE), ORDER BY (then ``__cell``, so ties and the default order follow the cell
layout) and LIMIT / OFFSET. Computed outputs are cast to their declared type. Computed
expressions are evaluated under ``TRY``: noisy values can make an integer division by zero or an
overflow, which then gives NULL for that cell instead of failing the whole answer (except
expressions holding a quantile: its scalar subquery cannot be put under TRY).
"""

from __future__ import annotations

from typing import TypeGuard

from sqlglot import exp

from fedsql.sql.aggregate_calls import aggregate_call
from fedsql.sql.allowlist import AGGREGATES
from fedsql.sql.group_keys import key_source
from fedsql.sql.measures import MeasureSet
from fedsql.sql.output_types import infer_type
from fedsql.sql.plan import CELL_COLUMN, PARTIALS_TABLE, KeySpace, OutputColumn, OutputKind
from fedsql.sql.quantiles import quantile_expression, quantile_level
from fedsql.sql.query import Query
from fedsql.sql.statement import DIALECT


def build_finalize(
    query: Query, keys: tuple[KeySpace, ...], measures: MeasureSet
) -> tuple[str, str, tuple[OutputColumn, ...]]:
    """The finalize SQL, the projection SQL and the output columns of a resolved query.

    Args:
        query: The resolved query.
        keys: Its key spaces.
        measures: Its measures.

    Returns:
        ``(finalize_sql, projection_sql, outputs)``.
    """
    translator = _Translator(query, keys, measures)
    columns: list[OutputColumn] = []
    select_list: list[exp.Expr] = []
    for output in query.outputs:
        column, expression = translator.output(output.name, output.expression)
        columns.append(column)
        select_list.append(exp.alias_(expression, output.name, quoted=True))
    select_list.append(exp.column(CELL_COLUMN))

    projection = exp.select(*select_list).from_(PARTIALS_TABLE)
    final = projection.copy()
    if query.having is not None:
        final = final.where(translator.guarded(query.having))
    order: list[exp.Expr] = []
    for ordered in query.order:
        translated = ordered.copy()
        translated.set("this", translator.guarded(ordered.this))
        order.append(translated)
    order.append(exp.Ordered(this=exp.column(CELL_COLUMN), nulls_first=False))
    final = final.order_by(*order)
    if query.limit is not None:
        final = final.limit(query.limit)
    if query.offset is not None:
        final = final.offset(query.offset)
    return (
        final.sql(DIALECT, pretty=True, comments=False),
        projection.sql(DIALECT, pretty=True, comments=False),
        tuple(columns),
    )


def _is_aggregate(node: exp.Expr) -> TypeGuard[exp.AggFunc]:
    """True for a call of an allowed aggregate."""
    return isinstance(node, exp.AggFunc) and type(node) in AGGREGATES


class _Translator:
    """Rewrites resolved analyst expressions into expressions over the partials table."""

    def __init__(self, query: Query, keys: tuple[KeySpace, ...], measures: MeasureSet) -> None:
        self.query = query
        self.key_of = {key.source: key for key in keys}
        self.measures = measures

    def _key(self, node: exp.Expr) -> KeySpace | None:
        if isinstance(node, exp.Column) or node.find(exp.Column) is not None:
            return self.key_of.get(key_source(node))
        return None

    def translate(self, expression: exp.Expr) -> exp.Expr:
        """Aggregates -> noisy-measure post-processing; key expressions -> key columns."""

        def rewrite(node: exp.Expr) -> exp.Expr:
            if _is_aggregate(node):
                return self._aggregate(node)
            key = self._key(node)
            if key is not None:
                return exp.column(key.name)
            return node

        return expression.transform(rewrite)

    def _bare(self, expression: exp.Expr) -> bool:
        """True for a bare key or a bare COUNT / SUM / AVG (which cannot fail), and for any
        expression holding a quantile (DuckDB cannot TRY a scalar subquery)."""
        return (
            self._key(expression) is not None
            or isinstance(expression, exp.Count | exp.Sum | exp.Avg)
            or expression.find(exp.Median, exp.PercentileCont) is not None
        )

    def guarded(self, expression: exp.Expr) -> exp.Expr:
        """The translation, under TRY unless it is a bare key or aggregate (which cannot fail)."""
        translated = self.translate(expression)
        if self._bare(expression):
            return translated
        return exp.Try(this=translated)

    def output(self, name: str, expression: exp.Expr) -> tuple[OutputColumn, exp.Expr]:
        """The output column description and its finalize expression."""
        translated = self.translate(expression)
        used = tuple(
            dict.fromkeys(
                m.name
                for node in expression.find_all(exp.AggFunc, bfs=False)
                if _is_aggregate(node)
                for m in self.measures.for_aggregate(node)
            )
        )
        sql_type = infer_type(expression, self._column_type, self._aggregate_type)
        kind: OutputKind = "expr"
        lower = upper = None
        function = aggregate_call(expression).function if _is_aggregate(expression) else None
        if self._key(expression) is not None:
            kind = "key"
        elif function in ("COUNT", "COUNT_DISTINCT"):
            kind = "count"
        elif function == "SUM":
            kind = "sum"
        elif function == "AVG":
            kind = "avg"
            assert isinstance(expression, exp.AggFunc)
            lower, upper = self._bounds(expression)
        else:
            translated = exp.Cast(this=translated, to=exp.DataType.build(sql_type))
            if not self._bare(expression):
                translated = exp.Try(this=translated)
        column = OutputColumn(
            name=name, kind=kind, sql_type=sql_type, measures=used, lower=lower, upper=upper
        )
        return column, translated

    def _aggregate(self, node: exp.AggFunc) -> exp.Expr:
        function = aggregate_call(node).function
        parts = [exp.column(m.name) for m in self.measures.for_aggregate(node)]
        if function == "AVG":
            total, count = parts
            ratio = exp.Div(this=total, expression=count.copy())
            defined = exp.and_(
                _not_null(total), exp.NEQ(this=count.copy(), expression=exp.Literal.number(0))
            )
            return _defined_within(defined, ratio, *self._bounds(node))
        if function in _VARIANCES:
            return self._variance(node, function, parts)
        if function in ("MEDIAN", "QUANTILE_CONT"):
            slot = self.measures.slot_for(node)
            assert slot.clamp is not None
            return quantile_expression(parts, slot.clamp, quantile_level(node))
        measure = self.measures.for_aggregate(node)[0]
        value = parts[0]
        if measure.kind in ("count", "distinct") or measure.integral:
            return exp.Cast(this=exp.Round(this=value), to=exp.DataType.build("BIGINT"))
        return value

    def _variance(self, node: exp.AggFunc, function: str, parts: list[exp.Column]) -> exp.Expr:
        squares, total, count = parts
        lower, upper = self._bounds(node)
        sample = function.endswith("_SAMP")
        spread = (upper - lower) ** 2 / (2.0 if sample else 4.0)
        centred = exp.Sub(
            this=squares,
            expression=exp.Div(
                this=exp.Mul(this=total, expression=total.copy()), expression=count.copy()
            ),
        )
        divisor = (
            exp.Sub(this=count.copy(), expression=exp.Literal.number(1)) if sample else count.copy()
        )
        defined = exp.and_(
            _not_null(squares),
            _not_null(total),
            exp.GT(this=count.copy(), expression=exp.Literal.number(1 if sample else 0)),
        )
        variance = _defined_within(
            defined,
            exp.Div(this=exp.Paren(this=centred), expression=exp.Paren(this=divisor)),
            0.0,
            spread,
        )
        if function.startswith("STDDEV"):
            return exp.Sqrt(this=variance)
        return variance

    def _bounds(self, node: exp.AggFunc) -> tuple[float, float]:
        slot = self.measures.slot_for(node)
        assert slot.clamp is not None
        return float(slot.clamp.lo), float(slot.clamp.hi)

    def _column_type(self, name: str) -> str:
        column = self.query.table.column(name)
        assert column is not None
        return column.type

    def _aggregate_type(self, node: exp.AggFunc) -> str:
        function = aggregate_call(node).function
        if function in ("COUNT", "COUNT_DISTINCT"):
            return "BIGINT"
        if function != "SUM":
            return "DOUBLE"
        return "BIGINT" if self.measures.for_aggregate(node)[0].integral else "DOUBLE"


_VARIANCES = ("VAR_SAMP", "VAR_POP", "STDDEV_SAMP", "STDDEV_POP")


def _not_null(value: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))


def _defined_within(condition: exp.Expr, value: exp.Expr, lower: float, upper: float) -> exp.Expr:
    """``CASE WHEN condition THEN LEAST(GREATEST(value, lower), upper) END``."""
    clamped = exp.Least(
        this=exp.Greatest(
            this=value, expressions=[exp.Literal.number(repr(lower))], ignore_nulls=True
        ),
        expressions=[exp.Literal.number(repr(upper))],
        ignore_nulls=True,
    )
    return exp.Case(ifs=[exp.If(this=condition, true=clamped)])
