"""A coordinator that lies: claimed dropouts, replays, bad survivor sets, forged ciphertexts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg import prg, shamir
from fedsql.secagg.coordinator_session import CoordinatorSession
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.masks import apply_pairwise_masks, seed_commitment
from fedsql.secagg.messages import Descriptor, MaskedUpload, UnmaskRequest, vector_from_bytes
from fedsql.secagg.silo_session import RoundState, SiloSession

from .harness import (
    EPOCH,
    Federation,
    byte_histogram_pvalue,
    make_descriptor,
    make_federation,
    qid_for,
    wrapping_sum,
)

N = 7  # t = 4, n_min = 3, c_max = 3
C_MAX = 3
D = 100_000
SPEC = CoordinateSpec(bound=float(2**40), frac_bits=0)


Uploaded = tuple[Federation, Descriptor, dict[str, NDArray[np.int64]], dict[str, MaskedUpload]]


def _uploaded(label: str, d: int = 64, n: int = N, c_max: int = C_MAX) -> Uploaded:
    fed = make_federation(n, c_max=c_max, label=label)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for(label))
    xs = {sid: np.full(d, 2**40, dtype=np.int64) for sid in fed.ids}
    ups = {sid: fed.sessions[sid].upload(desc, xs[sid]) for sid in fed.ids}
    return fed, desc, xs, ups


def _request_for(
    desc: Descriptor,
    ups: Mapping[str, MaskedUpload],
    receiver: str,
    survivors: Iterable[str],
    dropped: Iterable[str],
) -> UnmaskRequest:
    members = tuple(sorted(survivors))
    forwarded = tuple((u, dict(ups[u].shares)[receiver]) for u in members if u != receiver)
    return UnmaskRequest(desc.qid, desc.digest(), members, tuple(sorted(dropped)), forwarded)


def test_claimed_dropout_of_an_uploaded_silo_never_yields_its_seed() -> None:
    fed, desc, xs, ups = _uploaded("attack/claimed-dropout", d=D)
    assert desc.threshold == C_MAX + 1
    victim = "clinic-000"
    corrupt = fed.ids[1 : 1 + C_MAX]  # c = t - 1 colluding silos
    honest = [sid for sid in fed.ids if sid != victim and sid not in corrupt]
    survivors = [sid for sid in fed.ids if sid != victim]
    shares_of_victim: dict[int, bytes] = {}
    mask_keys_with_victim: list[tuple[str, bytes]] = []
    for sid in honest:
        resp = fed.sessions[sid].unmask(_request_for(desc, ups, sid, survivors, [victim]))
        assert victim not in {owner for owner, _ in resp.seed_shares}
        mask_keys_with_victim += [(sid, key) for peer, key in resp.mask_keys if peer == victim]
    for sid in corrupt:  # colluders are told the victim survived and hand over their shares
        resp = fed.sessions[sid].unmask(_request_for(desc, ups, sid, fed.ids, []))
        shares_of_victim.update(
            {fed.index(sid): share for owner, share in resp.seed_shares if owner == victim}
        )
    assert len(shares_of_victim) == desc.threshold - 1
    # Fewer than t shares do not give the seed.
    try:
        guess = shamir.reconstruct(shares_of_victim)
    except ProtocolError:
        guess = b""
    assert seed_commitment(desc.qid, victim, guess or bytes(16)) != ups[victim].commit
    # Removing every pairwise mask the coordinator learned leaves y_w still self-masked.
    y = vector_from_bytes(ups[victim].y, D)
    for sid, key in mask_keys_with_victim:
        apply_pairwise_masks(y, victim, [(sid, key)], negate=True)
    assert len(mask_keys_with_victim) == len(honest)
    assert byte_histogram_pvalue(y, 56) > 1e-3
    assert byte_histogram_pvalue(y, 0) > 1e-3
    assert int((y == xs[victim].view(np.uint64)).sum()) == 0


def test_split_views_never_give_both_a_seed_and_all_its_pairwise_keys() -> None:
    fed, desc, _, ups = _uploaded("attack/split-views", c_max=1, n=6)
    target = "clinic-000"
    # Half the silos are told target survived, the other half that it dropped.
    told_survived = ["clinic-001", "clinic-002"]
    told_dropped = ["clinic-003", "clinic-004", "clinic-005"]
    shares, keys_with_target = 0, set()
    for sid in told_survived:
        resp = fed.sessions[sid].unmask(_request_for(desc, ups, sid, fed.ids, []))
        shares += sum(owner == target for owner, _ in resp.seed_shares)
        assert not resp.mask_keys
    others = [s for s in fed.ids if s != target]
    for sid in told_dropped:
        resp = fed.sessions[sid].unmask(_request_for(desc, ups, sid, others, [target]))
        assert target not in {owner for owner, _ in resp.seed_shares}
        keys_with_target |= {sid for peer, _ in resp.mask_keys if peer == target}
    peers = set(fed.ids) - {target}
    assert shares < desc.threshold or keys_with_target != peers
    assert keys_with_target == set(told_dropped)


def test_second_unmask_request_for_the_same_qid_is_refused() -> None:
    fed, desc, _, ups = _uploaded("attack/second-request")
    sid = "clinic-002"
    first = _request_for(desc, ups, sid, fed.ids, [])
    fed.sessions[sid].unmask(first)
    assert fed.sessions[sid].state(desc.qid) is RoundState.ANSWERED
    with pytest.raises(ProtocolError, match="already unmasked"):
        fed.sessions[sid].unmask(first)
    with pytest.raises(ProtocolError, match="already unmasked"):
        fed.sessions[sid].unmask(_request_for(desc, ups, sid, fed.ids[1:], fed.ids[:1]))


@pytest.mark.parametrize(
    ("survivors", "dropped", "message"),
    [
        (["clinic-000", "clinic-001", "clinic-002", "clinic-003", "clinic-004"],
         ["clinic-004", "clinic-005", "clinic-006"], "both in S and in D"),
        (["clinic-000", "clinic-001", "clinic-002", "clinic-003", "clinic-004"],
         ["clinic-005"], "do not make up the cohort"),
        (["clinic-000", "clinic-001", "clinic-002", "clinic-003", "clinic-004"],
         ["clinic-005", "clinic-006", "zz-stranger"], "do not make up the cohort"),
        (["clinic-000", "clinic-001", "clinic-002", "clinic-004", "clinic-005"],
         ["clinic-003", "clinic-006"], "not in the request's survivor set"),
        (["clinic-000", "clinic-001", "clinic-002", "clinic-003"],
         ["clinic-004", "clinic-005", "clinic-006"], r"below max\(t \+ 1, n_min\) = 5"),
    ],
)  # fmt: skip
def test_invalid_survivor_sets_are_refused(
    survivors: list[str], dropped: list[str], message: str
) -> None:
    fed, desc, _, ups = _uploaded("attack/bad-sets")
    sid = "clinic-003"
    forwarded = tuple((u, dict(ups[u].shares)[sid]) for u in survivors if u in ups and u != sid)
    bad = UnmaskRequest(desc.qid, desc.digest(), tuple(survivors), tuple(dropped), forwarded)
    with pytest.raises(ProtocolError, match=message):
        fed.sessions[sid].unmask(bad)
    assert fed.sessions[sid].state(desc.qid) is RoundState.UPLOADED  # nothing was released


def test_duplicated_ids_and_wrong_digest_are_refused() -> None:
    fed, desc, _, ups = _uploaded("attack/duplicates")
    sid = "clinic-003"
    good = _request_for(desc, ups, sid, fed.ids, [])
    dup = dataclasses.replace(good, survivors=(*good.survivors, "clinic-000"))
    with pytest.raises(ProtocolError, match="twice"):
        fed.sessions[sid].unmask(dup)
    with pytest.raises(ProtocolError, match="different descriptor digest"):
        fed.sessions[sid].unmask(dataclasses.replace(good, hq=bytes(32)))
    with pytest.raises(ProtocolError, match="no upload"):
        fed.sessions[sid].unmask(dataclasses.replace(good, qid=bytes(16)))


def test_forged_reordered_and_cross_query_ciphertexts_are_omitted() -> None:
    fed, desc, _, ups = _uploaded("attack/ciphertexts")
    _, other_desc, _, other_ups = _uploaded("attack/ciphertexts-other")
    receiver = "clinic-006"
    fwd = dict(_request_for(desc, ups, receiver, fed.ids, []).forwarded)
    flipped = bytearray(fwd["clinic-000"])
    flipped[10] ^= 0x80
    fwd["clinic-000"] = bytes(flipped)  # forged
    fwd["clinic-001"], fwd["clinic-002"] = fwd["clinic-002"], fwd["clinic-001"]  # re-ordered
    fwd["clinic-003"] = dict(other_ups["clinic-003"].shares)[receiver]  # from another query
    fwd["clinic-004"] = dict(ups["clinic-004"].shares)["clinic-005"]  # addressed to someone else
    request = UnmaskRequest(desc.qid, desc.digest(), fed.ids, (), tuple(sorted(fwd.items())))
    resp = fed.sessions[receiver].unmask(request)
    assert {owner for owner, _ in resp.seed_shares} == {"clinic-005"}
    assert other_desc.qid != desc.qid


def test_replayed_qid_is_refused_at_upload_even_after_a_restart() -> None:
    fed = make_federation(3, label="attack/replay")
    durable: set[bytes] = set()

    def claim(qid: bytes) -> bool:
        if qid in durable:
            return False
        durable.add(qid)
        return True

    sid = "clinic-000"
    desc = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("attack/replay"))
    x = np.zeros(4, dtype=np.int64)
    first = SiloSession(sid, fed.keypairs[sid], fed.roster, EPOCH, c_max=1, claim_qid=claim)
    first.upload(desc, x)
    with pytest.raises(ProtocolError, match="replayed"):
        first.upload(desc, x)
    restarted = SiloSession(sid, fed.keypairs[sid], fed.roster, EPOCH, c_max=1, claim_qid=claim)
    with pytest.raises(ProtocolError, match="replayed"):
        restarted.accept(desc)
    with pytest.raises(ProtocolError, match="replayed"):
        restarted.upload(desc, x)
    assert restarted.state(desc.qid) is None
    fresh = dataclasses.replace(desc, qid=qid_for("attack/replay/fresh"))
    restarted.upload(fresh, x)
    assert durable == {desc.qid, fresh.qid}


def test_descriptor_substitution_gives_the_coordinator_garbage() -> None:
    """A coordinator showing one silo a different descriptor cannot get a correct sum."""
    fed = make_federation(3, label="attack/substitution")
    desc = make_descriptor(fed, cells=1000, specs=(SPEC,), qid=qid_for("attack/substitution"))
    twisted = dataclasses.replace(desc, sql="SELECT something else")
    xs = {sid: np.zeros(1000, dtype=np.int64) for sid in fed.ids}
    ups = {
        sid: fed.sessions[sid].upload(twisted if sid == "clinic-002" else desc, xs[sid])
        for sid in fed.ids
    }
    # Even relabelling the odd upload and removing every self-mask leaves pairwise garbage.
    total = wrapping_sum(vector_from_bytes(up.y, 1000) for up in ups.values())
    responses = {
        sid: fed.sessions[sid].unmask(
            _request_for(twisted if sid == "clinic-002" else desc, ups, sid, fed.ids, [])
        )
        for sid in fed.ids
    }
    for owner in fed.ids:
        held = {
            fed.index(holder): share
            for holder, resp in responses.items()
            for o, share in resp.seed_shares
            if o == owner
        }
        try:
            seed = shamir.reconstruct(held)
        except ProtocolError:
            continue
        if seed_commitment(desc.qid, owner, seed) == ups[owner].commit:
            prg.add_stream(total, seed, -1)
    assert int((total == 0).sum()) == 0


def test_coordinator_refuses_an_upload_for_another_descriptor() -> None:
    fed = make_federation(3, label="attack/substitution-hq")
    desc = make_descriptor(fed, cells=8, specs=(SPEC,), qid=qid_for("attack/substitution-hq"))
    twisted = dataclasses.replace(desc, analyst="mallory")
    upload = fed.sessions["clinic-000"].upload(twisted, np.zeros(8, dtype=np.int64))
    coordinator = CoordinatorSession(desc, fed.roster, 1)
    with pytest.raises(ProtocolError, match="different descriptor"):
        coordinator.add_upload(upload)
    assert coordinator.uploaded == ()
