"""Name scopes of row-level SQL: the relations of one FROM clause and how their columns resolve.

A *relation* is one FROM item: a contract table or a row-level subquery (a derived table or an
inlined CTE). Each gets a generated SQL alias (``__s0``, ``__s1``, ...) unique in the whole
partial query, so an analyst's aliases never shadow one another in the SQL a silo runs.

Inside a scope every column gets a *virtual name*, the name the rest of the planner sees (the
resolved query's expressions hold only unqualified virtual names):

* the privacy unit column of every relation that is never NULL-extended (the first relation and
  those inner-joined to it on the unit) is one column named after the first relation's unit,
  since the join makes them equal;
* a column whose name occurs in one relation only keeps its name (``value``);
* a name that occurs in several relations is qualified: ``l.value``, ``v.cost``; so is the unit
  column of a relation on the right of a LEFT JOIN, which may be NULL (``v.patient_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from sqlglot import exp

from fedsql.catalog import Column, Table
from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql.silo_key import is_silo_reference, only_a_key


@dataclass(frozen=True)
class SourceColumn:
    """A column a relation exposes: contract metadata under its exposed name, and its SQL.

    ``origin`` is the contract ``(table, column)`` it passes through unchanged, if any; ``unit``
    says it is a privacy unit column and ``key`` that it is never NULL-extended (so it equals
    the relation's partition unit on every row).
    """

    column: Column
    sql: exp.Expr
    origin: tuple[str, str] | None = None
    unit: bool = False
    key: bool = False


@dataclass
class Relation:
    """One FROM item: a contract table or a row-level subquery, as the partial SQL reads it.

    ``columns`` holds every column the relation has by the contract, shared or not, so that
    names (and the SQL) never depend on what the caller may see; ``hidden`` lists those the
    caller may not read. A subquery's SQL is rendered late (``render``), once the whole query is
    resolved, so that ``SELECT *`` projects only the columns the query reads (``used``).
    """

    label: str
    alias: str
    item: exp.Expr
    columns: dict[str, SourceColumn]
    unit: exp.Expr
    row_ids: list[exp.Expr]
    k: int
    table: Table | None = None
    hidden: tuple[str, ...] = ()
    nullable: bool = False
    side: str = ""
    on: exp.Expr | None = None
    used: set[str] = field(default_factory=set)
    render: Callable[[], exp.Expr] | None = None

    def sql_item(self) -> exp.Expr:
        """The FROM item as the partial SQL writes it (a subquery is rendered now)."""
        return self.render() if self.render is not None else self.item.copy()

    @property
    def shared(self) -> list[str]:
        """The columns the caller may read, in order."""
        return [name for name in self.columns if name not in self.hidden]


@dataclass
class Reads:
    """What a whole query reads, through every subquery: the plan's tables, columns and joins."""

    tables: set[str] = field(default_factory=set)
    columns: set[tuple[str, str]] = field(default_factory=set)
    join_keys: set[tuple[str, str]] = field(default_factory=set)
    joins: list[str] = field(default_factory=list)
    counter: int = 0

    def next_alias(self) -> str:
        """A fresh SQL alias for a relation (``__s0``, ``__s1``, ...)."""
        alias = f"__s{self.counter}"
        self.counter += 1
        return alias

    def note(self, column: SourceColumn, *, as_key: bool) -> None:
        """Record that ``column`` is read, as a join key or as a value (unit uses count)."""
        if column.origin is None:
            return
        if column.unit and as_key:
            self.join_keys.add(column.origin)
        else:
            self.columns.add(column.origin)


@dataclass
class Resolved:
    """A column reference resolved in a scope: its virtual name and source column."""

    name: str
    source: SourceColumn
    outer: bool = False


class Scope:
    """The relations of one SELECT's FROM clause, with virtual names for their columns."""

    def __init__(self, relations: list[Relation], outer: Scope | None = None) -> None:
        self.relations = relations
        self.outer = outer
        self.extra: dict[str, SourceColumn] = {}
        self._names: dict[tuple[int, str], str] = {}
        first = relations[0]
        units = [n for n, c in first.columns.items() if c.key]
        self.unit_name = units[0] if units else "__unit"
        counts: dict[str, int] = {}
        for relation in relations:
            for name, column in relation.columns.items():
                if not (column.key and not relation.nullable):
                    counts[name] = counts.get(name, 0) + 1
        for index, relation in enumerate(relations):
            for name, column in relation.columns.items():
                if column.key and not relation.nullable:
                    virtual = self.unit_name
                elif counts[name] > 1 or name == self.unit_name:
                    virtual = f"{relation.alias}.{name}"
                else:
                    virtual = name
                self._names[(index, name)] = virtual

    @property
    def k(self) -> int:
        """The most rows one unit can have in the scope's joined rows (product of the caps)."""
        k = 1
        for relation in self.relations:
            k *= relation.k
        return k

    @property
    def label(self) -> str:
        """The scope's relations as the analyst wrote them, for messages."""
        return " JOIN ".join(r.label for r in self.relations)

    def row_ids(self) -> list[exp.Expr]:
        """The row identifiers of the joined rows: every relation's, in order."""
        return [rid.copy() for relation in self.relations for rid in relation.row_ids]

    def virtual_columns(self) -> Iterator[tuple[str, SourceColumn]]:
        """Every (virtual name, column) of the scope, each name once."""
        seen: set[str] = set()
        for index, relation in enumerate(self.relations):
            for name, column in relation.columns.items():
                virtual = self._names[(index, name)]
                if virtual not in seen:
                    seen.add(virtual)
                    yield virtual, column
        yield from self.extra.items()

    def table(self) -> Table:
        """The scope's rows as one virtual table: virtual columns, unit and row cap k."""
        columns = tuple(replace(c.column, name=n) for n, c in self.virtual_columns())
        return Table(
            name=self.label, unit=self.unit_name, max_rows_per_unit=self.k, columns=columns
        )

    def sql_of(self, name: str) -> exp.Expr:
        """The SQL reading the virtual column ``name``."""
        for virtual, column in self.virtual_columns():
            if virtual == name:
                return column.sql.copy()
        raise KeyError(name)

    def to_sql(self, expression: exp.Expr) -> exp.Expr:
        """A copy of a resolved expression with every virtual column replaced by its SQL."""

        def substitute(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Column) and not node.table:
                return self.sql_of(str(node.name))
            return node

        return expression.transform(substitute)

    def resolve(self, node: exp.Column, *, correlated: bool = False) -> Resolved:
        """The column a reference names, in this scope (or, with ``correlated``, an outer one).

        Args:
            node: The column reference, qualified or not.
            correlated: Allow a reference to an enclosing query's column (EXISTS links).

        Returns:
            Its virtual name and source column; ``outer`` when it is an enclosing query's.

        Raises:
            UnknownObject: Unknown or unshared column, unknown qualifier.
            QueryRejected: An ambiguous name, a reference to an enclosing query where it is
                not allowed.
        """
        if node.args.get("db") or node.args.get("catalog"):
            raise UnknownObject(
                f"qualified column reference {node.sql('duckdb', comments=False)} is not "
                f"supported; write {node.name.lower()} or <table or alias>.{node.name.lower()}"
            )
        found = self._find(node)
        if found is not None:
            return found
        scope = self.outer
        while scope is not None:
            outer = scope._find(node)
            if outer is not None:
                if not correlated:
                    raise QueryRejected(
                        f"the subquery refers to {node.sql('duckdb', comments=False)} of the "
                        "enclosing query; only EXISTS (... WHERE inner.unit = outer.unit AND "
                        "<conditions on the subquery's own tables>) may refer to it, and only "
                        "through the privacy unit"
                    )
                outer.outer = True
                return outer
            scope = scope.outer
        raise self._unknown(node)

    def has(self, name: str) -> bool:
        """True if some relation has a column of that name (shared or not)."""
        return any(name in r.columns for r in self.relations)

    def find(self, node: exp.Column) -> Resolved | None:
        """The column a reference names in this scope alone, or None when none has it."""
        return self._find(node)

    def _find(self, node: exp.Column) -> Resolved | None:
        qualifier = str(node.table).lower()
        name = str(node.name).lower()
        matches: list[tuple[int, Relation]] = []
        for index, relation in enumerate(self.relations):
            if qualifier and qualifier != relation.alias:
                continue
            if name in relation.columns:
                matches.append((index, relation))
        if len(matches) > 1:
            options = " or ".join(f"{r.alias}.{name}" for _, r in matches)
            raise QueryRejected(
                f"column reference {name!r} is ambiguous: the joined tables have several; "
                f"qualify it ({options})"
            )
        if not matches:
            return None
        index, relation = matches[0]
        if name in relation.hidden:
            self._unshared(relation, name)
        relation.used.add(name)
        return Resolved(self._names[(index, name)], relation.columns[name])

    def peek(self, index: int, name: str) -> Resolved:
        """Column ``name`` of relation ``index`` without marking it read (for ``SELECT *``)."""
        return Resolved(self._names[(index, name)], self.relations[index].columns[name])

    def _unshared(self, relation: Relation, name: str) -> None:
        shared = ", ".join(relation.shared) or "none"
        origin = relation.columns[name].origin
        owner = ".".join(origin) if origin is not None else f"{relation.alias}.{name}"
        raise UnknownObject(f"column {owner} is not shared; shared columns: {shared}")

    def _unknown(self, node: exp.Column) -> UnknownObject | QueryRejected:
        qualifier = str(node.table).lower()
        name = str(node.name).lower()
        if is_silo_reference(node):
            return only_a_key("a join, CTE or subquery")
        aliases = [r.alias for r in self.relations]
        if qualifier and qualifier not in aliases:
            reads = ", ".join(r.label for r in self.relations)
            return UnknownObject(
                f"unknown table reference {qualifier!r} in "
                f"{node.sql('duckdb', comments=False)}; the query reads {reads}"
            )
        if len(self.relations) == 1:
            relation = self.relations[0]
            owner = relation.table.name if relation.table is not None else relation.alias
            what = "table" if relation.table is not None else "subquery"
            return UnknownObject(
                f"unknown column {name!r} in {what} {owner}; shared columns: "
                f"{', '.join(relation.shared) or 'none'}"
            )
        return UnknownObject(
            f"unknown column {name!r}: none of {', '.join(aliases)} has a shared column of "
            "that name"
        )
