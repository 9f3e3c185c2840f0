"""Parse, validate and plan analyst SQL into a FederatedPlan (the only home of sqlglot).

The one entry point is :func:`plan_query`; it takes and returns plain values (strings, numbers,
tuples, catalog and plan dataclasses). sqlglot objects never leave this package.
"""

from __future__ import annotations

from fedsql.sql.plan import (
    CELL_COLUMN,
    PARTIALS_TABLE,
    SALT_PARAM,
    FederatedPlan,
    KeySpace,
    Measure,
    OutputColumn,
)
from fedsql.sql.planner import plan_query

__all__ = [
    "CELL_COLUMN",
    "PARTIALS_TABLE",
    "SALT_PARAM",
    "FederatedPlan",
    "KeySpace",
    "Measure",
    "OutputColumn",
    "plan_query",
]
