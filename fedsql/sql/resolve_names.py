"""Name resolution: bind the table and every column to the contract, enforcing visibility.

Output aliases and ordinals in GROUP BY, HAVING and ORDER BY are replaced by the expressions they
stand for.

Names compare case-insensitively, quoted or not (``"Age"``, ``AGE`` and ``age`` are the same
column), as in DuckDB. Precedence follows DuckDB: in GROUP BY a table column wins over an output
alias; in HAVING a group key wins, then an alias; in ORDER BY an alias wins. Qualified names are
accepted only as ``<table or alias>.<column>``.

An unqualified ``silo`` that no relation of the query has names the per-clinic pseudo-column
(``silo_key``): accepted as a group key and where a group key may be read, refused in WHERE and
inside aggregates. The resolved query then has the pseudo-column among its table's columns and
``per_silo`` set; it is never among the columns the query reads from a silo's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from sqlglot import exp

from fedsql.catalog import SILO_COLUMN, Column, Contract, Table
from fedsql.errors import QueryRejected
from fedsql.sql.check_clauses import row_count
from fedsql.sql.check_expressions import is_semi_join
from fedsql.sql.output_names import default_name, unique_names
from fedsql.sql.parameters import BOUND_META
from fedsql.sql.query import Output, Query
from fedsql.sql.relations import check_sources, check_unit_outputs
from fedsql.sql.row_source import build_row_source
from fedsql.sql.silo_key import is_silo_reference, only_a_key, silo_column


def resolve_names(
    select: exp.Select, contract: Contract, visible: Mapping[str, Sequence[str]]
) -> Query:
    """Resolve the checked SELECT against the contract and the caller's visible columns.

    Args:
        select: The SELECT, with parameters bound, clauses and expressions checked.
        contract: The federation contract (the authority on tables and columns).
        visible: Table -> columns the caller may see; decides acceptance only.

    Returns:
        The resolved query (new expression trees; ``select`` is left unchanged).

    Raises:
        UnknownObject: An unknown, unshared or qualified table; an unknown or unshared column;
            a qualifier that is neither the table nor its alias.
        QueryRejected: An alias used in WHERE, an ambiguous alias, an ordinal out of range.
    """
    return _Resolver(select, contract, visible).resolve()


class _Resolver:
    """Carries the table, alias, visibility and output aliases through one resolution."""

    def __init__(
        self, select: exp.Select, contract: Contract, visible: Mapping[str, Sequence[str]]
    ) -> None:
        self.select = select
        self.contract = contract
        self.per_silo = False
        self.visible = {
            t.lower(): frozenset(c.lower() for c in cols) for t, cols in visible.items()
        }
        self.source = build_row_source(select, contract, self.visible)
        self.scope = self.source.scope
        first = self.scope.relations[0].table
        self.table: Table = first if self.source.plain and first else self.scope.table()
        self.referenced: set[str] = set()
        self.aliases: dict[str, list[int]] = {}
        self.outputs: list[Output] = []

    # -- columns ------------------------------------------------------------------------

    def _column(self, node: exp.Column) -> Column:
        """The column a (possibly qualified) reference names, if visible."""
        resolved = self.scope.resolve(node)
        self.source.reads.note(resolved.source, as_key=False)
        self.referenced.add(resolved.name)
        if self.source.plain:
            column = self.table.column(resolved.name)
            assert column is not None
            return column
        return replace(resolved.source.column, name=resolved.name)

    def _is_table_column(self, name: str) -> bool:
        return self.scope.has(name)

    def _canonical(self, node: exp.Column, clause: str) -> exp.Column:
        if is_silo_reference(node) and not self._is_table_column(str(node.name).lower()):
            return self._silo(node, clause)
        return exp.column(self._column(node).name)

    def _silo(self, node: exp.Column, clause: str) -> exp.Column:
        """The pseudo-column ``silo``, where a group key may be read."""
        if clause == "WHERE":
            raise only_a_key("WHERE")
        if node.find_ancestor(exp.AggFunc, exp.Filter) is not None:
            raise only_a_key("an aggregate's argument or FILTER")
        silo_column(self.contract)  # refuses a contract without a silos list
        self.per_silo = True
        return exp.column(node.name.lower())

    def _columns_only(self, expression: exp.Expr, clause: str) -> exp.Expr:
        """Resolve every column of ``expression`` as a table column (no aliases)."""

        def bind(node: exp.Expr) -> exp.Expr:
            if clause == "WHERE" and is_semi_join(node):
                return self.source.semi_join(node)
            if not isinstance(node, exp.Column):
                return node
            name = str(node.name).lower()
            if not node.table and not self._is_table_column(name) and name in self.aliases:
                raise QueryRejected(
                    f"{clause} cannot refer to the output alias {name!r}; repeat its expression"
                    + (" (filter on aggregates in HAVING)" if clause == "WHERE" else "")
                )
            return self._canonical(node, clause)

        return expression.transform(bind)

    def _is_alias(self, node: exp.Column) -> bool:
        return not node.table and str(node.name).lower() in self.aliases

    def _alias_target(self, node: exp.Column, clause: str) -> exp.Expr:
        """A copy of the (resolved) output expression an alias reference stands for."""
        name = str(node.name).lower()
        indexes = self.aliases[name]
        targets = {self.outputs[i].expression.sql("duckdb") for i in indexes}
        if len(targets) > 1:
            raise QueryRejected(
                f"{clause} refers to {name!r}, which names {len(indexes)} different outputs; "
                "give them distinct aliases"
            )
        return self.outputs[indexes[0]].expression.copy()

    def _ordinal(self, node: exp.Expr, clause: str) -> exp.Expr | None:
        """The output expression an ordinal (``GROUP BY 1``) stands for, or None."""
        if not (isinstance(node, exp.Literal) and node.is_int) or node.meta.get(BOUND_META):
            return None
        position = int(node.name)
        if not 1 <= position <= len(self.outputs):
            raise QueryRejected(
                f"{clause} {position} is out of range; the SELECT list has "
                f"{len(self.outputs)} item(s)"
            )
        return self.outputs[position - 1].expression.copy()

    # -- clauses ------------------------------------------------------------------------

    def resolve(self) -> Query:
        select = self.select
        for index, item in enumerate(select.expressions):
            if isinstance(item, exp.Alias):
                self.aliases.setdefault(str(item.alias).lower(), []).append(index)
        for item in select.expressions:
            inner = item.this if isinstance(item, exp.Alias) else item
            expression = self._columns_only(inner.unnest(), "SELECT")
            name = (
                str(item.alias) if isinstance(item, exp.Alias) else default_name(_as_written(inner))
            )
            self.outputs.append(Output(name=name, expression=expression))
        for output, name in zip(
            self.outputs, unique_names([o.name for o in self.outputs]), strict=True
        ):
            output.name = name
        where = select.args.get("where")
        resolved_where = self._columns_only(where.this, "WHERE") if where is not None else None
        if not self.source.plain:
            self.table = self.scope.table()
        query = Query(
            table=self.table,
            outputs=self.outputs,
            where=resolved_where,
            limit=row_count(select.args.get("limit")),
            offset=row_count(select.args.get("offset")),
            source=self.source,
        )
        group = select.args.get("group")
        if group is not None:
            for item in group.expressions:
                key = self._group_key(item)
                if all(key != other for other in query.group_by):
                    query.group_by.append(key)
        keys = {str(k.name) for k in query.group_by if isinstance(k, exp.Column)}
        having = select.args.get("having")
        if having is not None:
            query.having = self._post_aggregation(having.this, "HAVING", keys)
        order = select.args.get("order")
        if order is not None:
            for ordered in order.expressions:
                target = self._ordinal(ordered.this, "ORDER BY")
                resolved = ordered.copy()
                resolved.set(
                    "this",
                    target
                    if target is not None
                    else self._post_aggregation(ordered.this, "ORDER BY", keys),
                )
                query.order.append(resolved)
        query.referenced = self.referenced
        self.source.check_ctes_used()
        if not self.source.plain:
            real = [(c, n) for c, n in _post_aggregation_columns(query) if not self._pseudo(n)]
            check_unit_outputs(self.scope, real)
            read_by_keys = [
                str(column.name)
                for key in query.group_by
                for column in key.find_all(exp.Column)
                if not self._pseudo(str(column.name))
            ]
            check_sources(self.scope, read_by_keys, _summed(query))
        if self.per_silo:
            pseudo = silo_column(self.contract)
            query.table = replace(query.table, columns=(*query.table.columns, pseudo))
            query.per_silo = True
        return query

    def _pseudo(self, name: str) -> bool:
        """True if ``name`` (resolved) is the pseudo-column ``silo``."""
        return self.per_silo and name == SILO_COLUMN

    def _group_key(self, item: exp.Expr) -> exp.Expr:
        """A GROUP BY item as a resolved expression: a column, an alias's or an ordinal's
        expression, or an expression over columns (its domain is checked by ``group_keys``)."""
        target = self._ordinal(item, "GROUP BY")
        if target is None and isinstance(item, exp.Column):
            name = str(item.name).lower()
            if self._is_alias(item) and not self._is_table_column(name):
                target = self._alias_target(item, "GROUP BY")
            else:
                return self._canonical(item, "GROUP BY")
        if target is not None:
            return target
        return self._columns_only(item.unnest(), "GROUP BY")

    def _post_aggregation(self, expression: exp.Expr, clause: str, keys: set[str]) -> exp.Expr:
        """Resolve a HAVING / ORDER BY expression: aliases, then columns (inside aggregates:
        columns only)."""

        def bind(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Column):
                return node
            if node.find_ancestor(exp.AggFunc) is None and self._is_alias(node):
                name = str(node.name).lower()
                key_first = clause == "HAVING" and name in keys
                if not key_first:
                    return self._alias_target(node, clause)
            return self._canonical(node, clause)

        return expression.transform(bind)


def _as_written(expression: exp.Expr) -> exp.Expr:
    """A copy of a SELECT item with column references unqualified and lower-case (for naming:
    DuckDB names ``l.value`` and ``VALUE`` as ``value``)."""

    def strip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            return exp.column(str(node.name).lower())
        return node

    return expression.unnest().transform(strip)


def _post_aggregation_columns(query: Query) -> list[tuple[str, str]]:
    """(clause, name) of every column read per group or inside an aggregate."""
    found: list[tuple[str, str]] = [("GROUP BY", c.name) for c in query.group_by]
    for clause, expression in query.post_aggregation():
        found += [(clause, str(c.name)) for c in expression.find_all(exp.Column)]
    return found


def _summed(query: Query) -> list[tuple[str, str]]:
    """(aggregate, column) of every SUM / AVG over a plain column."""
    found: list[tuple[str, str]] = []
    for node in query.aggregates():
        argument = node.this.unnest() if node.this is not None else None
        if isinstance(node, exp.Sum | exp.Avg) and isinstance(argument, exp.Column):
            found.append((node.key.upper(), str(argument.name)))
    return found
