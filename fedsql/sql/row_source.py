"""Row sources: the FROM clause of a query, its joins on the privacy unit, CTEs and subqueries.

A query reads *rows*: one contract table, or several joined on the privacy unit, through any
number of CTEs and subqueries that stay row-level. Whatever the shape, every row the aggregate
sees belongs to exactly one patient and was built from that patient's rows alone, which is what
keeps one patient's contribution bounded:

* **Joins** (``[INNER] JOIN`` and ``LEFT [OUTER] JOIN``) must be ``ON a.unit = b.unit``: pairing
  rows of different patients (any other condition, a cross join, a comma join) is refused. One
  patient then has at most ``k_a * k_b`` joined rows when each table keeps at most its contract
  ``max_rows_per_unit``, so the cap applied after the join (partition by the unit) is the
  product of the joined relations' caps, whatever the data holds.
* **Semi-joins**, ``unit [NOT] IN (SELECT unit FROM ...)`` and ``[NOT] EXISTS (SELECT ... WHERE
  inner.unit = outer.unit AND ...)`` in WHERE, only keep or drop a patient's rows; they do not
  multiply the cap. Any other reference from a subquery to the enclosing query is refused.
* **CTEs and subqueries in FROM** are inlined as derived tables. They must stay row-level: no
  aggregates, GROUP BY, HAVING, window functions, ORDER BY, LIMIT or OFFSET (each would mix
  patients' rows or choose rows by other patients' data). ``SELECT DISTINCT`` is allowed when it
  keeps the privacy unit among its columns, so it only merges one patient's duplicate rows.
* The row identifier that orders the capping hash stays unique after the join: it is the tuple
  of every joined relation's ``rowid`` (for a DISTINCT subquery, its unit and columns).

Every table and column read anywhere counts in the plan's ``tables`` and ``columns`` (unit
columns used only as join keys are listed as joins instead), so each silo checks them all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import cast

from sqlglot import exp

from fedsql.catalog import Column, ColumnType, Contract, Table
from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql.check_clauses import check_subquery_clauses
from fedsql.sql.check_expressions import check_row_level, is_semi_join
from fedsql.sql.check_types import check_condition, check_value
from fedsql.sql.guard_errors import guard_row_errors
from fedsql.sql.output_types import infer_type
from fedsql.sql.relations import (
    Context,
    base_relation,
    check_unit_types,
    from_clause,
    join_condition,
)
from fedsql.sql.scopes import Reads, Relation, Resolved, Scope, SourceColumn

UNIT_COLUMN = "__unit"


@dataclass
class RowSource:
    """The resolved FROM clause of the outer query (and the semi-joins of its WHERE)."""

    scope: Scope
    reads: Reads
    plain: bool
    _context: Context
    _declared: tuple[str, ...] = ()

    def semi_join(self, node: exp.Expr) -> exp.Expr:
        """Replace an IN / EXISTS subquery of the outer WHERE by a virtual boolean column.

        Args:
            node: The ``x IN (SELECT ...)`` or ``EXISTS (SELECT ...)`` node.

        Returns:
            A reference to the new virtual column (``__semi0``, ...) whose SQL is the checked
            subquery.

        Raises:
            QueryRejected: The subquery is not a semi-join on the unit, or not row-level.
            UnknownObject: It reads an unknown or unshared table or column.
        """
        return _semi_join(node, self.scope, self._context)

    def check_ctes_used(self) -> None:
        """Refuse a CTE of the outer query that nothing reads (it would never be checked)."""
        for name in self._declared:
            if name not in self._context.used_ctes:
                raise QueryRejected(f"CTE {name} is defined but never used; remove it")

    def explanation(self) -> list[str]:
        """How the rows are built and why the cap is what it is."""
        relations = self.scope.relations
        caps = " * ".join(str(r.k) for r in relations)
        lines = [
            f"rows: {self.scope.label}; privacy unit {self.scope.unit_name}; joins and "
            "semi-joins are on the unit only, so each row belongs to one patient",
        ]
        for join in self.reads.joins:
            lines.append(f"join: {join}")
        lines.append(
            f"each clinic keeps at most k = {self.scope.k} joined row(s) per unit "
            f"({caps}: the product of the joined tables' max_rows_per_unit; semi-joins do not "
            "multiply), chosen by a keyed random order after the joins and WHERE"
        )
        return lines


def build_row_source(
    select: exp.Select, contract: Contract, visible: dict[str, frozenset[str]]
) -> RowSource:
    """Resolve the FROM clause (with its joins and CTEs) of a checked outer SELECT.

    Args:
        select: The outer SELECT, clauses checked.
        contract: The federation contract.
        visible: Table -> visible columns (lower-case).

    Returns:
        The row source; ``plain`` when it is one contract table with no subquery anywhere.

    Raises:
        UnknownObject: An unknown or unshared table or column.
        QueryRejected: A join not on the privacy unit, a subquery that is not row-level, ...
    """
    context = Context(contract=contract, visible=visible)
    _add_ctes(select, context)
    scope = _scope(select, context, outer=None)
    where = select.args.get("where")
    has_subquery = where is not None and any(is_semi_join(n) for n in where.this.walk())
    plain = len(scope.relations) == 1 and scope.relations[0].table is not None and not has_subquery
    declared = tuple(context.ctes)
    plain = plain and not declared
    return RowSource(
        scope=scope, reads=context.reads, plain=plain, _context=context, _declared=declared
    )


def _add_ctes(select: exp.Select, context: Context) -> None:
    """Put the SELECT's CTEs in reach (each may use the ones before it)."""
    with_ = select.args.get("with_")
    if with_ is None:
        return
    if with_.args.get("recursive"):
        raise QueryRejected(
            "WITH RECURSIVE is not supported; CTEs must be row-level SELECTs over the tables"
        )
    for cte in with_.expressions:
        name = str(cte.alias).lower()
        body = cte.this
        if not isinstance(body, exp.Select):
            raise QueryRejected(
                f"CTE {name} must be one SELECT (UNION and other set operations are not supported)"
            )
        if cte.args.get("materialized") is not None:
            raise QueryRejected(f"MATERIALIZED hints on CTE {name} are not supported")
        alias = cte.args.get("alias")
        if alias is not None and alias.args.get("columns"):
            raise QueryRejected(
                f"column aliases on CTE {name} ({name}(a, b)) are not supported; alias the "
                "columns in its SELECT list"
            )
        if name in context.ctes:
            raise QueryRejected(f"CTE {name} is defined twice; give each CTE its own name")
        check_subquery_clauses(body, f"CTE {name}")
        context.ctes[name] = body


