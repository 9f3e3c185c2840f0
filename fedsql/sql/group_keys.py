"""Group keys: GROUP BY columns become key spaces over public contract domains.

Every column used after aggregation (outside an aggregate in SELECT, HAVING or ORDER BY) must be
one of the keys.

The key space of a column is its contract ``domain``, never the data, so the length and layout
of every silo's partial vector are known before any row is read.
"""

from __future__ import annotations

from fedsql.catalog import Table
from fedsql.errors import QueryRejected
from fedsql.sql.plan import KeySpace
from fedsql.sql.query import Query, outside_aggregates

#: Largest number of cells (product of the key domains' sizes) one query may address.
MAX_CELLS = 1_000_000


def plan_keys(query: Query) -> tuple[KeySpace, ...]:
    """The key spaces of the query's GROUP BY columns, in GROUP BY order.

    Args:
        query: The resolved query.

    Returns:
        One KeySpace per distinct group key: ``k0``, ``k1``, ... with the domain's keys.

    Raises:
        QueryRejected: A key is the unit column, has no domain, or the key space has more
            than ``MAX_CELLS`` cells.
    """
    table = query.table
    keys: list[KeySpace] = []
    cells = 1
    for index, column in enumerate(query.group_by):
        if column.name == table.unit:
            raise QueryRejected(_unit_message(table, "grouped on"))
        if column.domain is None:
            raise QueryRejected(
                f"cannot GROUP BY {table.name}.{column.name}: it has no domain in the contract, "
                f"and group keys must come from a public domain; add `domain` to column "
                f"{column.name} of table {table.name} in the contract"
            )
        cells *= column.domain.size
        keys.append(
            KeySpace(
                name=f"k{index}",
                sql_type=column.type,
                values=column.domain.keys(),
                source=column.name,
            )
        )
    if cells > MAX_CELLS:
        raise QueryRejected(
            f"the key space has {cells} cells (product of the key domains' sizes), more than "
            f"{MAX_CELLS}; group by fewer or coarser keys"
        )
    return tuple(keys)


def check_grouped_references(query: Query) -> None:
    """Every column outside an aggregate in SELECT, HAVING and ORDER BY must be a group key.

    Raises:
        QueryRejected: A column that is neither a group key nor aggregated (the unit column
            gets its own message).
    """
    keys = {column.name for column in query.group_by}
    for clause, expression in query.post_aggregation():
        for reference in outside_aggregates(expression):
            name = str(reference.name)
            if name in keys:
                continue
            if name == query.table.unit:
                raise QueryRejected(_unit_message(query.table, f"used in {clause}"))
            raise QueryRejected(
                f"column {name} in {clause} is neither a group key nor inside an aggregate; "
                f"add it to GROUP BY (it needs a domain) or aggregate it, e.g. COUNT({name})"
            )


def _unit_message(table: Table, how: str) -> str:
    return (
        f"{table.unit} is the privacy unit column of {table.name} and cannot be {how}: results "
        "would describe single patients. Group by an attribute with a domain instead"
    )
