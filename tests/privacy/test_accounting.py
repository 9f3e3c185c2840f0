"""Exact micro-epsilon amounts and the tight, deterministic zCDP <-> (epsilon, delta) conversion."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import opendp.prelude as dp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fedsql
from fedsql.errors import DataError
from fedsql.privacy.accounting import (
    MAX_MICRO,
    epsilon_for_rho,
    epsilon_to_micro,
    micro_to_epsilon,
    rho_for_epsilon,
    rho_for_epsilon_closed_form,
)

REPO = Path(fedsql.__file__).resolve().parents[1]
EPSILONS = (1e-4, 0.01, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 8.0, 30.0, 100.0)
DELTAS = (1e-12, 1e-9, 1e-6, 1e-3, 0.1)


# --- micro-epsilon -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_eps", "micro"),
    [
        ("0.1", 100_000),
        (0.1, 100_000),
        (1, 1_000_000),
        ("1", 1_000_000),
        (" 0.5 ", 500_000),
        ("1e-6", 1),
        ("0.000001", 1),
        ("2.500000", 2_500_000),
        (1e-3, 1000),
        ("1E3", 1_000_000_000),
        ("1000000000", MAX_MICRO),
    ],
)
def test_epsilon_to_micro_is_exact(given_eps: float | str, micro: int) -> None:
    assert epsilon_to_micro(given_eps) == micro


def test_tenths_add_up_exactly_in_micro_epsilon() -> None:
    # As floats 0.1 + 0.2 != 0.3; as micro-epsilon they are equal, and ten tenths make one.
    assert 0.1 + 0.2 != 0.3
    assert epsilon_to_micro(0.1) + epsilon_to_micro(0.2) == epsilon_to_micro(0.3)
    assert sum(epsilon_to_micro("0.1") for _ in range(10)) == epsilon_to_micro(1.0)


@pytest.mark.parametrize(
    "bad",
    [
        0,
        0.0,
        -0.0,
        "0",
        -0.5,
        "-1",
        math.nan,
        math.inf,
        -math.inf,
        "nan",
        "Infinity",
        "",
        "abc",
        "0x10",
        "1/2",
        True,
        None,
        [1],
        0.1 + 0.2,  # 0.30000000000000004: not a multiple of 1e-6
        "0.0000001",
        "1.0000005",
        "1e-999999999",
        "1e999999999",
        "1000000000.000001",
    ],
)
def test_epsilon_to_micro_refuses_bad_values(bad: object) -> None:
    with pytest.raises(DataError):
        epsilon_to_micro(bad)  # type: ignore[arg-type]


def test_absurd_exponents_are_refused_quickly() -> None:
    start = time.perf_counter()
    for text in ("1e-999999999", "1e999999999", "9" * 20 + "e-999999990"):
        with pytest.raises(DataError):
            epsilon_to_micro(text)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        (0, "0"),
        (1, "0.000001"),
        (10, "0.00001"),
        (250_000, "0.25"),
        (1_000_000, "1"),
        (1_500_000, "1.5"),
        (12_000_000, "12"),
        (123_456_789, "123.456789"),
    ],
)
def test_micro_to_epsilon_is_canonical(micro: int, text: str) -> None:
    assert micro_to_epsilon(micro) == text


@pytest.mark.parametrize("bad", [-1, 1.0, True, "5"])
def test_micro_to_epsilon_refuses_non_amounts(bad: object) -> None:
    with pytest.raises(DataError):
        micro_to_epsilon(bad)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_MICRO))
def test_micro_round_trips_through_its_string_and_float(micro: int) -> None:
    text = micro_to_epsilon(micro)
    assert epsilon_to_micro(text) == micro
    assert epsilon_to_micro(float(text)) == micro


# --- zCDP <-> (epsilon, delta) -------------------------------------------------------------


def test_epsilon_for_rho_matches_opendp_gaussian_conversion() -> None:
    # A discrete Gaussian of scale 2 on sensitivity 1 costs rho = 1/8; its (eps, 1e-6) must be
    # exactly what opendp reports for that measurement.
    gauss = dp.m.make_gaussian(
        dp.vector_domain(dp.atom_domain(T="i64")), dp.l2_distance(T="i64"), scale=2.0
    )
    assert gauss.map(1) == 0.125  # type: ignore[no-untyped-call]
    expected = dp.c.make_zCDP_to_approxDP(gauss).map(1).epsilon(1e-6)  # type: ignore[no-untyped-call]
    assert epsilon_for_rho(0.125, 1e-6) == expected
    assert epsilon_for_rho(0.0, 1e-6) == 0.0


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("eps", EPSILONS)
def test_rho_for_epsilon_round_trips_within_the_target(eps: float, delta: float) -> None:
    rho = rho_for_epsilon(eps, delta)
    assert epsilon_for_rho(rho, delta) <= eps + 1e-12


@pytest.mark.parametrize("delta", (1e-9, 1e-6, 1e-3))
@pytest.mark.parametrize("eps", (0.01, 0.1, 1.0, 8.0))
def test_rho_for_epsilon_is_the_largest_such_rho(eps: float, delta: float) -> None:
    rho = rho_for_epsilon(eps, delta)
    # A rho larger by one part in a billion already exceeds the target.
    assert epsilon_for_rho(rho * (1 + 1e-9), delta) > eps
    assert epsilon_for_rho(rho * (1 - 1e-9), delta) <= eps


@pytest.mark.parametrize("delta", DELTAS)
@pytest.mark.parametrize("eps", EPSILONS)
def test_tight_rho_is_at_least_the_closed_form_rho(eps: float, delta: float) -> None:
    loose = rho_for_epsilon_closed_form(eps, delta)
    tight = rho_for_epsilon(eps, delta)
    assert tight >= loose
    # The closed form solves eps = rho + 2 sqrt(rho ln(1/delta)) exactly.
    assert loose + 2 * math.sqrt(loose * math.log(1 / delta)) == pytest.approx(eps, rel=1e-12)


def test_tight_conversion_gains_noticeably_at_usual_parameters() -> None:
    # At (1, 1e-6) the tight conversion allows about 39% more rho than the classic bound.
    ratio = rho_for_epsilon(1.0, 1e-6) / rho_for_epsilon_closed_form(1.0, 1e-6)
    assert 1.3 < ratio < 1.5


def test_rho_for_epsilon_increases_with_epsilon_and_delta() -> None:
    rhos = [rho_for_epsilon(e, 1e-6) for e in EPSILONS]
    assert all(a < b for a, b in itertools.pairwise(rhos))
    by_delta = [rho_for_epsilon(1.0, d) for d in DELTAS]
    assert all(a < b for a, b in itertools.pairwise(by_delta))


def test_epsilon_for_rho_increases_with_rho() -> None:
    eps = [epsilon_for_rho(r, 1e-6) for r in (1e-6, 1e-4, 1e-2, 0.1, 1.0, 10.0)]
    assert all(a < b for a, b in itertools.pairwise(eps))


def test_rho_for_epsilon_is_bit_for_bit_deterministic_across_processes() -> None:
    cases = [(e, d) for e in (0.1, 0.3, 1.0, 2.5) for d in (1e-6, 1e-9)]
    here = [rho_for_epsilon(e, d).hex() for e, d in cases]
    code = (
        "import json, sys\n"
        "from fedsql.privacy.accounting import rho_for_epsilon\n"
        "cases = json.loads(sys.argv[1])\n"
        "print(json.dumps([rho_for_epsilon(e, d).hex() for e, d in cases]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cases)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert json.loads(out.stdout) == here


def test_rho_for_epsilon_takes_milliseconds() -> None:
    epsilons = [0.05 + 0.037 * i for i in range(20)]
    start = time.perf_counter()
    for e in epsilons:
        rho_for_epsilon(e, 1e-7)  # not asked before: nothing is cached
    per_call = (time.perf_counter() - start) / len(epsilons)
    assert per_call < 0.02, per_call


def test_huge_epsilon_converts_and_huge_rho_is_refused_cleanly() -> None:
    rho = rho_for_epsilon(1e5, 1e-6)
    assert rho > rho_for_epsilon_closed_form(1e5, 1e-6)
    with pytest.raises(DataError):
        epsilon_for_rho(rho, 1e-6)


@pytest.mark.parametrize("eps", [0.0, -1.0, math.nan, math.inf, True, "1"])
def test_rho_for_epsilon_refuses_bad_epsilon(eps: object) -> None:
    with pytest.raises(DataError):
        rho_for_epsilon(eps, 1e-6)  # type: ignore[arg-type]


@pytest.mark.parametrize("delta", [0.0, 1.0, -1e-6, 1.5, math.nan, True])
def test_conversions_refuse_bad_delta(delta: float) -> None:
    with pytest.raises(DataError):
        rho_for_epsilon(1.0, delta)
    with pytest.raises(DataError):
        epsilon_for_rho(0.1, delta)
    with pytest.raises(DataError):
        rho_for_epsilon_closed_form(1.0, delta)


@pytest.mark.parametrize("rho", [-0.1, math.nan, math.inf, True])
def test_epsilon_for_rho_refuses_bad_rho(rho: float) -> None:
    with pytest.raises(DataError):
        epsilon_for_rho(rho, 1e-6)
