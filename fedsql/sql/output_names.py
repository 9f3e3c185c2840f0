"""Default names of result columns the analyst did not alias.

An alias is always used as written. Without one:

* a column is named by its contract name (``sex``), as DuckDB names it;
* a bare aggregate is named as DuckDB names it: ``count_star()``, ``count(bmi)``,
  ``sum(cost)``, ``avg(bmi)`` (DuckDB quotes some keywords, e.g. ``sum("cost")``; fedsql does not);
* any other expression is named by its SQL text with lower-case function names, e.g.
  ``sum(cost) / count(*)`` (DuckDB would write ``(sum("cost") / count_star())``).

Result names are then made unique the way DuckDB names a table's columns (``n``, ``n_1``, ...),
so every output can be addressed by name.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.sql.statement import DIALECT


def default_name(expression: exp.Expr) -> str:
    """The result column name of an unaliased, resolved SELECT item.

    Args:
        expression: The item with its column references resolved to contract names.

    Returns:
        The name DuckDB would give a column or bare aggregate, else the SQL text.

    >>> import sqlglot
    >>> default_name(sqlglot.parse_one("COUNT(*)", read="duckdb"))
    'count_star()'
    >>> default_name(sqlglot.parse_one("AVG(bmi)", read="duckdb"))
    'avg(bmi)'
    >>> default_name(sqlglot.parse_one("SUM(cost) / COUNT(*)", read="duckdb"))
    'sum(cost) / count(*)'
    """
    if isinstance(expression, exp.Column):
        return str(expression.name)
    if isinstance(expression, exp.Count) and isinstance(expression.this, exp.Star):
        return "count_star()"
    if isinstance(expression, exp.Count | exp.Sum | exp.Avg) and expression.this is not None:
        argument = expression.this.unnest()
        if isinstance(argument, exp.Column):
            return f"{expression.key}({argument.name})"
    return expression.sql(DIALECT, normalize_functions="lower", comments=False)


def unique_names(names: list[str]) -> list[str]:
    """Make result column names unique as DuckDB does for a table: repeats get ``_1``, ``_2``.

    Names compare case-insensitively, like SQL identifiers; the first occurrence is kept.

    >>> unique_names(["a", "a", "A", "b"])
    ['a', 'a_1', 'A_2', 'b']
    >>> unique_names(["x", "x_1", "x"])
    ['x', 'x_1', 'x_2']
    """
    taken = {name.lower() for name in names}
    seen: set[str] = set()
    result: list[str] = []
    for name in names:
        low = name.lower()
        if low in seen:
            suffix = 1
            while f"{low}_{suffix}" in taken:
                suffix += 1
            name = f"{name}_{suffix}"
            low = name.lower()
            taken.add(low)
        seen.add(low)
        result.append(name)
    return result
