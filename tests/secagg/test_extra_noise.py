"""The extra noise part is removed only when every cohort member answered with nobody dropped."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.errors import DataError, ProtocolError
from fedsql.secagg import extra, keys
from fedsql.secagg.messages import UnmaskRequest, vector_from_bytes

from .harness import Federation, make_descriptor, make_federation, plain_sum, run_protocol

CELLS = 6


def _parts(fed: Federation, label: int) -> tuple[dict[str, NDArray[np.int64]], ...]:
    """Per silo: data X, base noise and extra noise (small integers, noise-off descriptor)."""
    rng = np.random.default_rng(label)
    data = {s: rng.integers(-100, 100, CELLS).astype(np.int64) for s in fed.ids}
    base = {s: rng.integers(-20, 20, CELLS).astype(np.int64) for s in fed.ids}
    more = {s: rng.integers(-50, 50, CELLS).astype(np.int64) + 1 for s in fed.ids}
    return data, base, more


def _uploaded(
    data: dict[str, NDArray[np.int64]],
    base: dict[str, NDArray[np.int64]],
    more: dict[str, NDArray[np.int64]],
) -> dict[str, NDArray[np.int64]]:
    return {s: data[s] + base[s] + more[s] for s in data}


def test_all_answering_removes_exactly_the_extras() -> None:
    fed = make_federation(4)
    data, base, more = _parts(fed, 1)
    desc = make_descriptor(fed, cells=CELLS)
    run = run_protocol(fed, desc, _uploaded(data, base, more), extras=more)
    assert run.coordinator.extras_removed
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(data[s] + base[s] for s in fed.ids))
    assert not np.array_equal(run.total, plain_sum(_uploaded(data, base, more).values()))
    for sid, resp in run.responses.items():
        assert len(resp.extra) == 8 * CELLS
        # no silo's extra travels unmasked
        assert not np.array_equal(vector_from_bytes(resp.extra, CELLS), more[sid].view(np.uint64))


@pytest.mark.parametrize("missing", ["response", "extra"])
def test_a_member_without_an_extra_in_round_two_leaves_the_whole_noise_in(missing: str) -> None:
    # "response": one member never answers round 2 (nobody dropped, so the query still ends);
    # "extra": one member answers without its extra (e.g. it restarted between the rounds).
    fed = make_federation(4)
    data, base, more = _parts(fed, 2)
    desc = make_descriptor(fed, cells=CELLS)
    first, rest = fed.ids[0], fed.ids[1:]
    if missing == "response":
        run = run_protocol(fed, desc, _uploaded(data, base, more), extras=more, responders=rest)
        assert first not in run.responses
    else:
        kept = {s: more[s] for s in rest}
        run = run_protocol(fed, desc, _uploaded(data, base, more), extras=kept)
        assert run.responses[first].extra == b""
    assert all(run.responses[s].extra for s in rest)
    assert run.coordinator.dropped == ()
    assert not run.coordinator.extras_removed
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(_uploaded(data, base, more).values()))


def test_with_a_dropped_silo_no_extra_is_sent() -> None:
    fed = make_federation(4)
    data, base, more = _parts(fed, 4)
    desc = make_descriptor(fed, cells=CELLS)
    survivors = fed.ids[1:]
    run = run_protocol(fed, desc, _uploaded(data, base, more), extras=more, uploaders=survivors)
    assert run.coordinator.dropped == (fed.ids[0],)
    assert all(resp.extra == b"" for resp in run.responses.values())
    assert not run.coordinator.extras_removed
    assert run.total is not None
    assert np.array_equal(run.total, plain_sum(_uploaded(data, base, more)[s] for s in survivors))


def test_an_extra_is_never_computed_for_a_view_with_dropped_silos() -> None:
    fed = make_federation(3)
    pair = {peer: fed.pair_key("clinic-000", peer) for peer in fed.ids[1:]}
    with pytest.raises(ProtocolError, match="only sent when no silo dropped"):
        extra.masked_extra(
            np.ones(CELLS, dtype=np.int64),
            "clinic-000",
            pair,
            bytes(16),
            bytes(32),
            bytes(32),
            ["clinic-002"],
        )


def test_split_views_leave_the_extras_masked() -> None:
    # A coordinator tells three silos that nobody dropped and the fourth that one did.
    fed = make_federation(4)
    a, b, c, d = fed.ids
    data, base, more = _parts(fed, 5)
    desc = make_descriptor(fed, cells=CELLS)
    coordinator = fed.coordinator(desc)
    desc = coordinator.desc
    inputs = _uploaded(data, base, more)
    uploads = {s: fed.sessions[s].upload(desc, inputs[s], more[s]) for s in fed.ids}
    ciphertexts = {s: dict(up.shares) for s, up in uploads.items()}

    def request(v: str, survivors: tuple[str, ...], dropped: tuple[str, ...]) -> UnmaskRequest:
        forwarded = tuple((u, ciphertexts[u][v]) for u in survivors if u != v)
        return UnmaskRequest(desc.qid, coordinator.hq, survivors, dropped, forwarded)

    everyone = {v: fed.sessions[v].unmask(request(v, fed.ids, ())) for v in (a, b, c)}
    other = fed.sessions[d].unmask(request(d, (a, b, d), (c,)))
    assert other.extra == b""
    assert len({r.request_digest for r in (*everyone.values(), other)}) == 2
    summed = plain_sum(vector_from_bytes(r.extra, CELLS).view(np.int64) for r in everyone.values())
    assert not np.array_equal(summed, plain_sum(more[s] for s in (a, b, c)))


def test_extras_masked_under_different_views_do_not_cancel() -> None:
    fed = make_federation(4)
    qid, hq = bytes(range(16)), bytes(range(32))
    rng = np.random.default_rng(6)
    extras = {s: rng.integers(-50, 50, CELLS).astype(np.int64) for s in fed.ids}

    def z(sid: str, digest: bytes) -> NDArray[np.uint64]:
        pair = {peer: fed.pair_key(sid, peer) for peer in fed.ids if peer != sid}
        return extra.masked_extra(extras[sid], sid, pair, qid, hq, digest, ())

    same, other = bytes(32), bytes([1]) * 32
    expected = plain_sum(extras.values())
    assert np.array_equal(plain_sum(z(s, same).view(np.int64) for s in fed.ids), expected)
    views = {fed.ids[0]: other}
    split = plain_sum(z(s, views.get(s, same)).view(np.int64) for s in fed.ids)
    assert not np.array_equal(split, expected)


def test_the_extra_key_is_bound_to_the_view_and_differs_from_the_mask_key() -> None:
    pair, qid, hq = bytes(range(32)), bytes(16), bytes(32)
    one = keys.extra_key(pair, qid, hq, bytes(32))
    assert one != keys.extra_key(pair, qid, hq, bytes([1]) * 32)
    assert one != keys.mask_key(pair, qid, hq)
    with pytest.raises(ProtocolError, match="request digest"):
        keys.extra_key(pair, qid, hq, bytes(31))


def test_a_second_unmask_request_is_refused_with_no_second_extra() -> None:
    fed = make_federation(4)
    data, base, more = _parts(fed, 7)
    desc = make_descriptor(fed, cells=CELLS)
    run = run_protocol(fed, desc, _uploaded(data, base, more), extras=more)
    sid = fed.ids[0]
    with pytest.raises(ProtocolError, match="already unmasked"):
        fed.sessions[sid].unmask(run.requests[sid])


def test_an_extra_of_the_wrong_shape_is_refused_at_upload() -> None:
    fed = make_federation(3)
    desc = make_descriptor(fed, cells=CELLS)
    sid = fed.ids[0]
    with pytest.raises(DataError, match="extra noise vector"):
        fed.sessions[sid].upload(
            desc, np.zeros(CELLS, dtype=np.int64), np.zeros(CELLS + 1, dtype=np.int64)
        )
