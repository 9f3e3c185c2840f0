"""Clause check: only SELECT, FROM <one table>, WHERE, GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET.

Every other clause (WITH, DISTINCT, joins, QUALIFY, SAMPLE, WINDOW, INTO, ...) and every other
FROM form (subqueries, VALUES, table functions, table modifiers) is refused by name.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.errors import QueryRejected
from fedsql.sql.allowlist import function_name

#: Select clauses a federated query may use (sqlglot arg names).
ALLOWED_CLAUSES: frozenset[str] = frozenset(
    {"expressions", "from_", "where", "group", "having", "order", "limit", "offset"}
)

#: What to tell the analyst about each refused clause, by sqlglot arg name.
_CLAUSE_ADVICE: dict[str, str] = {
    "with_": "common table expressions (WITH ...) are not supported; write one SELECT over "
    "one federated table",
    "distinct": "SELECT DISTINCT is not supported; GROUP BY the columns and aggregate instead",
    "joins": "joins are not supported yet; query one federated table at a time",
    "laterals": "LATERAL is not supported; query one federated table at a time",
    "pivots": "PIVOT / UNPIVOT is not supported; GROUP BY the pivot column instead",
    "qualify": "QUALIFY is not supported; filter aggregates with HAVING",
    "windows": "named windows (WINDOW ...) are not supported; aggregate with GROUP BY instead",
    "sample": "SAMPLE / TABLESAMPLE is not supported; fedsql already bounds each patient's rows",
    "into": "SELECT INTO is not supported; results are returned to you, never stored",
    "locks": "row locking (FOR UPDATE / FOR SHARE) is not supported; queries are read-only",
    "kind": "SELECT AS STRUCT / VALUE is not supported; select aggregates by name",
    "exclude": "SELECT * EXCLUDE is not supported; name the aggregates you want",
    "prewhere": "PREWHERE is not supported; use WHERE",
    "connect": "CONNECT BY is not supported",
    "match": "MATCH_RECOGNIZE is not supported",
}

_TABLE_PARTS: frozenset[str] = frozenset({"this", "db", "catalog", "alias"})
_TABLE_MODIFIERS: dict[str, str] = {
    "when": "time travel, AT (...)",
    "version": "time travel",
    "hints": "table hints",
    "changes": "CHANGES",
    "only": "ONLY",
}


def check_clauses(select: exp.Select) -> None:
    """Refuse every clause and FROM form outside the supported single-table aggregate SELECT.

    Args:
        select: The parsed SELECT with parameters bound.

    Raises:
        QueryRejected: A CTE, DISTINCT, join, subquery or table function in FROM, QUALIFY,
            SAMPLE, named window, GROUPING SETS / ROLLUP / CUBE / GROUP BY ALL, FETCH, a
            percentage or non-literal LIMIT / OFFSET, a missing FROM, ...

    >>> import sqlglot
    >>> check_clauses(sqlglot.parse_one("SELECT COUNT(*) FROM t", read="duckdb"))
    >>> check_clauses(sqlglot.parse_one("SELECT DISTINCT a FROM t", read="duckdb"))
    Traceback (most recent call last):
    fedsql.errors.QueryRejected: SELECT DISTINCT is not supported; GROUP BY the columns and \
aggregate instead
    """
    for key, value in select.args.items():
        if key in ALLOWED_CLAUSES or value is None or value is False or value == []:
            continue
        advice = _CLAUSE_ADVICE.get(key, f"the {key.rstrip('_').upper()} clause is not supported")
        raise QueryRejected(advice)
    _check_from(select)
    _check_group(select.args.get("group"))
    for key in ("limit", "offset"):
        _check_row_count(select.args.get(key), key.upper())


def _check_from(select: exp.Select) -> None:
    """FROM must name exactly one table, with at most a plain alias."""
    source = select.args.get("from_")
    if source is None:
        raise QueryRejected(
            "the query has no FROM clause; aggregate over a federated table, "
            "e.g. SELECT COUNT(*) FROM patients"
        )
    item = source.this
    if isinstance(item, exp.Subquery | exp.Query):
        raise QueryRejected("subqueries in FROM are not supported; query a federated table by name")
    if isinstance(item, exp.Values):
        raise QueryRejected("VALUES lists are not supported; query a federated table by name")
    if not isinstance(item, exp.Table):
        raise QueryRejected(
            f"{item.key.upper()} in FROM is not supported; query a federated table by name"
        )
    if not isinstance(item.this, exp.Identifier):
        raise QueryRejected(
            f"table function {function_name(item.this).lower()}(...) is not allowed; fedsql "
            "reads only federated tables, by name"
        )
    for key, value in item.args.items():
        if key in _TABLE_PARTS or value is None or value is False or value == []:
            continue
        if key == "sample":
            raise QueryRejected(_CLAUSE_ADVICE["sample"])
        if key in ("joins", "laterals", "pivots"):
            raise QueryRejected(_CLAUSE_ADVICE[key])
        what = _TABLE_MODIFIERS.get(key, key.upper())
        raise QueryRejected(
            f"table modifiers ({what}) are not supported; write FROM <table> [AS alias]"
        )
    alias = item.args.get("alias")
    if alias is not None and alias.args.get("columns"):
        raise QueryRejected(
            "column aliases on the table (FROM t AS a(x, y)) are not supported; "
            "alias columns in the SELECT list instead"
        )


def _check_group(group: exp.Group | None) -> None:
    """GROUP BY may list expressions only: no GROUPING SETS, ROLLUP, CUBE, ALL or TOTALS."""
    if group is None:
        return
    if group.args.get("all"):
        raise QueryRejected("GROUP BY ALL is not supported; list the group keys explicitly")
    nodes = (
        (exp.GroupingSets, "grouping_sets", "GROUPING SETS"),
        (exp.Rollup, "rollup", "ROLLUP"),
        (exp.Cube, "cube", "CUBE"),
    )
    for cls, key, name in nodes:
        if group.args.get(key) or any(isinstance(e, cls) for e in group.expressions):
            raise QueryRejected(
                f"{name} is not supported; run one query per grouping (each is noised "
                "and charged separately)"
            )
    if group.args.get("totals"):
        raise QueryRejected("WITH TOTALS is not supported; run a query without GROUP BY")


def _check_row_count(node: exp.Expr | None, clause: str) -> None:
    """LIMIT / OFFSET must be a plain non-negative integer literal (or a bound parameter)."""
    if node is None:
        return
    if isinstance(node, exp.Fetch):
        raise QueryRejected("FETCH FIRST ... ROWS is not supported; use LIMIT n")
    options = node.args.get("limit_options")
    if options is not None and (options.args.get("percent") or options.args.get("with_ties")):
        raise QueryRejected(f"{clause} with PERCENT or WITH TIES is not supported; use {clause} n")
    value = node.args.get("expression")
    if not (isinstance(value, exp.Literal) and value.is_int and int(value.name) >= 0):
        raise QueryRejected(
            f"{clause} must be a non-negative integer literal (or a bound parameter); "
            f"got {value.sql('duckdb') if isinstance(value, exp.Expr) else 'nothing'}"
        )


def row_count(node: exp.Expr | None) -> int | None:
    """The integer of a checked LIMIT / OFFSET node, or None when absent.

    >>> import sqlglot
    >>> row_count(sqlglot.parse_one("SELECT 1 FROM t LIMIT 5", read="duckdb").args["limit"])
    5
    """
    if node is None:
        return None
    value = node.args["expression"]
    assert isinstance(value, exp.Literal)
    return int(value.name)
