"""The local model object: built from a released record, predicts on DataFrames and mappings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fedsql.errors import DataError
from fedsql.train import CellFit, Model, model_table, models_from_table

from .specs import linear_spec, logistic_spec


def test_model_table_round_trips_into_models_that_predict() -> None:
    spec = logistic_spec(2, [0.0, 0.0], [1.0, 1.0])
    spec = type(spec)(**{**spec.__dict__, "output": "risk", "layout": ("k0", "")})
    fit = CellFit(-1.0, (0.5, 2.0), (0.1, 0.01, 0.02), (0.05, 0.0, 0.0), 100, None, 5, True)
    table = model_table(spec, ["sex", "risk"], {"k0": pa.array(["F", "M"])}, [fit, None], 0.9)
    assert table.column_names == ["sex", "risk"]
    record = table.to_pylist()[0]["risk"]
    assert record["coefficients"] == {"x0": 0.5, "x1": 2.0}
    assert record["std_errors"] == {"x0": 0.01, "x1": 0.02}
    assert record["converged"] and record["iterations"] == 5 and record["epsilon"] == 0.9
    assert table.to_pylist()[1]["risk"] is None
    (model,) = models_from_table(table)
    assert model.group == {"sex": "F"} and model.features == ("x0", "x1")
    frame = pd.DataFrame({"x0": [0.0, 2.0], "x1": [0.5, -1.0]})
    expected = 1 / (1 + np.exp(-(-1.0 + 0.5 * frame.x0 + 2.0 * frame.x1)))
    assert np.allclose(model.predict(frame), expected)
    low, high = model.interval("x1")
    assert low < 2.0 < high


def test_a_linear_model_predicts_the_mean_and_needs_its_columns() -> None:
    spec = linear_spec(1, [0.0, 0.0], [1.0, 1.0])
    spec = type(spec)(**{**spec.__dict__, "layout": ("",)})
    fit = CellFit(1.0, (2.0,), (0.1, 0.1), (0.0, 0.0), 10, 0.9, 1, True)
    (model,) = models_from_table(model_table(spec, ["m"], {}, [fit], 1.0))
    assert model.predict({"x0": [1.0, 2.0]}).tolist() == [3.0, 5.0]
    assert model.predict(pa.table({"x0": [0.5]})).tolist() == [2.0]
    with pytest.raises(DataError, match="x0"):
        model.predict({"age": [1.0]})
    with pytest.raises(DataError):
        Model.from_record(None)  # type: ignore[arg-type]
    with pytest.raises(DataError):
        models_from_table(pa.table({"n": [1]}))