def _scope(select: exp.Select, context: Context, outer: Scope | None) -> Scope:
    """The relations of a SELECT's FROM clause and joins, each join checked on the unit."""
    relations = [_relation(select.args["from_"].this, context)]
    labels = [relations[0].label]
    for join in select.args.get("joins") or []:
        relation = _relation(join.this, context)
        if relation.alias in {r.alias for r in relations}:
            raise QueryRejected(
                f"the name {relation.alias} is used for two tables in one FROM clause; give "
                "each an alias"
            )
        side = str(join.args.get("side") or "").upper()
        relation.on = join_condition(join.args["on"], relations, relation, context)
        relation.nullable = side == "LEFT"
        relation.side = side
        kind = "LEFT JOIN" if side == "LEFT" else "JOIN"
        context.reads.joins.append(f"{' JOIN '.join(labels)} {kind} {relation.label} on the unit")
        labels.append(relation.label)
        relations.append(relation)
    return Scope(relations, outer)


def _relation(item: exp.Expr, context: Context) -> Relation:
    """One FROM item as a relation: a contract table, a CTE reference or a subquery."""
    alias_node = item.args.get("alias")
    alias = str(alias_node.name).lower() if alias_node is not None else ""
    if isinstance(item, exp.Subquery):
        inner = item.this
        if not isinstance(inner, exp.Select):
            raise QueryRejected(
                "a subquery in FROM must be one SELECT (UNION and other set operations are not "
                "supported)"
            )
        name = alias or "subquery"
        label = f"(subquery) AS {alias}" if alias else "(subquery)"
        return _derived(inner, name, label, context)
    assert isinstance(item, exp.Table)
    name = str(item.name).lower()
    if not item.args.get("db") and name in context.ctes:
        body = context.ctes[name]
        context.used_ctes.add(name)
        earlier = dict(context.ctes)
        # a CTE sees only the CTEs before it (no recursion)
        names = list(earlier)
        context.ctes = {n: earlier[n] for n in names[: names.index(name)]}
        try:
            relation = _derived(
                body, alias or name, name + (f" AS {alias}" if alias else ""), context
            )
        finally:
            context.ctes = earlier
        return relation
    return base_relation(item, context)


