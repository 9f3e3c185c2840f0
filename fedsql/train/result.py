"""The analyst's result of a model query: key columns and one struct column of fitted models.

The struct (a dict in the driver) holds ``kind``, ``target``, ``coefficients`` and
``std_errors`` / ``noise_std_errors`` by feature name, ``intercept`` with its
``intercept_std_error`` / ``intercept_noise_std_error``, ``n``, ``r2`` (linear models),
``iterations`` and ``converged`` (logistic models) and the ``epsilon`` the model cost. A
suppressed or singular group's model is NULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pyarrow as pa

from fedsql.sql.plan import ModelSpec
from fedsql.train.fit import CellFit


def model_type(spec: ModelSpec) -> pa.DataType:
    """The Arrow struct type of one fitted model of ``spec``.

    >>> spec = ModelSpec("linear", "m", "y", ("x",), (0.0, 0.0), (1.0, 1.0), ())
    >>> model_type(spec).field("coefficients").type
    StructType(struct<x: double>)
    """
    by_feature = pa.struct([pa.field(f, pa.float64()) for f in spec.features])
    return pa.struct(
        [
            pa.field("kind", pa.string()),
            pa.field("target", pa.string()),
            pa.field("coefficients", by_feature),
            pa.field("intercept", pa.float64()),
            pa.field("std_errors", by_feature),
            pa.field("intercept_std_error", pa.float64()),
            pa.field("noise_std_errors", by_feature),
            pa.field("intercept_noise_std_error", pa.float64()),
            pa.field("n", pa.int64()),
            pa.field("r2", pa.float64()),
            pa.field("iterations", pa.int64()),
            pa.field("converged", pa.bool_()),
            pa.field("epsilon", pa.float64()),
        ]
    )


def model_record(spec: ModelSpec, fit: CellFit, epsilon: float) -> dict[str, object]:
    """One fitted model as the dict the struct column holds."""
    return {
        "kind": spec.kind,
        "target": spec.target,
        "coefficients": dict(zip(spec.features, fit.coefficients, strict=True)),
        "intercept": fit.intercept,
        "std_errors": dict(zip(spec.features, fit.std_errors[1:], strict=True)),
        "intercept_std_error": fit.std_errors[0],
        "noise_std_errors": dict(zip(spec.features, fit.noise_std_errors[1:], strict=True)),
        "intercept_noise_std_error": fit.noise_std_errors[0],
        "n": fit.n,
        "r2": fit.r2,
        "iterations": fit.iterations,
        "converged": fit.converged,
        "epsilon": epsilon,
    }


def model_table(
    spec: ModelSpec,
    output_names: Sequence[str],
    key_columns: Mapping[str, pa.Array],
    fits: Sequence[CellFit | None],
    epsilon: float,
) -> pa.Table:
    """The result table: one row per cell, outputs in the order of the SELECT list.

    Args:
        spec: The model (its ``layout`` says which output shows which key).
        output_names: The output column names, in order.
        key_columns: Key name (``k0``, ...) -> the key's value in every cell.
        fits: One fit per cell, or None.
        epsilon: The epsilon the model cost.

    Returns:
        The Arrow table.
    """
    columns: dict[str, pa.Array] = {}
    for name, key in zip(output_names, spec.layout, strict=True):
        if key:
            columns[name] = key_columns[key]
        else:
            records = [None if f is None else model_record(spec, f, epsilon) for f in fits]
            columns[name] = pa.array(records, type=model_type(spec))
    return pa.table(columns)
