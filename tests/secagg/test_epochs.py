"""Epoch keys: signed by the silo identity, checked by peers, and gone when the epoch ends."""

from __future__ import annotations

import dataclasses
import gc
import types
from collections.abc import Iterator

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg import keys, masks, prg
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.epochs import EpochKey, EpochKeyStore, verify_epoch_key
from fedsql.secagg.messages import Descriptor, vector_from_bytes
from fedsql.secagg.silo_session import RoundState

from .harness import (
    EPOCH,
    FED_ID,
    Federation,
    identity_for,
    keypair_for,
    make_descriptor,
    make_federation,
    plain_sum,
    qid_for,
    run_protocol,
    seeded_bytes,
)

SPEC = CoordinateSpec(bound=1000.0, frac_bits=0)


def _fed(label: str, n: int = 4) -> Federation:
    return make_federation(n, label=label, signed=True, epoch_keys=True)


def _reachable(root: object) -> Iterator[object]:
    """Every object reachable from ``root`` through references, not wandering into code."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, type | types.ModuleType | types.FunctionType | types.CodeType):
            continue
        stack.extend(gc.get_referents(obj))


def _holds(root: object, secret: bytes) -> bool:
    return any(isinstance(o, bytes | bytearray) and secret in bytes(o) for o in _reachable(root))


def test_an_epoch_key_is_signed_by_the_silo_identity_and_checked_against_the_roster() -> None:
    fed = _fed("epochs/verify")
    key = fed.epoch_stores["clinic-001"].public(EPOCH)
    assert (key.fed_id, key.silo_id, key.epoch) == (FED_ID, "clinic-001", EPOCH)
    verify_epoch_key(key, fed.roster)
    forged = EpochKeyStore(FED_ID, "clinic-001", identity_for("mallory")).open_epoch(EPOCH)
    with pytest.raises(ProtocolError, match="does not verify"):
        verify_epoch_key(forged, fed.roster)
    for change in (
        {"x25519_public": keypair_for("mitm").public_bytes},
        {"epoch": EPOCH + 1},
        {"silo_id": "clinic-002"},
    ):
        with pytest.raises(ProtocolError, match="does not verify"):
            verify_epoch_key(dataclasses.replace(key, **change), fed.roster)
    with pytest.raises(ProtocolError, match="federation"):
        verify_epoch_key(dataclasses.replace(key, fed_id="other"), fed.roster)
    with pytest.raises(ProtocolError, match="not signed"):
        verify_epoch_key(dataclasses.replace(key, signature=b""), fed.roster)
    with pytest.raises(ProtocolError, match="not in roster"):
        verify_epoch_key(dataclasses.replace(key, silo_id="stranger"), fed.roster)
    unsigned = make_federation(3, label="epochs/verify-unsigned")
    with pytest.raises(ProtocolError, match="no identity key"):
        verify_epoch_key(dataclasses.replace(key, silo_id="clinic-000"), unsigned.roster)
    with pytest.raises(ProtocolError, match="32 bytes"):
        EpochKey(FED_ID, "a", 1, b"short")


def test_the_store_creates_one_key_per_epoch_and_ended_epochs_stay_ended() -> None:
    store = EpochKeyStore(FED_ID, "a", identity_for("epochs/store"))
    first = store.open_epoch(1)
    assert store.open_epoch(1) == first
    second = store.open_epoch(2)
    assert first.x25519_public != second.x25519_public
    assert store.keypair(1).public_bytes == first.x25519_public
    assert list(store.epochs) == [1, 2]
    store.end_epoch(1)
    assert list(store.epochs) == [2] and store.ended_through == 1
    for call in (store.keypair, store.public, store.open_epoch):
        with pytest.raises(ProtocolError, match="epoch 1 has ended"):
            call(1)
    with pytest.raises(ProtocolError, match="no key for epoch 3"):
        store.keypair(3)
    store.end_epoch(0)  # ending an earlier epoch again changes nothing
    assert store.ended_through == 1 and list(store.epochs) == [2]


def test_ending_an_epoch_overwrites_and_drops_its_private_key() -> None:
    store = EpochKeyStore(FED_ID, "a", identity_for("epochs/wipe"), random_bytes=seeded_bytes("w"))
    store.open_epoch(EPOCH)
    store.open_epoch(EPOCH + 1)
    private = store.keypair(EPOCH).private_bytes
    later = store.keypair(EPOCH + 1).private_bytes
    buffers = [o for o in _reachable(store) if isinstance(o, bytearray) and bytes(o) == private]
    assert len(buffers) == 1  # the store's own buffer
    store.end_epoch(EPOCH)
    assert bytes(buffers[0]) == bytes(32)  # overwritten in place
    assert not _holds(store, private)  # and nothing reachable from the store holds it
    assert _holds(store, later)  # the next epoch's key is still there (the walk sees keys)


def test_a_session_ending_an_epoch_forgets_every_key_of_it() -> None:
    fed = _fed("epochs/session-forget")
    sid = "clinic-000"
    desc = make_descriptor(fed, cells=8, specs=(SPEC,), qid=qid_for("epochs/forget"))
    xs = {s: np.full(8, 5, dtype=np.int64) for s in fed.ids}
    run = run_protocol(fed, desc, xs, finish=False, responders=())
    session = fed.sessions[sid]
    own_private = fed.epoch_stores[sid].keypair(EPOCH).private_bytes
    pair_keys = [fed.pair_key(sid, peer) for peer in fed.ids if peer != sid]
    assert _holds(session, own_private)
    assert all(_holds(session, k) for k in pair_keys)
    session.end_epoch(EPOCH)
    assert not _holds(session, own_private)
    assert not any(_holds(session, k) for k in pair_keys)
    # The query in flight can no longer be unmasked and releases nothing.
    assert session.state(desc.qid) is RoundState.CLOSED
    with pytest.raises(ProtocolError, match="aborted"):
        session.unmask(run.requests[sid])
    # A new query in the ended epoch cannot be masked.
    late = make_descriptor(fed, cells=8, specs=(SPEC,), qid=qid_for("epochs/forget/late"))
    with pytest.raises(ProtocolError, match="epoch 7 has ended"):
        session.upload(late, xs[sid])
    assert session.state(late.qid) is RoundState.CLOSED


def test_an_upload_is_masked_with_the_epoch_pair_keys() -> None:
    fed = _fed("epochs/kat")
    sid = "clinic-001"
    desc = make_descriptor(fed, cells=32, specs=(SPEC,), qid=qid_for("epochs/kat"))
    x = np.arange(32, dtype=np.int64)
    up = fed.sessions[sid].upload(desc, x)
    expected = x.view(np.uint64).copy()
    prg.add_stream(expected, seeded_bytes(f"epochs/kat/{sid}/random")(16), +1)
    hq = desc.digest()
    masks.apply_pairwise_masks(
        expected,
        sid,
        [(p, keys.mask_key(fed.pair_key(sid, p), desc.qid, hq)) for p in fed.ids if p != sid],
    )
    assert np.array_equal(vector_from_bytes(up.y, 32), expected)
    # The identity-key federation with the same labels masks differently.
    v0 = make_federation(4, label="epochs/kat", signed=True)
    other = v0.sessions[sid].upload(make_descriptor(v0, cells=32, specs=(SPEC,),
                                                    qid=qid_for("epochs/kat")), x)  # fmt: skip
    assert int((vector_from_bytes(other.y, 32) == expected).sum()) == 0


@pytest.mark.parametrize("n", [3, 6])
def test_the_protocol_sums_exactly_on_epoch_keys_across_an_epoch_change(n: int) -> None:
    fed = _fed(f"epochs/sum/{n}", n=n)
    xs = {s: np.arange(16, dtype=np.int64) * (i + 1) for i, s in enumerate(fed.ids)}
    desc = make_descriptor(fed, cells=16, specs=(SPEC,), qid=qid_for(f"epochs/sum/{n}/a"))
    run = run_protocol(fed, desc, xs)
    assert run.total is not None and np.array_equal(run.total, plain_sum(xs.values()))
    new_keys = [store.open_epoch(EPOCH + 1) for store in fed.epoch_stores.values()]
    for session in fed.sessions.values():
        session.update_roster(fed.roster, EPOCH + 1)
        session.add_epoch_keys(new_keys)
        session.end_epoch(EPOCH)
    later = make_descriptor(
        fed, cells=16, specs=(SPEC,), qid=qid_for(f"epochs/sum/{n}/b"), epoch=EPOCH + 1
    )
    again = run_protocol(fed, later, xs)
    assert again.total is not None and np.array_equal(again.total, plain_sum(xs.values()))
    assert all(store.epochs == (EPOCH + 1,) for store in fed.epoch_stores.values())


def test_a_missing_peer_epoch_key_refuses_the_upload() -> None:
    fed = _fed("epochs/missing")
    isolated = fed.new_session("clinic-003", with_peer_keys=False)
    desc = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("epochs/missing"))
    with pytest.raises(ProtocolError, match="no verified epoch 7 key for peer clinic-000"):
        isolated.upload(desc, np.zeros(4, dtype=np.int64))
    assert isolated.state(desc.qid) is RoundState.CLOSED
    isolated.add_epoch_keys(fed.epoch_stores[s].public(EPOCH) for s in fed.ids if s != "clinic-002")
    retry = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("epochs/missing/2"))
    with pytest.raises(ProtocolError, match="peer clinic-002"):
        isolated.upload(retry, np.zeros(4, dtype=np.int64))


def _zeros(n: int) -> bytes:
    return bytes(n)


def _expected_y(
    fed: Federation, sid: str, qid_label: str, x: NDArray[np.int64], pairs: dict[str, bytes]
) -> tuple[Descriptor, NDArray[np.uint64]]:
    """The descriptor and the upload a silo with an all-zero random source must produce."""
    desc = make_descriptor(fed, cells=x.shape[0], specs=(SPEC,), qid=qid_for(qid_label))
    y = x.view(np.uint64).copy()
    prg.add_stream(y, bytes(16), +1)
    hq = desc.digest()
    masks.apply_pairwise_masks(
        y, sid, [(p, keys.mask_key(k, desc.qid, hq)) for p, k in pairs.items()]
    )
    return desc, y


def test_forged_or_substituted_epoch_keys_are_refused_all_or_nothing() -> None:
    fed = _fed("epochs/forged")
    sid = "clinic-000"
    session = fed.new_session(sid, random_bytes=_zeros)
    own = fed.epoch_stores[sid].keypair(EPOCH)
    genuine = fed.epoch_stores["clinic-001"].public(EPOCH)
    mallory = EpochKeyStore(FED_ID, "clinic-002", identity_for("mallory")).open_epoch(EPOCH)
    replacement = EpochKeyStore(FED_ID, "clinic-001", fed.identities["clinic-001"])
    newer = replacement.open_epoch(EPOCH)  # clinic-001 restarted and published a new key
    assert genuine != newer
    with pytest.raises(
        ProtocolError, match="key of silo clinic-002 carries a signature that does not verify"
    ):
        session.add_epoch_keys([newer, mallory])
    own_swap = EpochKeyStore(FED_ID, sid, fed.identities[sid]).open_epoch(EPOCH)
    with pytest.raises(ProtocolError, match="not the one this silo published"):
        session.add_epoch_keys([own_swap])
    x = np.arange(8, dtype=np.int64)
    # Nothing from the refused batches was taken: the masks use the published keys.
    pairs = {p: fed.pair_key(sid, p) for p in fed.ids if p != sid}
    desc, expected = _expected_y(fed, sid, "epochs/forged/1", x, pairs)
    assert np.array_equal(vector_from_bytes(session.upload(desc, x).y, 8), expected)
    # A genuine newer key of clinic-001 replaces its old one.
    session.add_epoch_keys([newer])
    pairs["clinic-001"] = keys.pair_key(
        own.private_bytes, newer.x25519_public, FED_ID, EPOCH, sid, "clinic-001",
        own.public_bytes, newer.x25519_public,
    )  # fmt: skip
    desc, expected = _expected_y(fed, sid, "epochs/forged/2", x, pairs)
    assert np.array_equal(vector_from_bytes(session.upload(desc, x).y, 8), expected)
    identity_only = make_federation(3, label="epochs/forged/v0", signed=True)
    with pytest.raises(ProtocolError, match="takes no epoch keys"):
        identity_only.sessions["clinic-000"].add_epoch_keys([genuine])


def test_a_store_of_another_silo_or_signer_is_refused() -> None:
    fed = _fed("epochs/wrong-store")
    with pytest.raises(ProtocolError, match="another silo or federation"):
        fed.new_session("clinic-000", epoch_keys=fed.epoch_stores["clinic-001"])
    foreign = EpochKeyStore(FED_ID, "clinic-000", identity_for("someone"))
    with pytest.raises(ProtocolError, match="signed by a key that roster version 1 does not list"):
        fed.new_session("clinic-000", epoch_keys=foreign)


def test_a_re_enrolled_peer_loses_its_old_epoch_key() -> None:
    fed = _fed("epochs/re-enrol")
    assert fed.authority is not None
    new_identity = identity_for("epochs/re-enrol/clinic-002/v2")
    entries = tuple(
        dataclasses.replace(e, ed25519_public=new_identity.public_bytes)
        if e.silo_id == "clinic-002"
        else e
        for e in fed.roster.entries
    )
    v2 = fed.authority.sign(dataclasses.replace(fed.roster, version=2, entries=entries))
    session = fed.sessions["clinic-000"]
    session.update_roster(v2, EPOCH)
    desc = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("epochs/re-enrol"),
                           roster_version=2)  # fmt: skip
    with pytest.raises(ProtocolError, match="no verified epoch 7 key for peer clinic-002"):
        session.upload(desc, np.zeros(4, dtype=np.int64))
