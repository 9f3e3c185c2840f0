"""Relations of a FROM clause: contract tables under generated aliases, joins on the unit.

Builds the relation of a contract table the caller may see (every column qualified by a fresh
alias, ``rowid`` as its row id, the contract's ``max_rows_per_unit`` as its cap), checks that each
join condition equates the privacy units of both sides (``ON a.unit = b.unit``, nothing else),
and renders the FROM item and JOINs the partial SQL reads. How relations combine into the rows
of a query, through CTEs, subqueries and semi-joins, is ``row_source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from fedsql.catalog import Contract
from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql.scopes import Reads, Relation, Resolved, Scope, SourceColumn


@dataclass
class Context:
    """What every scope of one query shares: contract, visibility, CTEs in reach, reads."""

    contract: Contract
    visible: dict[str, frozenset[str]]
    reads: Reads = field(default_factory=Reads)
    ctes: dict[str, exp.Select] = field(default_factory=dict)
    used_ctes: set[str] = field(default_factory=set)
    semi_joins: int = 0


def base_relation(node: exp.Table, context: Context) -> Relation:
    """The relation of a contract table the caller may see, under a fresh SQL alias.

    Args:
        node: The FROM item naming the table (with an optional alias).
        context: The query's context; the table is recorded among its reads.

    Returns:
        The relation: its shared columns, unit, ``rowid`` and cap.

    Raises:
        UnknownObject: A qualified, unknown or unshared table.
    """
    name = str(node.name).lower()
    contract = context.contract
    shared_tables = sorted(t for t in context.visible if contract.table(t) is not None)
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
            f"unknown table {name!r}; tables you may query: {', '.join(shared_tables) or 'none'}"
        )
    if name not in context.visible:
        raise UnknownObject(
            f"table {name} is not shared; tables you may query: "
            f"{', '.join(shared_tables) or 'none'}"
        )
    alias = str(node.alias).lower() or None
    sql_alias = context.reads.next_alias()
    context.reads.tables.add(table.name)
    shown = context.visible[name]
    columns = {
        c.name: SourceColumn(
            column=c,
            sql=exp.column(exp.to_identifier(c.name, quoted=True), table=sql_alias),
            origin=(table.name, c.name),
            unit=c.name == table.unit,
            key=c.name == table.unit,
        )
        for c in table.columns
    }
    return Relation(
        label=table.name + (f" AS {alias}" if alias else ""),
        alias=alias or table.name,
        item=exp.Table(
            this=exp.to_identifier(table.name, quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(sql_alias)),
        ),
        columns=columns,
        unit=exp.column(exp.to_identifier(table.unit, quoted=True), table=sql_alias),
        row_ids=[exp.column("rowid", table=sql_alias)],
        k=table.max_rows_per_unit,
        table=table,
        hidden=tuple(c for c in table.column_names if c not in shown),
    )


def join_condition(
    on: exp.Expr, left: list[Relation], right: Relation, context: Context
) -> exp.Expr:
    """The SQL of a join's ON condition, which must equate the units of both sides.

    Args:
        on: The analyst's ON condition.
        left: The relations joined so far.
        right: The relation being joined.
        context: The query's context; the unit columns are recorded as join keys.

    Returns:
        ``<earlier unit> = <right unit>`` over the relations' SQL aliases.

    Raises:
        QueryRejected: The condition is anything but one equality of two unit columns, one of
            ``right`` and one of a relation joined before it.
        UnknownObject: It names an unknown or unshared column.
    """
    scope = Scope([*left, right])
    shown = on.sql("duckdb", comments=False)
    why = (
        f"joins must be on the privacy unit alone (ON a.unit = b.unit); {shown} is not. A "
        "join on other columns could pair one patient's rows with another patient's, and "
        "then no bound on one patient's contribution would hold. Filter on other columns in "
        "WHERE"
    )
    on = on.unnest()
    if not (
        isinstance(on, exp.EQ)
        and isinstance(on.this, exp.Column)
        and isinstance(on.expression, exp.Column)
    ):
        raise QueryRejected(why)
    sides: list[tuple[int, SourceColumn]] = []
    for node in (on.this, on.expression):
        found = scope.resolve(node)
        index = _relation_index(scope, node, found)
        sides.append((index, found.source))
    last = len(left)
    if not all(source.unit for _, source in sides):
        raise QueryRejected(why)
    if sorted(index == last for index, _ in sides) != [False, True]:
        raise QueryRejected(
            f"the join condition {shown} must compare the unit of {right.label} with the unit "
            "of a table joined before it"
        )
    check_unit_types(sides[0][1], sides[1][1], shown)
    sides.sort(key=lambda side: side[0])
    for _, source in sides:
        context.reads.note(source, as_key=True)
    return exp.EQ(this=sides[0][1].sql.copy(), expression=sides[1][1].sql.copy())


def _relation_index(scope: Scope, node: exp.Column, found: Resolved) -> int:
    """Which relation of ``scope`` a resolved reference belongs to."""
    for index, relation in enumerate(scope.relations):
        if found.source in relation.columns.values() and (
            not node.table or str(node.table).lower() == relation.alias
        ):
            return index
    raise AssertionError("resolved columns belong to a relation")


def join_node(relation: Relation) -> exp.Join:
    """The rendered JOIN of a relation after the first.

    Args:
        relation: A joined relation (it carries its side and checked ON condition).

    Returns:
        ``[LEFT] JOIN <item> ON <units equal>``.
    """
    assert relation.on is not None
    join = exp.Join(this=relation.sql_item(), on=relation.on.copy())
    if relation.side:
        join.set("side", relation.side)
    return join


def from_clause(scope: Scope) -> tuple[exp.Expr, list[exp.Join]]:
    """The FROM item and JOINs of a scope, as the partial SQL writes them.

    Args:
        scope: The scope.

    Returns:
        The first relation's FROM item and the JOIN of every other relation.
    """
    return scope.relations[0].sql_item(), [join_node(r) for r in scope.relations[1:]]


def check_unit_outputs(scope: Scope, query_columns: list[tuple[str, str]]) -> None:
    """Refuse a NULL-extended unit column (the right side of a LEFT JOIN) outside WHERE.

    Args:
        scope: The outer scope.
        query_columns: ``(clause, virtual name)`` of every column read after aggregation.

    Raises:
        QueryRejected: Such a unit column is output, grouped on or aggregated.
    """
    for clause, name in query_columns:
        for virtual, column in scope.virtual_columns():
            if virtual == name and column.unit and name != scope.unit_name:
                raise QueryRejected(
                    f"{name} is a privacy unit column and cannot be used in {clause}: "
                    "results would describe single patients. Use it only in WHERE and in "
                    "join conditions"
                )


def check_sources(scope: Scope, keys: list[str], summed: list[tuple[str, str]]) -> None:
    """Refuse group keys without a domain and sums without bounds, naming where they come from.

    Through joins and subqueries a column's contract table is not the query's: the message
    names the contract column a key or summed column passes through, or says that a subquery
    computes it (then it has no public domain or bounds at all).

    Args:
        scope: The outer scope.
        keys: Virtual names of the GROUP BY columns.
        summed: ``(aggregate, virtual name)`` of every SUM / AVG over a plain column.

    Raises:
        QueryRejected: A key without a domain, or a summed numeric column without bounds.
    """
    columns = dict(scope.virtual_columns())
    for name in keys:
        source = columns[name]
        if source.unit or source.column.domain is not None:
            continue
        if source.origin is None:
            raise QueryRejected(
                f"cannot GROUP BY {name}: a subquery computes it, so it has no public domain; "
                "group by a contract column that has a domain"
            )
        table, column = source.origin
        raise QueryRejected(
            f"cannot GROUP BY {name} ({table}.{column}): it has no domain in the contract, and "
            f"group keys must come from a public domain; add `domain` to column {column} of "
            f"table {table} in the contract"
        )
    for aggregate, name in summed:
        source = columns[name]
        if source.unit or not source.column.is_numeric or source.column.bounds is not None:
            continue
        if source.origin is None:
            raise QueryRejected(
                f"{aggregate}({name}) is not supported: a subquery computes {name}, so it has "
                f"no contract bounds and {aggregate} over it has no known sensitivity; "
                f"{aggregate} a contract column that has bounds"
            )
        table, column = source.origin
        raise QueryRejected(
            f"column {table}.{column} has no bounds in the contract, so {aggregate} over it "
            f"has no known sensitivity; add `bounds = [lo, hi]` to it"
        )


_NUMBERS = ("INTEGER", "BIGINT")


def check_unit_types(a: SourceColumn, b: SourceColumn, shown: str) -> None:
    """Two unit columns compared in a join or semi-join must have comparable types.

    DuckDB would otherwise convert one side row by row, which fails on some values: whether
    the query fails would then depend on single rows.

    Args:
        a: One unit column.
        b: The other.
        shown: The condition as written, for the message.

    Raises:
        QueryRejected: The contract declares them with types of different kinds.
    """
    left, right = a.column.type, b.column.type
    if left != right and not (left in _NUMBERS and right in _NUMBERS):
        raise QueryRejected(
            f"{shown} compares unit columns of types {left} and {right}; the contract must "
            "declare the unit columns of joined tables with the same type"
        )
