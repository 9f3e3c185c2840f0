"""A bounded cache of plans: planning is a pure function of SQL, parameters and contract."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from fedsql.catalog import Contract
from fedsql.sql.params_codec import decode_params
from fedsql.sql.plan import FederatedPlan
from fedsql.sql.planner import plan_query

Visible = tuple[tuple[str, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=512)
def _plan(sql: str, params_json: str, contract: Contract, visible: Visible) -> FederatedPlan:
    return plan_query(sql, decode_params(params_json), contract, dict(visible))


def plan_cached(
    sql: str, params_json: str, contract: Contract, visible: Mapping[str, Sequence[str]]
) -> FederatedPlan:
    """Plan ``sql`` with JSON-encoded parameters, reusing the plan of an identical request.

    Rejections are not cached: a refused query is planned (and refused) again every time.

    Args:
        sql: The analyst's SQL.
        params_json: Parameters as made by :func:`fedsql.sql.params_codec.encode_params`.
        contract: The federation contract.
        visible: Tables and columns the caller may see.

    Returns:
        The plan, identical to :func:`fedsql.sql.plan_query`'s.
    """
    key = tuple(sorted((t, tuple(cols)) for t, cols in visible.items()))
    return _plan(sql, params_json, contract, key)
