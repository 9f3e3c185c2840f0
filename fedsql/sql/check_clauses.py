"""Clause check: SELECT, WITH, FROM <tables joined on the unit>, WHERE, GROUP BY, ... LIMIT.

The outer query may use WITH, FROM (a table, a CTE or a subquery), INNER / LEFT joins with ON,
WHERE, GROUP BY, HAVING, ORDER BY, LIMIT and OFFSET. A subquery or CTE body may use WITH, FROM,
joins, WHERE and DISTINCT only: it must stay row-level (see ``row_source``). Every other clause
(DISTINCT in the outer query, QUALIFY, SAMPLE, WINDOW, INTO, ...), every other join (CROSS,
comma, NATURAL, RIGHT, FULL, SEMI, ANTI, ASOF, POSITIONAL, LATERAL) and every other FROM
form (VALUES, table functions, table modifiers) is refused by name. Whether a join is on the
privacy unit is decided when names are resolved (``row_source``). USING joins arrive here
already rewritten to ON (``join_using``).
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.errors import QueryRejected
from fedsql.sql.allowlist import function_name

#: Select clauses a federated query may use (sqlglot arg names).
ALLOWED_CLAUSES: frozenset[str] = frozenset(
    {
        "expressions",
        "from_",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "offset",
        "with_",
        "joins",
    }
)

#: Clauses a subquery or CTE body may use (sqlglot arg names): row-level SQL only.
SUBQUERY_CLAUSES: frozenset[str] = frozenset(
    {"expressions", "from_", "joins", "where", "distinct", "with_"}
)

#: What to tell the analyst about a clause refused inside a subquery, by sqlglot arg name.
_SUBQUERY_ADVICE: dict[str, str] = {
    "group": "aggregation (GROUP BY) inside {where} is not supported: subqueries must stay "
    "row-level, so that each row belongs to one patient and the row cap bounds it; aggregate "
    "in the outer query",
    "having": "HAVING inside {where} is not supported: subqueries must stay row-level; "
    "aggregate and filter in the outer query",
    "limit": "LIMIT inside {where} is not supported: which rows it keeps would depend on other "
    "patients' rows; filter with WHERE",
    "offset": "OFFSET inside {where} is not supported: which rows it skips would depend on "
    "other patients' rows; filter with WHERE",
    "order": "ORDER BY inside {where} is not supported (row order has no effect on an "
    "aggregate); remove it",
    "qualify": "QUALIFY inside {where} is not supported: window functions mix patients' rows",
    "windows": "named windows inside {where} are not supported: window functions mix "
    "patients' rows",
}

#: What to tell the analyst about each refused clause, by sqlglot arg name.
_CLAUSE_ADVICE: dict[str, str] = {
    "with_": "common table expressions (WITH ...) are not supported; write one SELECT over "
    "one federated table",
    "distinct": "SELECT DISTINCT is not supported; GROUP BY the columns and aggregate instead",
    "laterals": "LATERAL is not supported; join tables on the privacy unit with JOIN ... ON",
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


def check_subquery_clauses(select: exp.Select, where: str) -> None:
    """Refuse every clause that would make a subquery or CTE body more than row-level SQL.

    Args:
        select: The subquery's SELECT.
        where: How to name it in messages (``subquery s``, ``CTE cohort``, ...).

    Raises:
        QueryRejected: GROUP BY, HAVING, an aggregate, a window function, ORDER BY, LIMIT,
            OFFSET, QUALIFY, DISTINCT ON, ... inside it, or a FROM form or join the outer query
            may not use either.

    >>> import sqlglot
    >>> check_subquery_clauses(sqlglot.parse_one("SELECT DISTINCT a FROM t", read="duckdb"), "x")
    >>> check_subquery_clauses(sqlglot.parse_one("SELECT a FROM t LIMIT 3", read="duckdb"), "x")
    Traceback (most recent call last):
    fedsql.errors.QueryRejected: LIMIT inside x is not supported: which rows it keeps would \