def _derived(select: exp.Select, name: str, label: str, context: Context) -> Relation:
    """A row-level subquery (or CTE body) as a derived table, rendered once the query is read."""
    where_from = f"subquery {name}" if label.startswith("(") else f"CTE {name}"
    check_subquery_clauses(select, where_from)
    saved = dict(context.ctes)
    _add_ctes(select, context)
    try:
        scope = _scope(select, context, outer=None)
        where = select.args.get("where")
        condition = None
        if where is not None:
            condition = _row_condition(where.this, scope, context, f"WHERE of {where_from}")
        items, starred = _items(select, scope, context, where_from)
    finally:
        context.ctes = saved
    distinct = select.args.get("distinct") is not None
    sql_alias = context.reads.next_alias()
    columns = {
        item_name: replace(
            source, sql=exp.column(exp.to_identifier(item_name, quoted=True), table=sql_alias)
        )
        for item_name, (_, source) in items.items()
    }
    hidden = tuple(
        n for n, (index, inner) in starred.items() if inner in scope.relations[index].hidden
    )
    row_ids: list[exp.Expr] = [
        exp.column(f"__rid{i}", table=sql_alias) for i in range(len(scope.row_ids()))
    ]
    if distinct:
        if not any(c.key for c in columns.values()):
            raise QueryRejected(
                f"SELECT DISTINCT in {where_from} must keep the privacy unit column "
                f"({scope.unit_name}) among its columns: without it, DISTINCT would merge "
                "different patients' rows"
            )
        if hidden:
            raise QueryRejected(
                f"SELECT DISTINCT * in {where_from} reads every column, and {hidden[0]} is not "
                "shared; name the columns"
            )
        row_ids = [exp.column(UNIT_COLUMN, table=sql_alias)] + [
            c.sql.copy() for c in columns.values()
        ]
        for item_name in starred:  # DISTINCT * reads every column
            source = items[item_name][1]
            context.reads.note(source, as_key=source.unit)
    relation = Relation(
        label=label,
        alias=name,
        item=exp.Null(),
        columns=columns,
        unit=exp.column(UNIT_COLUMN, table=sql_alias),
        row_ids=row_ids,
        k=scope.k,
        hidden=hidden,
    )

    def render() -> exp.Expr:
        projections: list[exp.Expr] = [exp.alias_(_scope_unit(scope), UNIT_COLUMN)]
        if not distinct:
            for index, rid in enumerate(scope.row_ids()):
                projections.append(exp.alias_(rid, f"__rid{index}"))
        for item_name, (expression, _) in items.items():
            if item_name in starred:
                # SELECT * projects only what the query reads (DISTINCT: every column)
                if not distinct and item_name not in relation.used:
                    continue
                index, inner = starred[item_name]
                scope.relations[index].used.add(inner)
            value = scope.to_sql(guard_row_errors(expression))
            projections.append(exp.alias_(value, item_name, quoted=True))
        inner_select = _inner_from(exp.select(*projections), scope)
        if condition is not None:
            inner_select = inner_select.where(condition.copy())
        if distinct:
            inner_select = inner_select.distinct()
        return exp.Subquery(
            this=inner_select, alias=exp.TableAlias(this=exp.to_identifier(sql_alias))
        )

    relation.render = render
    return relation


