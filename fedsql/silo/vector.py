"""Scatter a partial query's grouped rows into the dense vector over the plan's public key space."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from fedsql.catalog import KeyValue
from fedsql.errors import InternalError
from fedsql.sql.plan import FederatedPlan


def _normalise_key(value: Any, sql_type: str) -> Any:
    """A DATE key read back as a datetime (some sources do) compares as the date it is."""
    if sql_type == "DATE" and isinstance(value, _dt.datetime):
        return value.date()
    return value


def dense_vector(
    plan: FederatedPlan, names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> np.ndarray:
    """Lay the partial result out as a cell-major float vector of length ``plan.dimension``.

    Every cell of the key space has its slot whether or not the clinic has rows in it, so neither
    the length nor the layout depends on data. Groups whose key is outside the public domain
    (including NULL keys) are dropped; NULL aggregates (SUM over no rows) count as 0.

    Args:
        plan: The plan this silo compiled.
        names: Column names of the partial result.
        rows: Its rows.

    Returns:
        float64 array of ``cells * len(measures)`` values.

    Raises:
        InternalError: The result's columns are not the ones the plan declares.
    """
    key_names = [k.name for k in plan.keys]
    measure_names = [m.name for m in plan.measures]
    if list(names) != key_names + measure_names:
        raise InternalError("the partial result's columns differ from the plan's layout")
    n_keys, n_measures = len(key_names), len(measure_names)
    out = np.zeros(plan.cells * n_measures, dtype=np.float64)
    index: dict[tuple[KeyValue, ...], int] = plan.key_index()
    for row in rows:
        key = tuple(
            _normalise_key(v, k.sql_type) for v, k in zip(row[:n_keys], plan.keys, strict=True)
        )
        cell = index.get(key)
        if cell is None:
            continue
        base = cell * n_measures
        for j, value in enumerate(row[n_keys:]):
            if value is not None:
                out[base + j] = float(value)
    return out
