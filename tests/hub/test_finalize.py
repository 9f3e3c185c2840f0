"""Finalization: suppression of small noisy cells, finalize SQL over partials, interval widths."""

from __future__ import annotations

import numpy as np
import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.hub.finalize import (
    SUPPRESSED,
    finalize,
    finalize_engine,
    partials_table,
    reference_sigmas,
)
from fedsql.sql import plan_query

VISIBLE = {"patients": ("patient_id", "age", "sex", "bmi", "diabetic")}


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def test_partials_enumerate_every_cell_in_plan_order(contract: Contract) -> None:
    plan = plan_query(
        "SELECT sex, diabetic, COUNT(*) FROM patients GROUP BY sex, diabetic",
        None,
        contract,
        VISIBLE,
    )
    values = np.arange(plan.dimension, dtype=float)
    table = partials_table(plan, values, np.zeros(plan.cells, dtype=bool))
    assert table.num_rows == plan.cells == 4
    keys = list(zip(table.column("k0").to_pylist(), table.column("k1").to_pylist(), strict=True))
    assert keys == [("F", False), ("F", True), ("M", False), ("M", True)]
    assert plan.key_index()[("M", False)] == 2


def test_small_noisy_counts_are_suppressed_and_flagged(contract: Contract) -> None:
    plan = plan_query(
        "SELECT sex, AVG(bmi) AS b FROM patients GROUP BY sex", None, contract, VISIBLE
    )
    names = [m.name for m in plan.measures]
    cells = np.zeros((plan.cells, len(names)))
    count = names.index(plan.count_measure)
    cells[:, count] = [3.0, 500.0]
    cells[:, names.index("m1")] = [90.0, 13000.0]
    cells[:, names.index("m2")] = [3.0, 500.0]
    fin = finalize(finalize_engine(), plan, cells.ravel(), [1.0] * len(names), min_group_size=10)
    rows = fin.result.to_pylist()
    assert rows[0]["b"] is None and rows[1]["b"] == pytest.approx(26.0)
    assert fin.stats.column(SUPPRESSED).to_pylist() == [True, False]
    assert fin.suppressed_cells == 1


def test_interval_of_a_count_is_its_noise(contract: Contract) -> None:
    plan = plan_query("SELECT COUNT(*) AS n FROM patients", None, contract, VISIBLE)
    fin = finalize(finalize_engine(), plan, np.array([1000.0]), [8.0], min_group_size=10)
    st = fin.stats.to_pylist()[0]
    assert st["n__sigma"] == pytest.approx(8.0)
    assert st["n__hi"] - st["n__lo"] == pytest.approx(2 * 1.959964 * 8.0, rel=1e-5)


def test_delta_method_interval_of_an_average(contract: Contract) -> None:
    plan = plan_query("SELECT AVG(age) AS a FROM patients", None, contract, VISIBLE)
    names = [m.name for m in plan.measures]
    values = np.zeros(len(names))
    s, c = names.index("m1"), names.index("m2")
    values[s], values[c] = 40_000.0, 1000.0
    values[names.index(plan.count_measure)] = 1000.0
    sigmas = [0.0] * len(names)
    sigmas[s], sigmas[c] = 100.0, 5.0
    fin = finalize(finalize_engine(), plan, values, sigmas, min_group_size=10)
    expected = np.sqrt((100.0 / 1000) ** 2 + (40.0 * 5.0 / 1000) ** 2)
    assert fin.stats.column("a__sigma")[0].as_py() == pytest.approx(expected, rel=1e-3)


def test_reference_margins_use_a_typical_cell(contract: Contract) -> None:
    plan = plan_query(
        "SELECT sex, COUNT(*) AS n, AVG(age) AS a, STDDEV(age) AS s FROM patients GROUP BY sex",
        None,
        contract,
        VISIBLE,
    )
    sigmas = [10.0] * len(plan.measures)
    margins = reference_sigmas(finalize_engine(), plan, sigmas, rows=1000)
    assert set(margins) == {"n", "a", "s"}
    assert margins["n"] == pytest.approx(10.0)
    # AVG at 1000 rows of typical age 55: sqrt(10^2 + 55^2 * 10^2) / 1000
    assert margins["a"] == pytest.approx(np.hypot(10.0, 55.0 * 10.0) / 1000, rel=1e-3)
    assert 0 < margins["s"] < 10.0


def test_quantile_and_variance_outputs_get_finite_intervals(contract: Contract) -> None:
    plan = plan_query(
        "SELECT MEDIAN(bmi) AS m, VAR_SAMP(bmi) AS v FROM patients", None, contract, VISIBLE
    )
    values = np.array([1000.0 * m.typical for m in plan.measures])
    sigmas = [5.0] * len(plan.measures)
    fin = finalize(finalize_engine(), plan, values, sigmas, min_group_size=10)
    stats = fin.stats.to_pylist()[0]
    assert 0 < stats["m__sigma"] < 5.0 and stats["v__sigma"] > 0
    assert stats["m__lo"] < fin.result.to_pylist()[0]["m"] < stats["m__hi"]
