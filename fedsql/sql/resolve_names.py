"""Name resolution: bind the table and every column to the contract, enforcing visibility.

Output aliases and ordinals in GROUP BY, HAVING and ORDER BY are replaced by the expressions they
stand for.

Names compare case-insensitively, quoted or not (``"Age"``, ``AGE`` and ``age`` are the same
column), as in DuckDB. Precedence follows DuckDB: in GROUP BY a table column wins over an output
alias; in HAVING a group key wins, then an alias; in ORDER BY an alias wins. Qualified names are
accepted only as ``<table or alias>.<column>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from fedsql.catalog import Column, Contract, Table
from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql.check_clauses import row_count
from fedsql.sql.output_names import default_name, unique_names
from fedsql.sql.parameters import BOUND_META
from fedsql.sql.query import Output, Query


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
        self.visible = {
            t.lower(): frozenset(c.lower() for c in cols) for t, cols in visible.items()
        }
        self.table, self.alias = self._resolve_table(select.args["from_"].this, contract)
        self.referenced: set[str] = set()
        self.aliases: dict[str, list[int]] = {}
        self.outputs: list[Output] = []

    # -- tables -------------------------------------------------------------------------

    def _resolve_table(self, node: exp.Table, contract: Contract) -> tuple[Table, str | None]:
        name = str(node.name).lower()
        shared_tables = sorted(t for t in self.visible if contract.table(t) is not None)
        if node.args.get("db") or node.args.get("catalog"):
            parts = (node.args.get(key) for key in ("catalog", "db", "this"))
            written = ".".join(part.sql("duckdb") for part in parts if part is not None)
            raise UnknownObject(
                f"qualified table name {written} is not allowed; name a federated table "
                f"alone, e.g. FROM {name}"
            )
        table = contract.table(name)
        if table is None:
            raise UnknownObject(
                f"unknown table {name!r}; tables you may query: "
                f"{', '.join(shared_tables) or 'none'}"
            )
        if name not in self.visible:
            raise UnknownObject(
                f"table {name} is not shared; tables you may query: "
                f"{', '.join(shared_tables) or 'none'}"
            )
        alias = str(node.alias).lower() or None
        return table, alias

    # -- columns ------------------------------------------------------------------------

    def _column(self, node: exp.Column) -> Column:
        """The contract column a (possibly qualified) reference names, if visible."""
        if node.args.get("db") or node.args.get("catalog"):
            raise UnknownObject(
                f"qualified column reference {node.sql('duckdb', comments=False)} is not "
                f"supported; write {node.name.lower()} or "
                f"{self.alias or self.table.name}.{node.name.lower()}"
            )
        qualifier = str(node.table).lower()
        if qualifier and qualifier != (self.alias or self.table.name):
            reads = self.table.name + (f" AS {self.alias}" if self.alias else "")
            raise UnknownObject(
                f"unknown table reference {qualifier!r} in "
                f"{node.sql('duckdb', comments=False)}; the query reads {reads}"
            )
        name = str(node.name).lower()
        column = self.table.column(name)
        shared = [c for c in self.table.column_names if c in self.visible[self.table.name]]
        if column is None:
            raise UnknownObject(
                f"unknown column {name!r} in table {self.table.name}; shared columns: "
                f"{', '.join(shared) or 'none'}"
            )
        if name not in self.visible[self.table.name]:
            raise UnknownObject(
                f"column {self.table.name}.{name} is not shared; shared columns: "
                f"{', '.join(shared) or 'none'}"
            )
        self.referenced.add(name)
        return column

    def _canonical(self, node: exp.Column) -> exp.Column:
        return exp.column(self._column(node).name)

    def _columns_only(self, expression: exp.Expr, clause: str) -> exp.Expr:
        """Resolve every column of ``expression`` as a table column (no aliases)."""

        def bind(node: exp.Expr) -> exp.Expr:
            if not isinstance(node, exp.Column):
                return node
            name = str(node.name).lower()
            if not node.table and self.table.column(name) is None and name in self.aliases:
                raise QueryRejected(
                    f"{clause} cannot refer to the output alias {name!r}; repeat its expression"
                    + (" (filter on aggregates in HAVING)" if clause == "WHERE" else "")
                )
            return self._canonical(node)

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
            name = str(item.alias) if isinstance(item, exp.Alias) else default_name(expression)
            self.outputs.append(Output(name=name, expression=expression))
        for output, name in zip(
            self.outputs, unique_names([o.name for o in self.outputs]), strict=True
        ):
            output.name = name
        where = select.args.get("where")
        query = Query(
            table=self.table,
            outputs=self.outputs,
            where=self._columns_only(where.this, "WHERE") if where is not None else None,
            limit=row_count(select.args.get("limit")),
            offset=row_count(select.args.get("offset")),
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
        return query

    def _group_key(self, item: exp.Expr) -> exp.Expr:
        """A GROUP BY item as a resolved expression: a column, an alias's or an ordinal's
        expression, or an expression over columns (its domain is checked by ``group_keys``)."""
        target = self._ordinal(item, "GROUP BY")
        if target is None and isinstance(item, exp.Column):
            name = str(item.name).lower()
            if self._is_alias(item) and self.table.column(name) is None:
                target = self._alias_target(item, "GROUP BY")
            else:
                return self._canonical(item)
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
            return self._canonical(node)

        return expression.transform(bind)
