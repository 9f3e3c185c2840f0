"""The resolved query: the analyst's SELECT with every name bound to a contract column.

This is the planner's internal model between validation and SQL generation. It holds sqlglot
nodes and never leaves ``fedsql.sql``. In every expression it holds, each ``Column`` node is an
unqualified reference, by its lower-case name, to a column of ``table`` that the caller may see;
output aliases and ordinals in GROUP BY, HAVING and ORDER BY are already replaced by the
expressions they stand for. ``group_by`` holds the group key expressions (a plain column or an
expression over columns, e.g. ``age // 10``), deduplicated, in GROUP BY order.

For one contract table ``table`` is that table. When the query joins tables on the privacy
unit, or reads CTEs, subqueries or semi-joins, ``table`` is the *joined rows* as one virtual
table (see ``scopes``): its columns carry virtual names (``value``, ``l.value``, ``__semi0``),
its unit is the shared unit column and its ``max_rows_per_unit`` is the cap of the joined rows;
``source`` says how the partial SQL reads them.

``per_silo`` says the query reads the ``silo`` pseudo-column (``silo_key``); ``table`` then
lists it after its real columns, so every step treats it as a column with a public domain, and
only the partial SQL replaces it by the silo's own id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from fedsql.catalog import Table
from fedsql.sql.allowlist import AGGREGATES

if TYPE_CHECKING:
    from fedsql.sql.row_source import RowSource


@dataclass
class Output:
    """One SELECT-list item: its result column name and resolved expression."""

    name: str
    expression: exp.Expr


@dataclass
class Query:
    """A validated single-table aggregate SELECT, resolved against the contract."""

    table: Table
    outputs: list[Output]
    where: exp.Expr | None = None
    group_by: list[exp.Expr] = field(default_factory=list)
    having: exp.Expr | None = None
    order: list[exp.Ordered] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    referenced: set[str] = field(default_factory=set)
    source: RowSource | None = None
    per_silo: bool = False

    @property
    def joined(self) -> bool:
        """True when the rows come from joins, CTEs, subqueries or semi-joins."""
        return self.source is not None and not self.source.plain

    def reads(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
        """The plan's ``tables``, ``columns`` and ``joins``: every contract table and column
        read, through every join, CTE and subquery, and each join and semi-join on the unit."""
        if not self.joined:
            return (
                (self.table.name,),
                tuple(sorted((self.table.name, name) for name in self.referenced)),
                (),
            )
        assert self.source is not None
        reads = self.source.reads
        return tuple(sorted(reads.tables)), tuple(sorted(reads.columns)), tuple(reads.joins)

    def post_aggregation(self) -> Iterator[tuple[str, exp.Expr]]:
        """The expressions evaluated per group, with their clause: outputs, HAVING, ORDER BY."""
        for output in self.outputs:
            yield "SELECT", output.expression
        if self.having is not None:
            yield "HAVING", self.having
        for ordered in self.order:
            yield "ORDER BY", ordered.this

    def aggregates(self) -> Iterator[exp.AggFunc]:
        """Every aggregate call, in order of first use (SELECT list, HAVING, ORDER BY)."""
        for _, expression in self.post_aggregation():
            for node in expression.walk(bfs=False):
                if isinstance(node, exp.AggFunc) and type(node) in AGGREGATES:
                    yield node


def outside_aggregates(expression: exp.Expr) -> Iterator[exp.Column]:
    """Column references of ``expression`` that are not inside an aggregate call.

    >>> import sqlglot
    >>> tree = sqlglot.parse_one("a + SUM(b) + c", read="duckdb")
    >>> [c.name for c in outside_aggregates(tree)]
    ['a', 'c']
    """
    for node in expression.walk(bfs=False, prune=lambda n: isinstance(n, exp.AggFunc)):
        if isinstance(node, exp.Column):
            yield node
