"""A bounded cache of plans: planning is a pure function of SQL, parameters and contract."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from fedsql.catalog import Contract
from fedsql.errors import QueryRejected
from fedsql.sql.params_codec import decode_params
from fedsql.sql.plan import FederatedPlan
from fedsql.sql.planner import plan_query
from fedsql.sql.regression import unround_sql, with_coefficients

Visible = tuple[tuple[str, tuple[str, ...]], ...]

#: Text that may name a Newton round's coefficients (``at => [...]``).
_ROUND = re.compile(r"\bat\s*=>", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def _plan(sql: str, params_json: str, contract: Contract, visible: Visible) -> FederatedPlan:
    return plan_query(sql, decode_params(params_json), contract, dict(visible))


def plan_cached(
    sql: str, params_json: str, contract: Contract, visible: Mapping[str, Sequence[str]]
) -> FederatedPlan:
    """Plan ``sql`` with JSON-encoded parameters, reusing the plan of an identical request.

    Rejections are not cached: a refused query is planned (and refused) again every time. The
    rounds of one logistic model share the plan of the model query, with each round's
    coefficients put in (:func:`fedsql.sql.regression.with_coefficients`); a round text that
    does not split cleanly is planned in full, so it is refused exactly as before.

    Args:
        sql: The analyst's SQL.
        params_json: Parameters as made by :func:`fedsql.sql.params_codec.encode_params`.
        contract: The federation contract.
        visible: Tables and columns the caller may see.

    Returns:
        The plan, identical to :func:`fedsql.sql.plan_query`'s.
    """
    key = tuple(sorted((t, tuple(cols)) for t, cols in visible.items()))
    if _ROUND.search(sql):
        try:
            model_sql, at = unround_sql(sql)
            return with_coefficients(_plan(model_sql, params_json, contract, key), sql, at)
        except QueryRejected:
            pass
    return _plan(sql, params_json, contract, key)
