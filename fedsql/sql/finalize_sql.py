"""The hub's finalize and projection queries over the noisy partials, and the output columns.

Both read ``partials(__cell, k0.., m0..)`` (one row per cell; measures DOUBLE, NULL when
suppressed). Each aggregate of the analyst's query is replaced by post-processing of noisy
measures, each group key column by its key column:

* ``COUNT(*)`` / ``COUNT(col)`` -> ``CAST(ROUND(m) AS BIGINT)``
* ``SUM(col)`` -> ``m`` (``CAST(ROUND(m) AS BIGINT)`` when the column and bounds are integral)
* ``AVG(col)`` -> ``CASE WHEN ms IS NOT NULL AND mc <> 0 THEN LEAST(GREATEST(ms / mc, L), U) END``
  (a noisy ratio clamped back into the column's bounds; NULL-guarded because DuckDB's
  LEAST / GREATEST skip NULLs)

The projection query is the SELECT list (outputs then ``__cell``) alone; the finalize query adds
HAVING (as WHERE), ORDER BY (then ``__cell``, so ties and the default order follow the cell
layout) and LIMIT / OFFSET. Computed outputs are cast to their declared type. Computed
expressions are evaluated under ``TRY``: noisy values can make an integer division by zero or an
overflow, which then gives NULL for that cell instead of failing the whole answer.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.sql.measures import MeasureSet
from fedsql.sql.output_types import infer_type
from fedsql.sql.plan import CELL_COLUMN, PARTIALS_TABLE, KeySpace, OutputColumn, OutputKind
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


class _Translator:
    """Rewrites resolved analyst expressions into expressions over the partials table."""

    def __init__(self, query: Query, keys: tuple[KeySpace, ...], measures: MeasureSet) -> None:
        self.query = query
        self.key_of = {key.source: key for key in keys}
        self.measures = measures

    def translate(self, expression: exp.Expr) -> exp.Expr:
        """Aggregates -> noisy-measure post-processing; key columns -> key columns."""

        def rewrite(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Count | exp.Sum | exp.Avg):
                return self._aggregate(node)
            if isinstance(node, exp.Column):
                return exp.column(self.key_of[str(node.name)].name)
            return node

        return expression.transform(rewrite)

    def guarded(self, expression: exp.Expr) -> exp.Expr:
        """The translation, under TRY unless it is a bare key or aggregate (which cannot fail)."""
        translated = self.translate(expression)
        if isinstance(expression, exp.Column | exp.Count | exp.Sum | exp.Avg):
            return translated
        return exp.Try(this=translated)

    def output(self, name: str, expression: exp.Expr) -> tuple[OutputColumn, exp.Expr]:
        """The output column description and its finalize expression."""
        translated = self.translate(expression)
        used = tuple(
            dict.fromkeys(
                m.name
                for node in expression.find_all(exp.Count, exp.Sum, exp.Avg, bfs=False)
                for m in self.measures.for_aggregate(node)
            )
        )
        sql_type = infer_type(expression, self._column_type, self._aggregate_type)
        kind: OutputKind = "expr"
        lower = upper = None
        if isinstance(expression, exp.Column):
            kind = "key"
        elif isinstance(expression, exp.Count):
            kind = "count"
        elif isinstance(expression, exp.Sum):
            kind = "sum"
        elif isinstance(expression, exp.Avg):
            kind = "avg"
            lower, upper = self._bounds(expression)
        else:
            translated = exp.Try(this=exp.Cast(this=translated, to=exp.DataType.build(sql_type)))
        column = OutputColumn(
            name=name, kind=kind, sql_type=sql_type, measures=used, lower=lower, upper=upper
        )
        return column, translated

    def _aggregate(self, node: exp.AggFunc) -> exp.Expr:
        parts = self.measures.for_aggregate(node)
        if isinstance(node, exp.Avg):
            total, count = (exp.column(m.name) for m in parts)
            lower, upper = (exp.Literal.number(repr(v)) for v in self._bounds(node))
            ratio = exp.Div(this=total, expression=count.copy())
            clamped = exp.Least(
                this=exp.Greatest(this=ratio, expressions=[lower], ignore_nulls=True),
                expressions=[upper],
                ignore_nulls=True,
            )
            defined = exp.and_(
                exp.Not(this=exp.Is(this=total.copy(), expression=exp.Null())),
                exp.NEQ(this=count.copy(), expression=exp.Literal.number(0)),
            )
            return exp.Case(ifs=[exp.If(this=defined, true=clamped)])
        measure = parts[0]
        value = exp.column(measure.name)
        if measure.kind == "count" or measure.integral:
            return exp.Cast(this=exp.Round(this=value), to=exp.DataType.build("BIGINT"))
        return value

    def _bounds(self, node: exp.AggFunc) -> tuple[float, float]:
        argument = node.this.unnest()
        column = self.query.table.column(str(argument.name))
        assert column is not None and column.bounds is not None
        return float(column.bounds.lo), float(column.bounds.hi)

    def _column_type(self, name: str) -> str:
        column = self.query.table.column(name)
        assert column is not None
        return column.type

    def _aggregate_type(self, node: exp.AggFunc) -> str:
        if isinstance(node, exp.Count):
            return "BIGINT"
        if isinstance(node, exp.Avg):
            return "DOUBLE"
        return "BIGINT" if self.measures.for_aggregate(node)[0].integral else "DOUBLE"
