"""Hub and silos derive a plan's measure specs and encodings with the same functions."""

from __future__ import annotations

import doctest

import pytest

import fedsql.query_terms
from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.errors import QueryRejected
from fedsql.privacy.calibrate import MAX_FRAC_BITS, plan_noise
from fedsql.query_terms import encoding_for, measure_specs
from fedsql.secagg.encoding import HEADROOM, CoordinateSpec, band, check_plan
from fedsql.sql.plan import FederatedPlan
from fedsql.sql.planner import plan_query
from tests.conftest import wide_bounds_files


def _plan(contract: Contract, sql: str) -> FederatedPlan:
    visible = {t.name: t.column_names for t in contract.tables}
    return plan_query(sql, None, contract, visible)


def _encoding(contract: Contract, sql: str, *, noise: bool) -> tuple[CoordinateSpec, ...]:
    plan = _plan(contract, sql)
    n = 4
    nplan = (
        plan_noise(1.0, contract.delta, measure_specs(plan), contract.secagg.m_min(n))
        if noise
        else None
    )
    return encoding_for(contract, plan, nplan, n)


@pytest.fixture(scope="module")
def demo() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Contract:
    return load_contract(wide_bounds_files(tmp_path_factory.mktemp("wide")) / "contract.toml")


def test_specs_and_encodings_follow_the_plan_measure_by_measure(demo: Contract) -> None:
    plan = _plan(demo, "SELECT sex, AVG(bmi) FROM patients GROUP BY sex")
    specs = measure_specs(plan)
    assert [s.name for s in specs] == [m.name for m in plan.measures]
    assert {(s.cells, s.row_cap) for s in specs} == {(plan.cells, plan.row_cap)}
    noise = plan_noise(1.0, demo.delta, specs, demo.secagg.m_min(4))
    noisy = encoding_for(demo, plan, noise, 4)
    quiet = encoding_for(demo, plan, None, 4)
    assert len(noisy) == len(quiet) == len(plan.measures)
    assert all(e.sigma_total > 0 for e in noisy) and all(e.sigma_total == 0 for e in quiet)
    assert {e.limbs for e in noisy + quiet} == {1}


def test_a_sum_of_squares_beyond_one_coordinate_is_sent_in_two_limbs(wide: Contract) -> None:
    plan = _plan(wide, "SELECT VAR_SAMP(cost) FROM visits")
    noise = plan_noise(1.0, wide.delta, measure_specs(plan), wide.secagg.m_min(4))
    encoding = encoding_for(wide, plan, noise, 4)
    by_expression = {m.expression: e for m, e in zip(plan.measures, encoding, strict=True)}
    sumsq = by_expression.pop("SUM(POWER(cost, 2))")
    # 4 silos x 1e8 rows x (1e7)^2 = 2^75.4: one coordinate cannot hold it, two limbs can
    assert sumsq.limbs == 2
    assert band(CoordinateSpec(sumsq.bound, sumsq.frac_bits, sumsq.sigma_total), 4) > HEADROOM
    assert {e.limbs for e in by_expression.values()} == {1}
    check_plan(encoding, 4)
    # the limbs keep the precision noise calibration chose instead of dropping fraction bits
    assert [e.frac_bits for e in encoding] == [mn.frac_bits for mn in noise.measures]


def test_without_noise_a_measure_gets_two_limbs_rather_than_coarse_fractions(
    demo: Contract,
) -> None:
    # One coordinate would leave the sum of squares of cost 7 fraction bits; noise calibration
    # may use up to MAX_FRAC_BITS, so noise-off answers get at least that many, in two limbs.
    quiet = _encoding(demo, "SELECT VAR_SAMP(cost) FROM visits", noise=False)
    assert [(e.limbs, e.frac_bits) for e in quiet] == [(1, 0), (2, 38), (2, 40), (1, 0)]
    assert all(e.frac_bits >= MAX_FRAC_BITS for e in quiet if e.limbs == 2)
    check_plan(quiet, 4)
    # with noise, one coordinate holds it at the precision calibration needs
    assert {e.limbs for e in _encoding(demo, "SELECT VAR_SAMP(cost) FROM visits", noise=True)} == {
        1
    }


@pytest.mark.parametrize("noise", [True, False])
def test_a_measure_beyond_two_limbs_is_rejected_with_a_clear_error(
    wide: Contract, noise: bool
) -> None:
    encoding = _encoding(wide, "SELECT VAR_SAMP(value) FROM labs", noise=noise)
    assert encoding[1].limbs == 2
    with pytest.raises(QueryRejected, match=r"measure 1 \(of 4\).*even split into 2 limbs"):
        check_plan(encoding, 4)


def test_docstring_examples_pass() -> None:
    result = doctest.testmod(fedsql.query_terms)
    assert result.attempted > 0
    assert result.failed == 0
