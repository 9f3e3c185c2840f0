"""The ``silo`` pseudo-column: a group key whose value is the clinic's id, for per-clinic results.

``SELECT silo, COUNT(*) FROM patients GROUP BY silo`` gives one cell per clinic. The key's
public domain is the contract's ``silos`` list (declared in ``[federation]``), so the vector
layout is known before any row is read, as for any key. In the partial SQL the key is the
placeholder ``$fedsql_silo`` (``SILO_PARAM``): the plan, and so its hash, is the same at the hub
and at every silo, and each silo binds the placeholder to its *own* id (``bind_silo``), never
to a value the hub sends. Every row of a silo then falls in that silo's cells, and every other
clinic's cells of its vector are zero.

``silo`` names the pseudo-column only where no relation the query reads has a column of that
name (a contract with ``silos`` refuses real columns named ``silo``, so only a CTE or subquery
alias can shadow it). It may be a GROUP BY key (also by ordinal or output alias), appear in
SELECT, HAVING and ORDER BY as that key, and inside key expressions such as CASE bands over it;
it may not be filtered on, joined on or aggregated: it has no value per row that a silo could
compute without knowing the hub's request, only a per-clinic label.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from fedsql.catalog import SILO_COLUMN, Column, Contract, Domain
from fedsql.errors import QueryRejected
from fedsql.sql.plan import SILO_PARAM
from fedsql.sql.statement import DIALECT

__all__ = [
    "bind_silo",
    "is_silo_reference",
    "only_a_key",
    "silo_column",
    "silo_placeholder",
]


def silo_column(contract: Contract) -> Column:
    """The pseudo-column as a contract column: VARCHAR over the contract's ``silos`` list.

    Raises:
        QueryRejected: The contract declares no ``silos`` list.

    >>> silo_column(Contract("f", (), silos=("a", "b"))).domain.keys()
    ('a', 'b')
    """
    if not contract.silos:
        raise QueryRejected(
            f"{SILO_COLUMN} (the per-clinic pseudo-column) needs the list of clinic ids in the "
            f'contract; add silos = ["<clinic id>", ...] to its [federation] section'
        )
    return Column(
        name=SILO_COLUMN,
        type="VARCHAR",
        domain=Domain("enum", values=contract.silos),
        description="The clinic's silo id (per-clinic breakdowns)",
    )


def is_silo_reference(node: exp.Expr) -> bool:
    """True for an unqualified column reference spelled ``silo`` (any case, quoted or not).

    >>> is_silo_reference(sqlglot.parse_one('"Silo"', read="duckdb"))
    True
    >>> is_silo_reference(sqlglot.parse_one("p.silo", read="duckdb"))
    False
    """
    return (
        isinstance(node, exp.Column)
        and not node.table
        and isinstance(node.this, exp.Identifier)
        and str(node.name).lower() == SILO_COLUMN
    )


def only_a_key(where: str) -> QueryRejected:
    """The refusal of ``silo`` anywhere but as a group key.

    >>> str(only_a_key("WHERE")).split(";")[0]
    'silo (the per-clinic pseudo-column) cannot be used in WHERE'
    """
    return QueryRejected(
        f"{SILO_COLUMN} (the per-clinic pseudo-column) cannot be used in {where}; it is only a "
        f"grouping key: GROUP BY {SILO_COLUMN}, and show it in SELECT, HAVING or ORDER BY "
        "(filter clinics in HAVING, e.g. HAVING silo <> 'x')"
    )


def silo_placeholder(expression: exp.Expr) -> exp.Expr:
    """A copy of a key expression with the pseudo-column replaced by ``$fedsql_silo``.

    >>> silo_placeholder(sqlglot.parse_one('"silo"', read="duckdb")).sql("duckdb")
    '$fedsql_silo'
    """

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and str(node.name).lower() == SILO_COLUMN:
            return exp.Placeholder(this=SILO_PARAM)
        return node

    return expression.transform(swap)


def bind_silo(sql: str, silo_id: str) -> str:
    """A partial query with ``$fedsql_silo`` bound to a silo's own id (a string literal).

    SQL without the placeholder is returned unchanged. The id is written as a literal rather
    than passed as a parameter so that every engine (DuckDB, and the dialects of pushdown
    sources) runs it alike.

    Args:
        sql: The plan's partial SQL (DuckDB dialect).
        silo_id: This silo's own id (from its policy).

    Returns:
        The SQL to run.

    >>> bind_silo("SELECT $fedsql_silo AS k0, '$fedsql_silo' AS t", "mumbai")
    "SELECT 'mumbai' AS k0, '$fedsql_silo' AS t"
    """
    if f"${SILO_PARAM}" not in sql:
        return sql
    tree = sqlglot.parse_one(sql, read=DIALECT)

    def bind(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name == SILO_PARAM:
            return exp.Literal.string(silo_id)
        return node

    pretty = "\n" in sql
    return tree.transform(bind).sql(DIALECT, pretty=pretty, comments=False)
