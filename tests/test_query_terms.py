"""Hub and silos derive a plan's measure specs and encodings with the same functions."""

from __future__ import annotations

from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.privacy.calibrate import plan_noise
from fedsql.query_terms import encoding_for, measure_specs
from fedsql.sql.planner import plan_query


def test_specs_and_encodings_follow_the_plan_measure_by_measure() -> None:
    contract = load_contract(demo_files() / "contract.toml")
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query("SELECT sex, AVG(bmi) FROM patients GROUP BY sex", None, contract, visible)
    specs = measure_specs(plan)
    assert [s.name for s in specs] == [m.name for m in plan.measures]
    assert {(s.cells, s.row_cap) for s in specs} == {(plan.cells, plan.row_cap)}
    noise = plan_noise(1.0, contract.delta, specs, contract.secagg.m_min(4))
    noisy = encoding_for(contract, plan, noise, 4)
    quiet = encoding_for(contract, plan, None, 4)
    assert len(noisy) == len(quiet) == len(plan.measures)
    assert all(e.sigma_total > 0 for e in noisy) and all(e.sigma_total == 0 for e in quiet)
