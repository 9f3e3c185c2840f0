"""Two-limb encoding: exact big sums through the masks, per-limb bands and the rogue-silo check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedsql.errors import DataError, OverflowDetected, ProtocolError, QueryRejected
from fedsql.secagg import prg
from fedsql.secagg.encoding import (
    HEADROOM,
    LIMB_BITS,
    CoordinateSpec,
    band,
    check_plan,
    columns,
    coordinate_bands,
    decode,
    dimension,
    encode,
    limb_bands,
)
from fedsql.secagg.masks import apply_pairwise_masks
from fedsql.secagg.validation import check_input

from .harness import make_descriptor, make_federation, qid_for, run_protocol

#: Noise entries the property test adds stay within this, and the specs allow 8 sigma of it.
NOISE = 1000
#: SECAGG.md's sum of squares (|v| <= 1e6, 1e7 rows a silo): over 4 silos 2^65.1, too much for
#: one coordinate.
SUMSQ = CoordinateSpec(bound=1e6**2 * 1e7, frac_bits=0, limbs=2)
COUNT = CoordinateSpec(bound=1e8, frac_bits=0)


def _representable(value: int) -> int:
    """``value`` with its low bits dropped so that it is exactly a float64."""
    shift = max(0, abs(value).bit_length() - 53)
    return -((-value) >> shift << shift) if value < 0 else value >> shift << shift


@st.composite
def _specs(draw: st.DrawFn, n: int) -> tuple[CoordinateSpec, ...]:
    """One to three measures, at least one in two limbs, each with L = 2^top up to its limit."""
    log_n = math.ceil(math.log2(n))
    sigma = float(NOISE * n)  # 8 sigma covers any sum of n noise entries
    specs = []
    for limbs in [*draw(st.lists(st.sampled_from((1, 2)), min_size=1, max_size=3)), 2]:
        # the largest top keeping n * (2^top / 2^32 + 1) + 8 sigma (two limbs) or
        # n * 2^top + 8 sigma (one limb) within 2^62
        top = draw(st.integers(0, 61 - log_n if limbs == 1 else 93 - log_n))
        frac_bits = draw(st.integers(0, min(top, 40)))
        specs.append(CoordinateSpec(math.ldexp(1.0, top - frac_bits), frac_bits, sigma, limbs))
    return tuple(specs)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(2, 10), cells=st.integers(1, 6))
def test_limb_sums_match_python_big_int_sums_through_the_masks(
    data: st.DataObject, n: int, cells: int
) -> None:
    specs = data.draw(_specs(n))
    check_plan(specs, n)
    m, d = len(specs), dimension(specs, cells)
    ids = [f"clinic-{i}" for i in range(n)]
    limits = [s.limit for s in specs] * cells
    exact = [0] * (cells * m)
    total = np.zeros(d, dtype=np.uint64)
    pairs = [(a, b) for a in ids for b in ids if a < b]
    keys = data.draw(
        st.lists(
            st.binary(min_size=16, max_size=16),
            min_size=len(pairs) + n,
            max_size=len(pairs) + n,
            unique=True,
        )
    )
    pair_keys = dict(zip(pairs, keys, strict=False))
    seeds = dict(zip(ids, keys[len(pairs) :], strict=True))
    for own in ids:
        ints = [
            _representable(
                data.draw(st.one_of(st.sampled_from((-lim, lim, 0, -1)), st.integers(-lim, lim)))
            )
            for lim in limits
        ]
        noise = data.draw(
            st.lists(st.integers(-NOISE, NOISE), min_size=cells * m, max_size=cells * m)
        )
        values = np.array(
            [math.ldexp(float(x), -specs[j % m].frac_bits) for j, x in enumerate(ints)]
        )
        x = encode(values, specs, cells, clip=False, noise=np.array(noise, dtype=np.int64))
        exact = [e + v + z for e, v, z in zip(exact, ints, noise, strict=True)]
        # mask: the self-mask and one pairwise mask per peer, exactly as a silo does
        y = x.view(np.uint64).copy()
        prg.add_stream(y, seeds[own], +1)
        peers = [(p, pair_keys[min(own, p), max(own, p)]) for p in ids if p != own]
        apply_pairwise_masks(y, own, peers)
        assert not np.array_equal(y, x.view(np.uint64))
        total += y
    for own in ids:  # unmask: the coordinator removes every survivor's self-mask
        prg.add_stream(total, seeds[own], -1)
    got = decode(total, specs, cells, n)
    expected = [math.ldexp(float(e), -specs[j % m].frac_bits) for j, e in enumerate(exact)]
    assert got.tolist() == expected


def test_a_value_splits_into_a_signed_high_limb_and_a_low_limb_below_two_to_the_32() -> None:
    spec = CoordinateSpec(bound=2.0**80, frac_bits=0, limbs=2)
    xs = [-(2**80), -(2**32) - 1, -1, 0, 2**32 - 1, 2**32, 3 * 2**70 + 2**30, 2**80]
    out = encode(np.array([float(x) for x in xs]), [spec], cells=len(xs)).tolist()
    pairs = list(zip(out[::2], out[1::2], strict=True))
    assert pairs == [(x >> LIMB_BITS, x % 2**LIMB_BITS) for x in xs]
    assert all(0 <= lo < 2**LIMB_BITS for _, lo in pairs)


def test_layout_puts_each_measures_limbs_side_by_side_and_noise_on_the_low_limb() -> None:
    specs = [COUNT, SUMSQ, CoordinateSpec(bound=10.0, frac_bits=2)]
    assert columns(specs) == ((0, 0), (1, 0), (1, 1), (2, 0))
    assert dimension(specs, cells=3) == 12
    values = np.array([5.0, 2.0**40 + 7.0, 1.25] * 3)  # 2^40 + 7 = 256 * 2^32 + 7
    noise = np.array([10, 20, 30] * 3, dtype=np.int64)
    quiet = encode(values, specs, 3).reshape(3, 4)
    noisy = encode(values, specs, 3, noise=noise).reshape(3, 4)
    assert quiet[0].tolist() == [5, 256, 7, 5]
    assert (noisy - quiet).tolist() == [[10, 0, 20, 30]] * 3


def test_limb_bands_follow_the_documented_formulas() -> None:
    spec = CoordinateSpec(bound=3.0 * 2**40, frac_bits=2, sigma_total=10.5, limbs=2)
    assert spec.limit == 3 * 2**42
    assert limb_bands(spec, n=5) == (5 * 3 * 2**10 + 5, 5 * 2**32 + 84)
    assert band(spec, n=5) == 5 * 2**32 + 84
    assert limb_bands(spec, n=1, sigma=2.0) == (3 * 2**10 + 1, 2**32 + 16)
    bands = coordinate_bands([COUNT, spec], n=1, sigmas=[0.0, 2.0]).tolist()
    assert bands == [10**8, 3 * 2**10 + 1, 2**32 + 16]


def test_two_limbs_carry_what_one_coordinate_cannot() -> None:
    one = CoordinateSpec(bound=SUMSQ.bound, frac_bits=0)
    with pytest.raises(QueryRejected, match=r"measure 0 \(of 1\).*2\^65.1"):
        check_plan([one], n=4)
    check_plan([SUMSQ], n=4)


def test_two_limbs_that_still_do_not_fit_are_rejected_naming_the_limb() -> None:
    n = 4
    top = CoordinateSpec(bound=float(2**93), frac_bits=0, limbs=2)  # hi band 4 * 2^61 + 4
    with pytest.raises(QueryRejected, match="even split into 2 limbs: its high limb"):
        check_plan([COUNT, top], n)
    check_plan([CoordinateSpec(bound=float(2**91), frac_bits=0, limbs=2)], n)
    loud = CoordinateSpec(bound=2.0**70, frac_bits=0, sigma_total=2.0**60, limbs=2)
    with pytest.raises(QueryRejected, match=r"its low limb.*raise epsilon"):
        check_plan([loud], n)


def test_encode_refuses_a_two_limb_spec_beyond_two_to_the_94() -> None:
    spec = CoordinateSpec(bound=2.0**95, frac_bits=0, limbs=2)
    with pytest.raises(ProtocolError, match="above 2\\^94"):
        encode(np.zeros(1), [spec], cells=1)


@pytest.mark.parametrize("rogue", [2**63 - 1, -(2**63)])
@pytest.mark.parametrize(("column", "limb"), [(1, "high"), (2, "low")])
def test_a_rogue_silo_injecting_an_extreme_limb_makes_decode_reject(
    rogue: int, column: int, limb: str
) -> None:
    specs, cells, n = [COUNT, SUMSQ], 3, 4
    rng = np.random.default_rng(7)
    honest = [
        encode(np.tile([1e8, SUMSQ.bound], cells) * rng.uniform(0, 1, 2 * cells), specs, cells)
        for _ in range(n - 1)
    ]
    total = sum((x.view(np.uint64) for x in honest), np.zeros(9, dtype=np.uint64))
    decode(total, specs, cells, n)  # the honest part alone is accepted
    evil = np.zeros(9, dtype=np.int64)
    evil[3 + column] = rogue  # cell 1
    with pytest.raises(
        OverflowDetected, match=f"coordinate {3 + column} \\(cell 1, measure 1, {limb} limb\\)"
    ) as info:
        decode(total + evil.view(np.uint64), specs, cells, n)
    assert str(rogue) not in str(info.value)


def test_a_silo_refuses_to_upload_a_limb_outside_its_own_band() -> None:
    fed = make_federation(3)
    spec = CoordinateSpec(bound=2.0**70, frac_bits=0, limbs=2)
    desc = make_descriptor(fed, specs=(spec,), cells=2, sigma_loc=(4.0,), qid=qid_for("limb/in"))
    ok = np.array([2**38 + 1, 2**32 + 32, -(2**38) - 1, -32], dtype=np.int64)
    assert check_input(desc, ok).view(np.int64).tolist() == ok.tolist()
    for j, bad in ((0, 2**38 + 2), (1, 2**32 + 33), (3, -(2**32) - 33)):
        x = ok.copy()
        x[j] = bad
        with pytest.raises(DataError, match=f"coordinate {j} \\(cell {j // 2}, measure 0"):
            check_input(desc, x)


def test_two_limb_measures_sum_exactly_through_the_whole_protocol() -> None:
    fed = make_federation(4)
    specs = (COUNT, SUMSQ)
    desc = make_descriptor(fed, specs=specs, cells=5, qid=qid_for("limb/protocol"))
    assert desc.dimension == 15
    rng = np.random.default_rng(11)
    values = {sid: rng.uniform(0, 1, 10) * np.tile([1e8, SUMSQ.bound], 5) for sid in fed.ids}
    xs = {sid: encode(v, specs, 5) for sid, v in values.items()}
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    got = decode(run.total, specs, 5, 4)
    exact = [sum(round(float(v[j])) for v in values.values()) for j in range(10)]
    assert got.tolist() == [float(e) for e in exact]
    assert max(exact[1::2]) > HEADROOM  # the sums of squares did need more than one coordinate


def test_recombination_rounds_the_exact_total_once() -> None:
    # total = (2^53 + 1) * 2^32 + 1: float(hi) * 2^32 + lo would round twice, down to 2^85
    spec = CoordinateSpec(bound=float(2**85), frac_bits=0, limbs=2)
    total = np.array([2**53 + 1, 1], dtype=np.uint64)
    assert decode(total, [spec], cells=1, n=2).tolist() == [float(2**85 + 2**32 + 1)]
    assert float(2**85 + 2**32 + 1) == 2.0**85 + 2.0**33
