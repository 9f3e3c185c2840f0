"""Noise calibration: rho composes exactly, shares are safe, fixed point is chosen as declared."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fedsql
from fedsql.errors import DataError, QueryRejected
from fedsql.privacy.accounting import rho_for_epsilon
from fedsql.privacy.calibrate import (
    MAX_FRAC_BITS,
    MIN_SIGMA_LOCAL,
    TARGET_SIGMA_FRACTIONAL,
    MeasureSpec,
    NoisePlan,
    plan_noise,
)
from fedsql.privacy.noise import sample_discrete_gaussian

REPO = Path(fedsql.__file__).resolve().parents[1]
DELTA = 1e-6

COUNT = MeasureSpec("n", sensitivity=3.0, clip=1.0, integral=True, cells=12, row_cap=3)
SUM = MeasureSpec("s", sensitivity=3.0 * 250.0, clip=250.0, integral=False, cells=12, row_cap=3)
SUM_INT = MeasureSpec("si", sensitivity=3.0 * 90.0, clip=90.0, integral=True, cells=12, row_cap=3)
DISTINCT = MeasureSpec("u", sensitivity=math.sqrt(3), clip=1.0, integral=True, cells=12, row_cap=3)
TINY_SUM = MeasureSpec("t", sensitivity=1e-6, clip=1e-6, integral=False, cells=1, row_cap=1)


def _composed_rho(plan: NoisePlan, sigma_factor: float = 1.0) -> float:
    """sum_j Delta_j² / (2 sigma_j²) with sigma_j the total noise of m_min shares (encoded)."""
    total = 0.0
    for m in plan.measures:
        sigma_j = sigma_factor * m.sigma_local_encoded * math.sqrt(plan.m_min)
        total += m.sensitivity_encoded**2 / (2 * sigma_j**2)
    return total


CASES = [
    (1.0, [COUNT], 1),
    (1.0, [COUNT, SUM], 3),
    (0.1, [COUNT, SUM, SUM_INT, DISTINCT], 2),
    (5.0, [SUM, COUNT], 7),
    (0.01, [SUM_INT], 50),
    (30.0, [COUNT, DISTINCT], 4),
]


@pytest.mark.parametrize(("eps", "specs", "m_min"), CASES)
def test_rho_of_the_released_noise_composes_to_the_query_rho(
    eps: float, specs: list[MeasureSpec], m_min: int
) -> None:
    plan = plan_noise(eps, DELTA, specs, m_min)
    assert plan.rho == rho_for_epsilon(eps, DELTA)
    assert _composed_rho(plan) == pytest.approx(plan.rho, rel=1e-9)
    # Half the noise would cost four times the rho: the equality above is not vacuous.
    assert _composed_rho(plan, 0.5) == pytest.approx(4 * plan.rho, rel=1e-9)
    assert _composed_rho(plan, 2.0) == pytest.approx(plan.rho / 4, rel=1e-9)


@pytest.mark.parametrize(("eps", "specs", "m_min"), CASES)
def test_rho_is_split_equally_and_every_field_follows_its_formula(
    eps: float, specs: list[MeasureSpec], m_min: int
) -> None:
    plan = plan_noise(eps, DELTA, specs, m_min)
    assert [m.name for m in plan.measures] == [s.name for s in specs]
    assert (plan.epsilon, plan.delta, plan.m_min) == (eps, DELTA, m_min)
    for spec, m in zip(specs, plan.measures, strict=True):
        f = m.frac_bits
        assert m.rho == plan.rho / len(specs)
        rounding = 0.0 if (spec.integral and f == 0) else math.sqrt(min(spec.row_cap, spec.cells))
        assert m.sensitivity_encoded == pytest.approx(spec.sensitivity * 2**f + rounding, rel=1e-15)
        sigma_total_encoded = m.sensitivity_encoded / math.sqrt(2 * m.rho)
        assert m.sigma_local_encoded == pytest.approx(sigma_total_encoded / math.sqrt(m_min))
        assert m.sigma_total == pytest.approx(m.sigma_local_encoded * math.sqrt(m_min) / 2**f)
        assert m.sigma_local_encoded >= MIN_SIGMA_LOCAL


@pytest.mark.parametrize("eps", [0.001, 0.01, 0.1, 1.0, 3.0, 10.0, 50.0, 200.0])
@pytest.mark.parametrize("m_min", [1, 2, 5, 20, 99])
def test_every_noise_share_is_at_least_two_encoded_units(eps: float, m_min: int) -> None:
    plan = plan_noise(eps, DELTA, [COUNT, SUM, SUM_INT, DISTINCT], m_min)
    assert all(m.sigma_local_encoded >= MIN_SIGMA_LOCAL for m in plan.measures)


def test_integral_measure_is_sent_unscaled_when_its_share_is_large_enough() -> None:
    plan = plan_noise(1.0, DELTA, [COUNT], 2)
    m = plan.measures[0]
    assert m.frac_bits == 0
    assert m.sensitivity_encoded == COUNT.sensitivity  # no rounding term for exact integers
    assert m.sigma_local_encoded >= MIN_SIGMA_LOCAL


def test_integral_measure_gets_the_fewest_fraction_bits_for_a_safe_share() -> None:
    spec = MeasureSpec("n", sensitivity=1.0, clip=1.0, integral=True, cells=4, row_cap=1)
    plan = plan_noise(20.0, DELTA, [spec], 10)
    m = plan.measures[0]
    assert m.frac_bits > 0
    assert m.sigma_local_encoded >= MIN_SIGMA_LOCAL
    # One bit fewer would have given a share below the minimum.
    f = m.frac_bits - 1
    sens = spec.sensitivity * 2**f + (0.0 if f == 0 else 1.0)
    below = sens / math.sqrt(2 * m.rho) / math.sqrt(10)
    assert below < MIN_SIGMA_LOCAL


@pytest.mark.parametrize("eps", [0.05, 0.3, 0.8])
def test_fractional_measure_gets_the_fewest_bits_for_a_share_of_64_units(eps: float) -> None:
    plan = plan_noise(eps, DELTA, [SUM, TINY_SUM], 3)
    for spec, m in zip((SUM, TINY_SUM), plan.measures, strict=True):
        assert m.sigma_local_encoded >= TARGET_SIGMA_FRACTIONAL
        if m.frac_bits > 0:
            f = m.frac_bits - 1
            sens = spec.sensitivity * 2**f + math.sqrt(min(spec.row_cap, spec.cells))
            assert sens / math.sqrt(2 * m.rho) / math.sqrt(3) < TARGET_SIGMA_FRACTIONAL
    # A wide sum needs no fraction bits at all; a sum of millionths needs many.
    assert plan.measures[0].frac_bits == 0
    assert plan.measures[1].frac_bits >= 10


def test_fraction_bits_are_capped_while_the_share_stays_safe() -> None:
    plan = plan_noise(5.0, DELTA, [TINY_SUM], 1)
    m = plan.measures[0]
    assert m.frac_bits == MAX_FRAC_BITS
    assert MIN_SIGMA_LOCAL <= m.sigma_local_encoded < TARGET_SIGMA_FRACTIONAL


def test_epsilon_too_large_for_safe_noise_is_rejected() -> None:
    with pytest.raises(QueryRejected, match="lower epsilon"):
        plan_noise(1000.0, DELTA, [TINY_SUM], 1)


def test_sigma_released_scales_with_the_number_of_shares() -> None:
    plan = plan_noise(0.5, DELTA, [COUNT, SUM], 3)
    for m in plan.measures:
        assert plan.sigma_released(m.name, 3) == pytest.approx(m.sigma_total, rel=1e-15)
        assert plan.sigma_released(m.name, 12) == pytest.approx(2 * m.sigma_total, rel=1e-15)
        assert plan.sigma_released(m.name, 1) == pytest.approx(
            m.sigma_local_encoded / 2**m.frac_bits, rel=1e-15
        )
    assert plan.measure("s") is plan.measures[1]
    with pytest.raises(DataError):
        plan.sigma_released("nope", 3)
    with pytest.raises(DataError):
        plan.sigma_released("n", 0)


def test_more_silos_mean_smaller_shares_but_the_same_total_noise() -> None:
    few = plan_noise(1.0, DELTA, [SUM], 2).measures[0]
    many = plan_noise(1.0, DELTA, [SUM], 8).measures[0]
    assert many.frac_bits == few.frac_bits
    assert many.sigma_local_encoded == pytest.approx(few.sigma_local_encoded / 2)
    assert many.sigma_total == pytest.approx(few.sigma_total)


def test_more_epsilon_means_less_noise_and_more_measures_mean_more() -> None:
    sigmas = [plan_noise(e, DELTA, [SUM], 3).measures[0].sigma_total for e in (0.1, 0.5, 2.0)]
    assert sigmas[0] > sigmas[1] > sigmas[2]
    alone = plan_noise(1.0, DELTA, [SUM], 3).measures[0].sigma_total
    shared = plan_noise(1.0, DELTA, [SUM, COUNT], 3).measures[0].sigma_total
    assert shared == pytest.approx(alone * math.sqrt(2))


def test_released_noise_has_the_declared_standard_deviation() -> None:
    plan = plan_noise(1.0, DELTA, [SUM_INT], 3)
    m = plan.measures[0]
    shares = [sample_discrete_gaussian(m.sigma_local_encoded, 30_000) for _ in range(3)]
    released = np.sum(shares, axis=0) / 2**m.frac_bits
    std = float(np.std(released))
    assert abs(std / plan.sigma_released(m.name, 3) - 1.0) < 0.03, std


def test_plans_are_deterministic_within_and_across_processes() -> None:
    specs = [COUNT, SUM, SUM_INT, DISTINCT, TINY_SUM]
    first = plan_noise(0.7, DELTA, specs, 4)
    assert plan_noise(0.7, DELTA, specs, 4) == first
    code = (
        "import dataclasses, json, sys\n"
        "from fedsql.privacy.calibrate import MeasureSpec, plan_noise\n"
        "specs = [MeasureSpec(**s) for s in json.loads(sys.argv[1])]\n"
        "plan = plan_noise(0.7, 1e-6, specs, 4)\n"
        "print(json.dumps([[m.name, m.frac_bits, m.rho.hex(), m.sensitivity_encoded.hex(),\n"
        "                   m.sigma_total.hex(), m.sigma_local_encoded.hex()]\n"
        "                  for m in plan.measures]))\n"
    )
    payload = json.dumps([dataclasses.asdict(s) for s in specs])
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, payload],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    here = [
        [
            m.name,
            m.frac_bits,
            m.rho.hex(),
            m.sensitivity_encoded.hex(),
            m.sigma_total.hex(),
            m.sigma_local_encoded.hex(),
        ]
        for m in first.measures
    ]
    assert json.loads(out.stdout) == here


def test_planning_takes_microseconds_once_rho_is_known() -> None:
    specs = [COUNT, SUM, SUM_INT, DISTINCT]
    plan_noise(0.9, DELTA, specs, 3)
    start = time.perf_counter()
    for _ in range(1000):
        plan_noise(0.9, DELTA, specs, 3)
    assert (time.perf_counter() - start) / 1000 < 1e-3


@pytest.mark.parametrize("eps", [0.0, -1.0, math.nan, math.inf, True])
def test_non_positive_epsilon_is_rejected(eps: float) -> None:
    with pytest.raises(QueryRejected):
        plan_noise(eps, DELTA, [COUNT], 3)


def test_a_query_without_measures_is_rejected() -> None:
    with pytest.raises(QueryRejected):
        plan_noise(1.0, DELTA, [], 3)


def test_duplicate_measure_names_are_rejected() -> None:
    with pytest.raises(QueryRejected):
        plan_noise(1.0, DELTA, [COUNT, dataclasses.replace(SUM, name="n")], 3)


@pytest.mark.parametrize(
    "change",
    [
        {"sensitivity": 0.0},
        {"sensitivity": -1.0},
        {"sensitivity": math.inf},
        {"sensitivity": math.nan},
        {"clip": math.inf},
        {"clip": -1.0},
        {"clip": 1000.0},  # one row could move the vector further than the declared bound
        {"cells": 0},
        {"row_cap": 0},
        {"cells": 2.0},
    ],
)
def test_measures_with_unusable_bounds_are_rejected(change: dict[str, object]) -> None:
    bad = dataclasses.replace(SUM, **change)  # type: ignore[arg-type]
    with pytest.raises(QueryRejected, match="'s'"):
        plan_noise(1.0, DELTA, [COUNT, bad], 3)


@pytest.mark.parametrize("m_min", [0, -1, 1.5, True])
def test_bad_m_min_is_refused(m_min: int) -> None:
    with pytest.raises(DataError):
        plan_noise(1.0, DELTA, [COUNT], m_min)


@pytest.mark.parametrize("delta", [0.0, 1.0, -1.0])
def test_bad_delta_is_refused(delta: float) -> None:
    with pytest.raises(DataError):
        plan_noise(1.0, delta, [COUNT], 3)


def test_rho_is_split_in_proportion_to_the_shares() -> None:
    a = dataclasses.replace(COUNT, name="a", share=1.0)
    b = dataclasses.replace(SUM, name="b", share=3.0)
    plan = plan_noise(1.0, DELTA, [a, b], m_min=2)
    rho = rho_for_epsilon(1.0, DELTA)
    assert plan.measure("a").rho == pytest.approx(rho / 4)
    assert plan.measure("b").rho == pytest.approx(3 * rho / 4)
    assert _composed_rho(plan) == pytest.approx(rho, rel=1e-9)
    # equal shares (the default) give the equal split
    equal = plan_noise(1.0, DELTA, [COUNT, SUM], m_min=2)
    assert [m.rho for m in equal.measures] == pytest.approx([rho / 2, rho / 2])


def test_a_group_is_noised_as_one_vector_at_its_whole_rho() -> None:
    bins = [
        dataclasses.replace(COUNT, name=f"b{j}", share=0.25, group="histogram of x")
        for j in range(8)
    ]
    plan = plan_noise(1.0, DELTA, [COUNT, *bins], m_min=2)
    rho = rho_for_epsilon(1.0, DELTA)
    # the group's shares add to 2 of 3: each bin is calibrated as a count at rho * 2/3
    alone = plan_noise(1.0, DELTA, [COUNT, dataclasses.replace(COUNT, name="g", share=2.0)], 2)
    for j in range(8):
        assert plan.measure(f"b{j}").sigma_local_encoded == pytest.approx(
            alone.measure("g").sigma_local_encoded
        )
    # the reported rho of the members adds up to the group's, so the query's total is rho
    assert sum(m.rho for m in plan.measures) == pytest.approx(rho)
    with pytest.raises(QueryRejected, match="different sensitivities"):
        plan_noise(1.0, DELTA, [bins[0], dataclasses.replace(SUM, group="histogram of x")], 2)


def test_share_must_be_positive() -> None:
    with pytest.raises(QueryRejected, match="share must be a positive number"):
        plan_noise(1.0, DELTA, [dataclasses.replace(COUNT, share=0.0)], m_min=1)


SPLIT_CASES = [
    (1.0, [COUNT, SUM], 2, 3),
    (0.1, [COUNT, SUM, SUM_INT, DISTINCT], 3, 4),
    (0.5, [SUM_INT], 51, 99),
    (2.0, [COUNT, DISTINCT], 1, 2),
]


@pytest.mark.parametrize(("eps", "specs", "m_min", "m_all"), SPLIT_CASES)
def test_each_share_splits_into_a_base_and_an_extra_part(
    eps: float, specs: list[MeasureSpec], m_min: int, m_all: int
) -> None:
    plan = plan_noise(eps, DELTA, specs, m_min, m_all)
    assert (plan.m_min, plan.m_all, plan.has_extra) == (m_min, m_all, True)
    for m in plan.measures:
        sigma_j = m.sensitivity_encoded / math.sqrt(2 * m.rho)
        assert m.sigma_local_encoded == pytest.approx(sigma_j / math.sqrt(m_min))
        assert m.sigma_base_encoded == pytest.approx(sigma_j / math.sqrt(m_all))
        assert m.sigma_extra_encoded**2 == pytest.approx(sigma_j**2 / m_min - sigma_j**2 / m_all)
        assert m.sigma_base_encoded**2 + m.sigma_extra_encoded**2 == pytest.approx(
            m.sigma_local_encoded**2, rel=1e-12
        )
        assert m.sigma_base_encoded >= MIN_SIGMA_LOCAL
        # n shares, each leaving its base part, give at least the query's noise from m_all
        f = m.frac_bits
        assert plan.sigma_released(m.name, m_all, all_answered=True) == pytest.approx(
            sigma_j / 2**f
        )
        assert plan.sigma_released(m.name, m_all + 1, all_answered=True) == pytest.approx(
            math.sqrt(m_all + 1) * m.sigma_base_encoded / 2**f
        )
        assert plan.sigma_released(m.name, m_all + 1) == pytest.approx(
            math.sqrt(m_all + 1) * m.sigma_local_encoded / 2**f
        )
    # m_all honest base shares still pay exactly the query's rho
    base_rho = sum(
        m.sensitivity_encoded**2 / (2 * m.sigma_base_encoded**2 * m_all) for m in plan.measures
    )
    assert base_rho == pytest.approx(plan.rho, rel=1e-9)


def test_without_silos_to_spare_there_is_no_extra_part() -> None:
    plan = plan_noise(1.0, DELTA, [COUNT, SUM], 3, 3)
    assert not plan.has_extra
    for m in plan.measures:
        assert m.sigma_extra_encoded == 0.0
        assert m.sigma_base_encoded == m.sigma_local_encoded
    assert plan_noise(1.0, DELTA, [COUNT, SUM], 3) == plan


def test_fraction_bits_are_chosen_for_the_base_share() -> None:
    # With 1 of 10 shares guaranteed, the whole share would reach 64 units with fewer bits
    # than the base share, which is what remains when everyone answers.
    plan = plan_noise(0.3, DELTA, [SUM, TINY_SUM], 1, 10)
    for spec, m in zip((SUM, TINY_SUM), plan.measures, strict=True):
        assert m.sigma_base_encoded >= TARGET_SIGMA_FRACTIONAL
        if m.frac_bits == 0:
            continue
        f = m.frac_bits - 1
        sens = spec.sensitivity * 2**f + math.sqrt(min(spec.row_cap, spec.cells))
        assert sens / math.sqrt(2 * m.rho) / math.sqrt(10) < TARGET_SIGMA_FRACTIONAL
    tiny = plan.measures[1]
    assert tiny.frac_bits > plan_noise(0.3, DELTA, [SUM, TINY_SUM], 1).measures[1].frac_bits


def test_a_base_share_below_two_units_is_refused_even_if_the_whole_share_is_not() -> None:
    spec = MeasureSpec("n", sensitivity=1.0, clip=1.0, integral=True, cells=1, row_cap=1)
    # at this epsilon the whole share for m_min = 1 is about 3 units; the base for 9 is ~1
    eps = 1.1
    whole = plan_noise(eps, DELTA, [spec], 1).measures[0]
    assert whole.frac_bits == 0 and whole.sigma_local_encoded >= MIN_SIGMA_LOCAL
    split = plan_noise(eps, DELTA, [spec], 1, 9).measures[0]
    assert split.frac_bits > 0 and split.sigma_base_encoded >= MIN_SIGMA_LOCAL
    # at the most fraction bits, the whole share is safe for m_min = 1 but the base for 10 is not
    assert plan_noise(20.0, DELTA, [TINY_SUM], 1).measures[0].sigma_local_encoded >= 2
    with pytest.raises(QueryRejected, match="lower epsilon"):
        plan_noise(20.0, DELTA, [TINY_SUM], 1, 10)


@pytest.mark.parametrize("m_all", [0, 2, True, 2.5])
def test_m_all_must_be_an_integer_of_at_least_m_min(m_all: object) -> None:
    with pytest.raises(DataError, match="m_all"):
        plan_noise(1.0, DELTA, [COUNT], 3, m_all)  # type: ignore[arg-type]