def _items(
    select: exp.Select, scope: Scope, context: Context, where_from: str
) -> tuple[dict[str, tuple[exp.Expr, SourceColumn]], dict[str, tuple[int, str]]]:
    """The SELECT list of a derived table: exposed name -> (resolved expression, column), and
    the names ``*`` exposes -> (relation index, column name)."""
    items: dict[str, tuple[exp.Expr, SourceColumn]] = {}
    starred: dict[str, tuple[int, str]] = {}

    def add(name: str, expression: exp.Expr, source: SourceColumn) -> None:
        if name.startswith("__"):
            raise QueryRejected(
                f"the name {name} in {where_from} is reserved (names starting with __); "
                "choose another alias"
            )
        if name in items:
            raise QueryRejected(
                f"{where_from} has two columns named {name}; give them distinct aliases"
            )
        items[name] = (expression, source)

    for item in select.expressions:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            index = _star(item, scope, where_from)
            for name in scope.relations[index].columns:
                resolved = scope.peek(index, name)
                add(name, exp.column(resolved.name), resolved.source)
                starred[name] = (index, name)
            continue
        inner = item.this if isinstance(item, exp.Alias) else item
        inner = inner.unnest()
        check_row_level(inner, f"the SELECT list of {where_from}")
        if isinstance(inner, exp.Column):
            resolved = scope.resolve(inner)
            context.reads.note(resolved.source, as_key=resolved.source.unit)
            name = str(item.alias if isinstance(item, exp.Alias) else inner.name).lower()
            source = replace(
                resolved.source,
                column=replace(resolved.source.column, name=name),
                key=resolved.source.unit and resolved.name == scope.unit_name,
            )
            add(name, exp.column(resolved.name), source)
            continue
        if not isinstance(item, exp.Alias):
            raise QueryRejected(
                f"the expression {inner.sql('duckdb', comments=False)} in {where_from} needs "
                "an alias (... AS name) so the outer query can refer to it"
            )
        expression = _resolve_row(inner, scope, context, as_key=False)
        check_value(expression, scope.table())
        kind = infer_type(expression, partial(_column_type, scope.table()), _no_aggregate)
        name = str(item.alias).lower()
        add(
            name,
            expression,
            SourceColumn(column=Column(name, cast(ColumnType, kind)), sql=exp.Null()),
        )
    return items, starred


def _star(item: exp.Expr, scope: Scope, where_from: str) -> int:
    """The relation ``*`` or ``t.*`` in a derived table stands for (its index in ``scope``)."""
    qualifier = str(item.table).lower() if isinstance(item, exp.Column) else ""
    indexes = [i for i, r in enumerate(scope.relations) if not qualifier or r.alias == qualifier]
    if not indexes:
        raise UnknownObject(f"unknown table reference {qualifier!r} in {qualifier}.*")
    if len(indexes) > 1:
        raise QueryRejected(
            f"SELECT * over several joined tables in {where_from} is ambiguous (each has its "
            "own unit column); name the columns, or use <alias>.*"
        )
    return indexes[0]


def _scope_unit(scope: Scope) -> exp.Expr:
    return scope.relations[0].unit.copy()


def _column_type(table: Table, name: str) -> str:
    column = table.column(name)
    assert column is not None
    return column.type


def _no_aggregate(_: exp.AggFunc) -> str:
    raise AssertionError("row-level expressions hold no aggregates")


