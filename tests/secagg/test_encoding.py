"""Fixed-point encoding into Z_2^64, the plan-time 2^62 check and the overflow band at decode."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedsql.errors import DataError, OverflowDetected, ProtocolError, QueryRejected
from fedsql.secagg.encoding import (
    HEADROOM,
    CoordinateSpec,
    band,
    check_plan,
    decode,
    dimension,
    encode,
)

COUNT = CoordinateSpec(bound=1000.0, frac_bits=0, sigma_total=10.0)
MEAN = CoordinateSpec(bound=2.5, frac_bits=8, sigma_total=40.0)


def test_limit_is_the_ceiling_of_the_scaled_bound() -> None:
    assert CoordinateSpec(bound=2.3, frac_bits=2).limit == 10
    assert CoordinateSpec(bound=2.25, frac_bits=2).limit == 9
    assert CoordinateSpec(bound=0.0, frac_bits=5).limit == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bound": -1.0, "frac_bits": 0},
        {"bound": math.nan, "frac_bits": 0},
        {"bound": math.inf, "frac_bits": 0},
        {"bound": 1.0, "frac_bits": -1},
        {"bound": 1.0, "frac_bits": 63},
        {"bound": 1.0, "frac_bits": True},
        {"bound": 1.0, "frac_bits": 0, "sigma_total": -1.0},
        {"bound": 1.0, "frac_bits": 0, "sigma_total": math.nan},
    ],
)
def test_malformed_specs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ProtocolError):
        CoordinateSpec(**kwargs)  # type: ignore[arg-type]


def test_dimension_is_cells_times_measures() -> None:
    assert dimension([COUNT, MEAN], 50) == 100
    with pytest.raises(ProtocolError):
        dimension([], 3)
    with pytest.raises(ProtocolError):
        dimension([COUNT], 0)


def test_plan_check_accepts_the_documented_examples() -> None:
    check_plan([CoordinateSpec(bound=2.0**40, frac_bits=0)], n=100)  # COUNT with R <= 2^40
    check_plan([CoordinateSpec(bound=1e6 * 1e7, frac_bits=12)], n=100)  # SUM, f = 12


def test_plan_check_rejects_too_many_fraction_bits_and_names_the_measure() -> None:
    specs = [COUNT, CoordinateSpec(bound=1e6 * 1e7, frac_bits=14)]
    with pytest.raises(QueryRejected, match=r"measure 1 \(of 2\).*lower epsilon"):
        check_plan(specs, n=100)


def test_plan_check_boundary_is_exactly_two_to_the_62() -> None:
    n, sigma = 2**20, 100.0  # keeps the bound exactly representable as a float
    limit = (HEADROOM - math.ceil(8 * sigma)) // n
    assert limit == 2**42 - 1
    check_plan([CoordinateSpec(bound=float(limit), frac_bits=0, sigma_total=sigma)], n)
    assert band(CoordinateSpec(bound=float(limit), frac_bits=0, sigma_total=sigma), n) <= HEADROOM
    too_big = CoordinateSpec(bound=float(limit + 1), frac_bits=0, sigma_total=sigma)
    with pytest.raises(QueryRejected):
        check_plan([too_big], n)


def test_plan_check_counts_the_noise_allowance() -> None:
    spec = CoordinateSpec(bound=float(2**60), frac_bits=0, sigma_total=float(2**59))
    check_plan([CoordinateSpec(bound=float(2**60), frac_bits=0)], n=4)
    with pytest.raises(QueryRejected):
        check_plan([spec], n=4)


def test_encode_rounds_clips_and_lays_out_cell_major() -> None:
    values = np.array([999.6, 1.0, -5000.0, -2.6, 1e300, 0.001], dtype=np.float64)
    out = encode(values, [COUNT, MEAN], cells=3)
    assert out.dtype == np.int64
    assert out.tolist() == [1000, 256, -1000, -640, 1000, 0]


def test_encode_clips_infinities_to_the_bound() -> None:
    out = encode(np.array([np.inf, -np.inf]), [COUNT], cells=2)
    assert out.tolist() == [1000, -1000]


def test_encode_refuses_nan_naming_only_the_coordinate() -> None:
    values = np.array([1.0, 2.0, np.nan, 3.0])
    with pytest.raises(DataError, match=r"coordinate 2 \(cell 1, measure 0\)"):
        encode(values, [COUNT, MEAN], cells=2)


def test_encode_without_clipping_refuses_out_of_bound_values() -> None:
    values = np.array([10.0, 2.5, 10.0, 2.51])
    with pytest.raises(DataError, match=r"coordinate 3 \(cell 1, measure 1\) is outside"):
        encode(values, [COUNT, MEAN], cells=2, clip=False)
    assert encode(values[:2], [COUNT, MEAN], cells=1, clip=False).tolist() == [10, 640]


def test_encode_refuses_a_spec_that_cannot_fit_int64() -> None:
    with pytest.raises(ProtocolError, match="above 2\\^62"):
        encode(np.zeros(1), [CoordinateSpec(bound=2.0**63, frac_bits=0)], cells=1)


def test_encode_refuses_a_vector_of_the_wrong_length() -> None:
    with pytest.raises(ProtocolError, match="expected 6"):
        encode(np.zeros(5), [COUNT, MEAN], cells=3)


def test_fixed_point_roundtrip_over_several_silos() -> None:
    rng = np.random.default_rng(5)
    specs = [COUNT, MEAN, CoordinateSpec(bound=1e6, frac_bits=20)]
    cells, n = 40, 6
    bounds = np.tile([s.bound for s in specs], cells)
    silos = [rng.uniform(-1.2, 1.2, size=3 * cells) * bounds for _ in range(n)]
    total = np.zeros(3 * cells, dtype=np.uint64)
    for v in silos:
        total += encode(v, specs, cells).view(np.uint64)
    got = decode(total, specs, cells, n)
    clipped = sum(np.clip(v, -bounds, bounds) for v in silos)
    resolution = np.tile([2.0**-s.frac_bits for s in specs], cells)
    assert np.all(np.abs(got - clipped) <= n * resolution / 2 + 1e-9)


def test_integer_sums_decode_exactly() -> None:
    rng = np.random.default_rng(9)
    xs = [rng.integers(-1000, 1001, size=20) for _ in range(5)]
    total = np.zeros(20, dtype=np.uint64)
    for x in xs:
        total += encode(x.astype(np.float64), [COUNT], 20).view(np.uint64)
    assert np.array_equal(decode(total, [COUNT], 20, 5), np.sum(xs, axis=0).astype(np.float64))


@pytest.mark.parametrize("rogue", [2**63 - 1, -(2**63)])
def test_decode_rejects_a_coordinate_carrying_an_extreme_value(rogue: int) -> None:
    total = np.zeros(6, dtype=np.uint64)
    total[4] = np.uint64(rogue % 2**64)
    with pytest.raises(OverflowDetected, match=r"coordinate 4 \(cell 2, measure 0\)") as info:
        decode(total, [COUNT, MEAN], cells=3, n=3)
    assert str(rogue) not in str(info.value)


def test_decode_band_edge_is_accepted_and_one_past_it_rejected() -> None:
    n = 3
    edge = band(COUNT, n)  # 3 * 1000 + 80
    assert edge == 3080
    total = np.array([edge, (-edge) % 2**64], dtype=np.uint64)
    assert decode(total, [COUNT], cells=2, n=n).tolist() == [3080.0, -3080.0]
    with pytest.raises(OverflowDetected, match="2 coordinate"):
        decode(total + np.array([1, 2**64 - 1], dtype=np.uint64), [COUNT], cells=2, n=n)


def test_decode_detects_a_wrapped_sum() -> None:
    big = CoordinateSpec(bound=float(2**61), frac_bits=0)
    x = encode(np.array([float(2**61)]), [big], 1).view(np.uint64)
    wrapped = x + x + x + x  # four silos at +bound: 2^63 wraps to -2^63
    with pytest.raises(OverflowDetected):
        decode(wrapped, [big], cells=1, n=2)


def test_decode_refuses_a_vector_of_the_wrong_length() -> None:
    with pytest.raises(ProtocolError, match="expected 4"):
        decode(np.zeros(3, dtype=np.uint64), [COUNT, MEAN], cells=2, n=2)