depend on other patients' rows; filter with WHERE
    """
    for key, value in select.args.items():
        if key in SUBQUERY_CLAUSES or value is None or value is False or value == []:
            continue
        if key in _SUBQUERY_ADVICE:
            raise QueryRejected(_SUBQUERY_ADVICE[key].format(where=where))
        advice = _CLAUSE_ADVICE.get(key, f"the {key.rstrip('_').upper()} clause is not supported")
        raise QueryRejected(f"{advice} (in {where})")
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on") is not None:
        raise QueryRejected(
            f"DISTINCT ON inside {where} is not supported: which row it keeps depends on the "
            "order of other rows; use SELECT DISTINCT with the unit column"
        )
    for item in select.expressions:
        for node in item.walk():
            if isinstance(node, exp.AggFunc):
                raise QueryRejected(_SUBQUERY_ADVICE["group"].format(where=where))
            if isinstance(node, exp.Window):
                raise QueryRejected(
                    f"window functions (OVER ...) inside {where} are not supported: they mix "
                    "patients' rows; aggregate in the outer query"
                )
    _check_from(select)


def _check_from(select: exp.Select) -> None:
    """FROM must name a table, a CTE or a subquery, joined only by INNER / LEFT JOIN ... ON."""
    source = select.args.get("from_")
    if source is None:
        raise QueryRejected(
            "the query has no FROM clause; aggregate over a federated table, "
            "e.g. SELECT COUNT(*) FROM patients"
        )
    _check_item(source.this)
    for join in select.args.get("joins") or []:
        _check_join(join)


def _check_join(join: exp.Join) -> None:
    """A join must be [INNER] JOIN or LEFT [OUTER] JOIN with an ON condition."""
    method = str(join.args.get("method") or "").upper()
    kind = str(join.args.get("kind") or "").upper()
    side = str(join.args.get("side") or "").upper()
    if isinstance(join.this, exp.Lateral | exp.Unnest):
        raise QueryRejected(_CLAUSE_ADVICE["laterals"])
    if method:
        raise QueryRejected(
            f"{method} JOIN is not supported; write [LEFT] JOIN <table> ON a.unit = b.unit"
        )
    if kind == "CROSS":
        raise QueryRejected(
            "CROSS JOIN is not supported: it pairs every patient's rows with every other "
            "patient's, so no bound on one patient's contribution holds; join on the privacy "
            "unit (JOIN <table> ON a.unit = b.unit)"
        )
    if kind in ("SEMI", "ANTI"):
        raise QueryRejected(
            f"{kind} JOIN is not supported; write WHERE [NOT] EXISTS (SELECT 1 FROM <table> t "
            "WHERE t.unit = outer.unit ...) or unit [NOT] IN (SELECT unit FROM ...)"
        )
    if side in ("RIGHT", "FULL"):
        raise QueryRejected(
            f"{side} JOIN is not supported; write LEFT JOIN with the tables swapped, or JOIN"
        )
    if kind not in ("", "INNER", "OUTER"):
        raise QueryRejected(f"{kind} JOIN is not supported; write [LEFT] JOIN ... ON")
    if join.args.get("on") is None:
        raise QueryRejected(
            "a join without ON (FROM a, b) pairs every patient's rows with every other "
            "patient's, so no bound on one patient's contribution holds; join on the privacy "
            "unit: JOIN b ON a.unit = b.unit"
        )
    _check_item(join.this)


def _check_item(item: exp.Expr) -> None:
    """One FROM item: a table or CTE name with at most a plain alias, or a subquery."""
    if isinstance(item, exp.Subquery):
        alias = item.args.get("alias")
        if alias is not None and alias.args.get("columns"):
            raise QueryRejected(
                "column aliases on a subquery ((...) AS s(x, y)) are not supported; alias "
                "the columns in its SELECT list instead"
            )
        return
    if isinstance(item, exp.Query):
        raise QueryRejected("set operations in FROM are not supported; query a table by name")
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
        if key in ("laterals", "pivots"):
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