def _resolve_row(expression: exp.Expr, scope: Scope, context: Context, *, as_key: bool) -> exp.Expr:
    """Resolve the columns of a row-level expression to the scope's virtual names."""

    def bind(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            resolved = scope.resolve(node)
            context.reads.note(resolved.source, as_key=as_key)
            return exp.column(resolved.name)
        if is_semi_join(node):
            return _semi_join(node, scope, context)
        return node

    return expression.transform(bind)


def _row_condition(where: exp.Expr, scope: Scope, context: Context, clause: str) -> exp.Expr:
    """A subquery's WHERE: checked, resolved, type-checked, guarded and turned into SQL."""
    check_row_level(where, clause, subqueries=True)
    resolved = _resolve_row(where, scope, context, as_key=False)
    check_condition(resolved, scope.table())
    return scope.to_sql(guard_row_errors(resolved))


def _semi_join(node: exp.Expr, scope: Scope, context: Context) -> exp.Expr:
    """An IN / EXISTS subquery on the unit -> a virtual boolean column of ``scope``."""
    if isinstance(node, exp.Exists):
        sql = _exists(node, scope, context)
    else:
        assert isinstance(node, exp.In)
        sql = _in_subquery(node, scope, context)
    name = f"__semi{context.semi_joins}"
    context.semi_joins += 1
    scope.extra[name] = SourceColumn(column=Column(name, "BOOLEAN"), sql=sql)
    return exp.column(name)


def _subquery_select(node: exp.Expr, what: str) -> exp.Select:
    inner = node.this if isinstance(node, exp.Subquery | exp.Exists) else node
    if isinstance(inner, exp.Subquery):
        inner = inner.this
    if not isinstance(inner, exp.Select):
        raise QueryRejected(f"the subquery of {what} must be one SELECT")
    check_subquery_clauses(inner, f"the subquery of {what}")
    return inner


def _in_subquery(node: exp.In, outer: Scope, context: Context) -> exp.Expr:
    """``unit IN (SELECT unit FROM ...)``: the outer unit, the inner rows' units."""
    lhs = node.this.unnest()
    left = outer.resolve(lhs) if isinstance(lhs, exp.Column) else None
    if left is None or not left.source.unit:
        raise QueryRejected(
            f"IN (subquery) must test the privacy unit column ({outer.unit_name} IN (SELECT "
            f"{outer.unit_name} FROM ...)); {lhs.sql('duckdb', comments=False)} is not: a "
            "subquery over other columns would compare one patient's value with other "
            "patients' rows"
        )
    select = _subquery_select(node.args["query"], "IN (...)")
    context.reads.note(left.source, as_key=True)
    saved = dict(context.ctes)
    _add_ctes(select, context)
    try:
        scope = _scope(select, context, outer=outer)
        if len(select.expressions) != 1:
            raise QueryRejected("the subquery of IN (...) must select one column, the unit")
        item = select.expressions[0].unnest()
        if isinstance(item, exp.Alias):
            item = item.this.unnest()
        right = scope.resolve(item) if isinstance(item, exp.Column) else None
        if right is None or not (right.source.unit and right.name == scope.unit_name):
            raise QueryRejected(
                f"the subquery of IN (...) must select its privacy unit column "
                f"({scope.unit_name}); it selects {item.sql('duckdb', comments=False)}"
            )
        check_unit_types(left.source, right.source, node.sql("duckdb", comments=False))
        context.reads.note(right.source, as_key=True)
        where = select.args.get("where")
        condition = None
        if where is not None:
            condition = _row_condition(where.this, scope, context, "WHERE of IN (...)")
        inner = _inner_from(exp.select(scope.sql_of(right.name)), scope)
        if condition is not None:
            inner = inner.where(condition)
        if select.args.get("distinct") is not None:
            inner = inner.distinct()
    finally:
        context.ctes = saved
    context.reads.joins.append(f"semi-join IN (subquery over {scope.label}) on the unit")
    return exp.In(this=left.source.sql.copy(), query=exp.Subquery(this=inner))


def _exists(node: exp.Exists, outer: Scope, context: Context) -> exp.Expr:
    """``EXISTS (SELECT ... FROM t WHERE t.unit = outer.unit AND <t's own conditions>)``."""
    select = _subquery_select(node, "EXISTS (...)")
    for item in select.expressions:
        if not isinstance(item, exp.Star):
            check_row_level(item.unnest(), "the SELECT list of EXISTS (...)")
    saved = dict(context.ctes)
    _add_ctes(select, context)
    try:
        scope = _scope(select, context, outer=outer)
        where = select.args.get("where")
        conjuncts = _conjuncts(where.this) if where is not None else []
        link: exp.Expr | None = None
        rest: list[exp.Expr] = []
        for conjunct in conjuncts:
            if _is_correlated(conjunct, scope):
                if link is not None:
                    raise QueryRejected(_correlation_message(conjunct))
                link = _correlation(conjunct, scope, context)
            else:
                rest.append(conjunct)
        if link is None:
            raise QueryRejected(
                "EXISTS (...) must be correlated with the enclosing query on the privacy unit "
                f"(WHERE inner.{scope.unit_name} = outer.{outer.unit_name}); an uncorrelated "
                "EXISTS would test other patients' rows"
            )
        conditions = [link]
        if rest:
            condition = exp.and_(*rest) if len(rest) > 1 else rest[0]
            conditions.append(_row_condition(condition, scope, context, "WHERE of EXISTS (...)"))
        inner = _inner_from(exp.select(exp.Literal.number(1)), scope)
        inner = inner.where(exp.and_(*conditions) if len(conditions) > 1 else conditions[0])
    finally:
        context.ctes = saved
    context.reads.joins.append(f"semi-join EXISTS (subquery over {scope.label}) on the unit")
    return exp.Exists(this=inner)


def _conjuncts(condition: exp.Expr) -> list[exp.Expr]:
    """The operands of a chain of ANDs (parentheses removed).

    >>> import sqlglot
    >>> [c.sql() for c in _conjuncts(sqlglot.parse_one("(a = 1 AND b) AND (c OR d)"))]
    ['a = 1', 'b', 'c OR d']
    """
    node = condition.unnest()
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _is_correlated(conjunct: exp.Expr, scope: Scope) -> bool:
    """True if the condition refers to a column of an enclosing query (nested IN / EXISTS
    subqueries are checked on their own)."""
    for node in conjunct.walk(prune=is_semi_join):
        if isinstance(node, exp.Column) and scope.find(node) is None:
            return True
    return False


def _correlation_message(conjunct: exp.Expr) -> str:
    return (
        f"the subquery condition {conjunct.sql('duckdb', comments=False)} refers to the "
        "enclosing query; a correlated subquery may refer to it only once, as a semi-join on "
        "the privacy unit (WHERE inner.unit = outer.unit); put other conditions on the outer "
        "rows in the outer WHERE"
    )


def _correlation(conjunct: exp.Expr, scope: Scope, context: Context) -> exp.Expr:
    """The SQL of ``inner.unit = outer.unit`` (either order)."""
    node = conjunct.unnest()
    if not (
        isinstance(node, exp.EQ)
        and isinstance(node.this, exp.Column)
        and isinstance(node.expression, exp.Column)
    ):
        raise QueryRejected(_correlation_message(conjunct))
    sides = [scope.resolve(n, correlated=True) for n in (node.this, node.expression)]
    if sorted(s.outer for s in sides) != [False, True] or not all(s.source.unit for s in sides):
        raise QueryRejected(_correlation_message(conjunct))
    check_unit_types(sides[0].source, sides[1].source, conjunct.sql("duckdb", comments=False))
    for side in sides:
        context.reads.note(side.source, as_key=True)
    inner = next(s for s in sides if not s.outer)
    outer_side = next(s for s in sides if s.outer)
    if inner.name != scope.unit_name:
        raise QueryRejected(_correlation_message(conjunct))
    return exp.EQ(this=scope.sql_of(inner.name), expression=_outer_sql(outer_side))


def _outer_sql(resolved: Resolved) -> exp.Expr:
    return resolved.source.sql.copy()


def _inner_from(select: exp.Select, scope: Scope) -> exp.Select:
    item, joins = from_clause(scope)
    select = select.from_(item)
    for join in joins:
        select = select.join(join)
    return select
