"""Masks cancel: the coordinator recovers exactly the sum of the silos' vectors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.secagg.encoding import CoordinateSpec, decode, encode
from fedsql.secagg.messages import vector_from_bytes

from .harness import (
    SLOW,
    make_descriptor,
    make_federation,
    plain_sum,
    qid_for,
    run_protocol,
    wrapping_sum,
)

BOUND = 2**40
SPEC = CoordinateSpec(bound=float(BOUND), frac_bits=0)


def _inputs(kind: str, ids: tuple[str, ...], d: int, seed: int) -> dict[str, NDArray[np.int64]]:
    rng = np.random.default_rng(seed)
    if kind == "zero":
        return {sid: np.zeros(d, dtype=np.int64) for sid in ids}
    if kind == "plus-bound":
        return {sid: np.full(d, BOUND, dtype=np.int64) for sid in ids}
    if kind == "minus-bound":
        return {sid: np.full(d, -BOUND, dtype=np.int64) for sid in ids}
    return {sid: rng.integers(-BOUND, BOUND + 1, size=d, dtype=np.int64) for sid in ids}


@pytest.mark.parametrize("kind", ["zero", "random", "plus-bound", "minus-bound"])
@pytest.mark.parametrize("d", [1, 7, 1000])
@pytest.mark.parametrize("n", [2, 3, 10])
def test_total_equals_the_plain_sum(n: int, d: int, kind: str) -> None:
    fed = make_federation(n, c_max=0 if n == 2 else 1)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for(f"sum/{n}/{d}/{kind}"))
    xs = _inputs(kind, fed.ids, d, seed=n * 1000 + d)
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs.values()))
    expected = np.sum(list(xs.values()), axis=0).astype(np.float64)
    assert np.array_equal(decode(run.total, desc.encoding, d, n), expected)


def test_large_dimension_sum_is_exact() -> None:
    d = 100_000
    fed = make_federation(3)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for("sum/large"))
    xs = _inputs("random", fed.ids, d, seed=1)
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    assert np.array_equal(run.total.view(np.int64), np.sum(list(xs.values()), axis=0))


def test_uploaded_vectors_are_masked_but_their_sum_is_not() -> None:
    fed = make_federation(4)
    desc = make_descriptor(fed, cells=500, specs=(SPEC,), qid=qid_for("sum/masked"))
    xs = _inputs("zero", fed.ids, 500, seed=2)
    run = run_protocol(fed, desc, xs)
    for up in run.uploads.values():
        assert int((vector_from_bytes(up.y, 500) == 0).sum()) == 0
    masked_sum = wrapping_sum(vector_from_bytes(up.y, 500) for up in run.uploads.values())
    assert int((masked_sum == 0).sum()) == 0  # self-masks are still on
    assert run.total is not None and not run.total.any()


def test_fractional_measures_roundtrip_through_the_whole_protocol() -> None:
    specs = (CoordinateSpec(bound=5.0, frac_bits=0), CoordinateSpec(bound=123.5, frac_bits=16))
    cells = 30
    fed = make_federation(5)
    desc = make_descriptor(fed, specs=specs, cells=cells, qid=qid_for("sum/fractional"))
    rng = np.random.default_rng(3)
    values = {sid: rng.uniform(-150, 150, size=2 * cells) for sid in fed.ids}
    xs = {sid: encode(v, specs, cells) for sid, v in values.items()}
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    got = decode(run.total, specs, cells, 5)
    bounds = np.tile([5.0, 123.5], cells)
    expected = sum(np.clip(v, -bounds, bounds) for v in values.values())
    tolerance = np.tile([2.5, 5 * 2.0**-17], cells)
    assert np.all(np.abs(got - expected) <= tolerance + 1e-12)


def test_noise_sized_inputs_beyond_the_data_bound_are_summed_exactly() -> None:
    spec = CoordinateSpec(bound=100.0, frac_bits=0, sigma_total=50.0)
    fed = make_federation(3)
    desc = make_descriptor(
        fed, specs=(spec,), cells=64, sigma_loc=(30.0,), qid=qid_for("sum/noise")
    )
    rng = np.random.default_rng(4)
    xs = {sid: rng.integers(-340, 341, size=64, dtype=np.int64) for sid in fed.ids}
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs.values()))


def test_each_query_reuses_cached_pair_keys_and_still_sums_exactly() -> None:
    fed = make_federation(4)
    for round_no in range(3):
        desc = make_descriptor(fed, cells=16, specs=(SPEC,), qid=qid_for(f"sum/repeat/{round_no}"))
        xs = _inputs("random", fed.ids, 16, seed=round_no)
        run = run_protocol(fed, desc, xs)
        assert run.total is not None
        assert np.array_equal(run.total, plain_sum(xs.values()))


def test_random_system_entropy_gives_the_same_exact_sum() -> None:
    fed = make_federation(5, deterministic=False)
    desc = make_descriptor(fed, cells=100, specs=(SPEC,), qid=os.urandom(16))
    xs = _inputs("random", fed.ids, 100, seed=11)
    run = run_protocol(fed, desc, xs)
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs.values()))


@pytest.mark.slow
def test_hundred_silo_cohort_sums_exactly_with_dropouts() -> None:
    n, d = (100, 100_000) if SLOW else (24, 2_000)
    fed = make_federation(n)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for(f"sum/big/{n}"))
    xs = _inputs("random", fed.ids, d, seed=12)
    dropped = set(fed.ids[1:4])
    uploaders = [sid for sid in fed.ids if sid not in dropped]
    run = run_protocol(fed, desc, xs, uploaders=uploaders)
    assert run.total is not None
    assert run.coordinator.dropped == tuple(sorted(dropped))
    assert np.array_equal(run.total, plain_sum(xs[sid] for sid in uploaders))
