"""A fitted model the analyst can keep and use locally: predict on a DataFrame or a mapping.

Prediction runs on the analyst's machine over the analyst's own data; nothing is sent anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from fedsql.errors import DataError


@dataclass(frozen=True)
class Model:
    """A linear or logistic model as released (coefficients on the columns as stored).

    Attributes:
        kind: ``"linear"`` or ``"logistic"``.
        target: The modelled column.
        intercept: The intercept.
        coefficients: Feature name -> coefficient, in the order of the call.
        std_errors: Feature name -> standard error (sampling and noise).
        intercept_std_error: The intercept's standard error.
        n: Rows the model was fitted on (noisy).
        group: The group's key values (empty without GROUP BY).
    """

    kind: str
    target: str
    intercept: float
    coefficients: Mapping[str, float]
    std_errors: Mapping[str, float]
    intercept_std_error: float
    n: int
    group: Mapping[str, Any]

    @classmethod
    def from_record(
        cls, record: Mapping[str, Any], group: Mapping[str, Any] | None = None
    ) -> Model:
        """A model from the dict a model query returns.

        Args:
            record: The struct value (``cursor.fetchone()[i]``).
            group: The group's key values, if any.

        Returns:
            The model.

        Raises:
            DataError: ``record`` is not a fitted model (for example NULL for a suppressed group).
        """
        if not isinstance(record, Mapping) or "coefficients" not in record:
            raise DataError("not a fitted model (a suppressed group's model is NULL)")
        return cls(
            kind=str(record["kind"]),
            target=str(record["target"]),
            intercept=float(record["intercept"]),
            coefficients=dict(record["coefficients"]),
            std_errors=dict(record["std_errors"]),
            intercept_std_error=float(record["intercept_std_error"]),
            n=int(record["n"]),
            group=dict(group or {}),
        )

    @property
    def features(self) -> tuple[str, ...]:
        """Feature names, in the order of the call."""
        return tuple(self.coefficients)

    def linear_predictor(self, data: Any) -> NDArray[np.float64]:
        """``intercept + Σ coefficient * column`` for every row of ``data``.

        Args:
            data: A pandas or polars DataFrame, a pyarrow Table, or a mapping of column name
                to a sequence of values; it must have every feature.

        Returns:
            One value per row.

        Raises:
            DataError: A feature column is missing.
        """
        eta = np.full(_rows(data, self.features), self.intercept, dtype=np.float64)
        for name, coefficient in self.coefficients.items():
            eta = eta + coefficient * _column(data, name)
        return eta

    def predict(self, data: Any) -> NDArray[np.float64]:
        """Predictions for every row: the mean for linear models, P(target) for logistic ones.

        >>> m = Model("logistic", "y", 0.0, {"x": 1.0}, {"x": 0.1}, 0.1, 10, {})
        >>> [round(float(v), 4) for v in m.predict({"x": [0.0, 2.0]})]
        [0.5, 0.8808]
        """
        eta = self.linear_predictor(data)
        if self.kind == "logistic":
            out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-eta))
            return out
        return eta

    def interval(self, feature: str) -> tuple[float, float]:
        """The 95% interval of one coefficient (sampling and noise)."""
        z = 1.959963984540054
        value, se = self.coefficients[feature], self.std_errors[feature]
        return (value - z * se, value + z * se) if math.isfinite(se) else (value, value)


def _column(data: Any, name: str) -> NDArray[np.float64]:
    try:
        values = data[name]
    except (KeyError, TypeError, IndexError, ValueError):
        raise DataError(f"the data has no column {name!r}, which the model needs") from None
    if isinstance(values, pa.ChunkedArray | pa.Array):
        values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)


def _rows(data: Any, features: Sequence[str]) -> int:
    return int(_column(data, features[0]).shape[0]) if features else len(data)


def models_from_table(table: pa.Table, column: str | None = None) -> list[Model]:
    """The models of a model query's result table, one per non-NULL group.

    Args:
        table: The result (``cursor.fetch_arrow_table()``).
        column: The model column; by default the one struct column with coefficients.

    Returns:
        The models, each with its group's key values.

    Raises:
        DataError: The table holds no model column.
    """
    names = [
        f.name
        for f in table.schema
        if pa.types.is_struct(f.type) and f.type.get_field_index("coefficients") >= 0
    ]
    if column is None:
        if not names:
            raise DataError("the result holds no model column")
        column = names[0]
    elif column not in names:
        raise DataError(f"{column!r} is not a model column of the result")
    keys = [n for n in table.column_names if n not in names]
    models = []
    for row in table.to_pylist():
        if row[column] is not None:
            models.append(Model.from_record(row[column], {k: row[k] for k in keys}))
    return models
