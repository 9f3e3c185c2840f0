"""``fedsql query`` prints a model query's result as coefficient tables (and JSON in CSV)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from fedsql.cli import exits
from fedsql.cli.models import has_models, print_models
from fedsql.demo.federation import DemoFederation
from fedsql.sql.plan import ModelSpec
from fedsql.train import CellFit, model_table

from .test_query import run

SQL = (
    "SELECT sex, LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 4) AS risk "
    "FROM patients GROUP BY sex"
)


def test_a_model_query_prints_one_coefficient_table_per_group(
    noisy_federation: DemoFederation, tmp_path: Path
) -> None:
    proc = run("query", "--hub", noisy_federation.target, "--format", "table", SQL, home=tmp_path)
    assert proc.returncode == exits.OK, proc.stderr
    out = proc.stdout
    assert out.count("logistic regression: logit P(diabetic)") == 2
    assert "for sex = F" in out and "for sex = M" in out
    for word in ("term", "estimate", "std error", "95% interval", "noise std error"):
        assert word in out
    assert out.count("intercept") == 2 and out.count("bmi") == 2
    assert "4 Newton rounds" in out
    assert "epsilon spent: 1 at each answering clinic" in proc.stderr


def test_a_model_query_in_csv_carries_the_model_as_json(
    noisy_federation: DemoFederation, tmp_path: Path
) -> None:
    proc = run(
        "query", "--hub", noisy_federation.target, "-q",
        "SELECT LINEAR_REGRESSION(bmi, age) AS fit FROM patients", home=tmp_path,
    )  # fmt: skip
    assert proc.returncode == exits.OK, proc.stderr
    (row,) = list(csv.DictReader(io.StringIO(proc.stdout)))
    fit = json.loads(row["fit"])
    assert fit["kind"] == "linear" and set(fit["coefficients"]) == {"age"}
    assert 0.0 < fit["r2"] < 1.0 and fit["n"] > 200_000


def test_suppressed_models_are_said_to_be_missing() -> None:
    spec = ModelSpec("linear", "m", "y", ("x",), (0.0, 0.0), (1.0, 1.0), (), layout=("",))
    table = model_table(spec, ["m"], {}, [None], 1.0)
    assert has_models(table) and not has_models(pa.table({"m": [1]}))
    console = Console(record=True, width=100)
    print_models(console, table)
    assert "no model" in console.export_text()
    fit = CellFit(1.0, (2.0,), (0.5, 0.25), (0.1, 0.05), 42, 0.5, 1, True)
    console = Console(record=True, width=100)
    print_models(console, model_table(spec, ["m"], {}, [fit], 1.0))
    text = console.export_text()
    assert "[1.51, 2.49]" in text and "n = 42, R² = 0.5" in text
