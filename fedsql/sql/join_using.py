"""Rewrite ``JOIN t USING (c)`` into ``JOIN t ON first.c = t.c``, qualifying ``c`` where it is used.

Researchers write ``FROM person JOIN condition_occurrence USING (person_id)``. The planner's join
rules are stated for ``ON a.unit = b.unit`` (``fedsql.sql.row_source``), so this rewrite runs
before any check and turns every USING join into that form; the checks, the contribution
bounding and the partial SQL then see only ON joins, and a USING join on anything but the unit
is refused by the same rule as its ON form.

Semantics kept: in ``a JOIN b USING (c)`` an unqualified ``c`` is the merged column. For the
joins the planner accepts (inner and LEFT), that is ``a.c``: equal to ``b.c`` in an inner join,
and the preserved side's value in a LEFT join. So the join becomes ``ON a.c = b.c``, where ``a``
is the first relation of the FROM clause, and each unqualified ``c`` in the same SELECT (not in
nested subqueries, which have their own FROM) is qualified with ``a``. When ``a`` has no column
``c`` (the column came from a later join), name resolution refuses the query and names ``a``.
"""

from __future__ import annotations

from sqlglot import exp

from fedsql.errors import QueryRejected

__all__ = ["expand_join_using"]


def expand_join_using(select: exp.Select) -> None:
    """Rewrite every ``JOIN ... USING`` in ``select`` and its subqueries, in place.

    Raises:
        QueryRejected: A USING join whose left side has no name to qualify the column with.
    """
    for node in list(select.find_all(exp.Select)):
        _expand(node)


def _expand(select: exp.Select) -> None:
    joins = [j for j in select.args.get("joins") or [] if j.args.get("using")]
    source = select.args.get("from_")
    if not joins or source is None:
        return
    first = source.this.alias_or_name
    if not first:
        raise QueryRejected(
            "JOIN ... USING needs a name for the first table of FROM; give it an alias, "
            "or write JOIN <table> ON a.unit = b.unit"
        )
    merged: set[str] = set()
    for join in joins:
        right = join.this.alias_or_name
        if not right:
            raise QueryRejected(
                "JOIN ... USING needs a name for the joined subquery; give it an alias, "
                "or write JOIN (...) AS t ON a.unit = t.unit"
            )
        condition: exp.Expr | None = None
        for identifier in join.args["using"]:
            name, quoted = identifier.name, bool(identifier.args.get("quoted"))
            merged.add(name.lower())
            equal = exp.EQ(
                this=exp.column(name, table=first, quoted=quoted),
                expression=exp.column(name, table=right, quoted=quoted),
            )
            condition = equal if condition is None else exp.and_(condition, equal)
        join.set("using", None)
        join.set("on", condition)
    for column in _own_columns(select):
        if not column.table and column.name.lower() in merged:
            column.set("table", exp.to_identifier(first))


def _own_columns(select: exp.Select) -> list[exp.Column]:
    """Column references of ``select`` itself, not of the subqueries nested in it."""
    found: list[exp.Column] = []
    stack: list[exp.Expr] = [v for k, v in select.args.items() if k != "joins" and v is not None]
    stack += [j.args["on"] for j in select.args.get("joins") or [] if j.args.get("on")]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, exp.Expr) or isinstance(node, exp.Select | exp.Subquery):
            continue
        if isinstance(node, exp.Column):
            found.append(node)
            continue
        stack.extend(v for v in node.args.values() if v is not None)
    return found
