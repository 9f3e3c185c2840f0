"""Dropouts at each phase: correct totals while enough silos remain, clean aborts otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.errors import ProtocolError, QuorumNotMet
from fedsql.secagg import prg, shamir
from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.masks import apply_pairwise_masks
from fedsql.secagg.messages import Descriptor, vector_from_bytes
from fedsql.secagg.silo_session import RoundState

from .harness import (
    Federation,
    byte_histogram_pvalue,
    make_descriptor,
    make_federation,
    plain_sum,
    qid_for,
    run_protocol,
    wrapping_sum,
)

N, D = 10, 2_000
SPEC = CoordinateSpec(bound=float(2**40), frac_bits=0)


def _setup(
    label: str, n: int = N, d: int = D
) -> tuple[Federation, Descriptor, dict[str, NDArray[np.int64]]]:
    fed = make_federation(n, label=label)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for(label))
    rng = np.random.default_rng(abs(hash(label)) % 2**32)
    xs = {sid: rng.integers(-(2**40), 2**40, size=d, dtype=np.int64) for sid in fed.ids}
    return fed, desc, xs


def test_defaults_for_ten_silos() -> None:
    _, desc, _ = _setup("dropout/defaults")
    assert (desc.threshold, desc.n_min, desc.survivors_needed) == (6, 3, 7)


@pytest.mark.parametrize("k", [1, 2, 3])  # up to n - max(t + 1, n_min) = 10 - 7
def test_silos_that_never_upload_leave_the_sum_over_survivors(k: int) -> None:
    fed, desc, xs = _setup(f"dropout/a/{k}")
    rng = np.random.default_rng(k)
    dropped = set(rng.choice(fed.ids, size=k, replace=False).tolist())
    uploaders = [sid for sid in fed.ids if sid not in dropped]
    run = run_protocol(fed, desc, xs, uploaders=uploaders)
    assert run.coordinator.dropped == tuple(sorted(dropped))
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs[sid] for sid in uploaders))
    for sid, resp in run.responses.items():
        assert {peer for peer, _ in resp.mask_keys} == dropped
        assert not {owner for owner, _ in resp.seed_shares} & dropped
        assert {owner for owner, _ in resp.seed_shares} == set(uploaders) - {sid}


@pytest.mark.parametrize("silent", [1, 2, 3])
def test_survivors_missing_round_two_without_dropouts_still_give_the_sum(silent: int) -> None:
    fed, desc, xs = _setup(f"dropout/b/{silent}")
    responders = fed.ids[silent:]  # each survivor keeps >= t = 6 responding holders
    run = run_protocol(fed, desc, xs, responders=responders)
    assert run.coordinator.dropped == ()
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs.values()))


def test_too_few_round_two_holders_abort_without_a_result() -> None:
    fed, desc, xs = _setup("dropout/b/too-few")
    run = run_protocol(fed, desc, xs, responders=fed.ids[5:], finish=False)  # 5 < t holders
    with pytest.raises(QuorumNotMet, match="shares of survivor"):
        run.coordinator.finish()
    assert run.coordinator.state is CoordinatorState.ABORTED


def test_survivor_missing_round_two_with_dropouts_aborts_and_nothing_unmasks() -> None:
    fed, desc, xs = _setup("dropout/c")
    silent = fed.ids[1]  # fed.ids[0] never uploads
    uploaders = fed.ids[1:]
    responders = fed.ids[2:]
    run = run_protocol(fed, desc, xs, uploaders=uploaders, responders=responders, finish=False)
    with pytest.raises(QuorumNotMet, match=f"{silent}.*new query id"):
        run.coordinator.finish()
    assert run.coordinator.state is CoordinatorState.ABORTED
    with pytest.raises(ProtocolError):
        run.coordinator.finish()

    # Everything the coordinator now holds: every survivor's seed (>= t shares each) and the
    # mask keys with the dropped silo from all survivors but the silent one.
    ys = {sid: vector_from_bytes(run.uploads[sid].y, D) for sid in uploaders}
    seeds: dict[str, bytes] = {}
    for owner in uploaders:
        held = {
            fed.index(holder): share
            for holder, resp in run.responses.items()
            for share_owner, share in resp.seed_shares
            if share_owner == owner
        }
        seeds[owner] = shamir.reconstruct(dict(sorted(held.items())[: desc.threshold]))
    best = wrapping_sum(ys.values())
    for seed in seeds.values():
        prg.add_stream(best, seed, -1)
    for sid, resp in run.responses.items():
        apply_pairwise_masks(best, sid, resp.mask_keys, negate=True)
    # The silent survivor's mask with the dropped silo is still on: the total is hidden,
    assert int((best == plain_sum(xs[sid] for sid in uploaders)).sum()) == 0
    assert byte_histogram_pvalue(best - plain_sum(xs[s] for s in uploaders), 56) > 1e-3
    # and so is each individual upload (other survivors' pairwise masks remain).
    for sid in uploaders:
        alone = ys[sid].copy()
        prg.add_stream(alone, seeds[sid], -1)
        assert int((alone == xs[sid].view(np.uint64)).sum()) == 0

    # A retry under a new qid with the same silos works.
    for sid in fed.ids:
        fed.sessions[sid].abort(desc.qid)
    retry = make_descriptor(fed, cells=D, specs=(SPEC,), qid=qid_for("dropout/c/retry"))
    again = run_protocol(fed, retry, xs, uploaders=uploaders)
    assert again.total is not None
    assert np.array_equal(again.total, plain_sum(xs[sid] for sid in uploaders))


@pytest.mark.parametrize("uploaded", [0, 3, 6])  # fewer than max(t + 1, n_min) = 7
def test_too_few_uploads_abort_before_any_unmask_request(uploaded: int) -> None:
    fed, desc, xs = _setup(f"dropout/d/{uploaded}")
    coordinator = CoordinatorSession(desc, fed.roster, fed.c_max)
    uploaders = fed.ids[:uploaded]
    for sid in uploaders:
        coordinator.add_upload(fed.sessions[sid].upload(desc, xs[sid]))
    with pytest.raises(QuorumNotMet, match=f"only {uploaded} of 10 silos uploaded"):
        coordinator.close_round1()
    assert coordinator.state is CoordinatorState.ABORTED
    assert coordinator.survivors == ()
    for sid in uploaders:  # nothing was asked of the silos, so nothing was released
        assert fed.sessions[sid].state(desc.qid) is RoundState.UPLOADED
    with pytest.raises(ProtocolError, match="aborted"):
        coordinator.close_round1()


def test_the_exact_floor_of_survivors_is_enough() -> None:
    fed, desc, xs = _setup("dropout/floor")
    uploaders = fed.ids[: desc.survivors_needed]
    run = run_protocol(fed, desc, xs, uploaders=uploaders)
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(xs[sid] for sid in uploaders))


def test_two_silo_federation_needs_both() -> None:
    fed = make_federation(2, c_max=0, label="dropout/two")
    desc = make_descriptor(fed, cells=10, specs=(SPEC,), qid=qid_for("dropout/two"))
    assert (desc.threshold, desc.n_min) == (1, 2)
    xs = {sid: np.arange(10, dtype=np.int64) for sid in fed.ids}
    run = run_protocol(fed, desc, xs)
    assert run.total is not None and run.total.tolist() == list(range(0, 20, 2))
    desc_b = make_descriptor(fed, cells=10, specs=(SPEC,), qid=qid_for("dropout/two/b"))
    alone = CoordinatorSession(desc_b, fed.roster, 0)
    alone.add_upload(fed.sessions["clinic-000"].upload(desc_b, xs["clinic-000"]))
    with pytest.raises(QuorumNotMet):
        alone.close_round1()
