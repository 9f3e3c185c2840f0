"""SECAGG.md section 11 item 4: a malicious coordinator with c = t - 1 corrupt silos.

Each attack is played by :class:`MaliciousCoordinator` against a signed federation on epoch
keys (unless the attack needs otherwise) and ends with the proof that nothing the honest silos
released lets the coordinator unmask a single honest silo's vector.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg import aead, keys, prg, shamir
from fedsql.secagg.coordinator_session import CoordinatorSession
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.epochs import EpochKeyStore
from fedsql.secagg.identity import sign_message
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.masks import apply_pairwise_masks, seed_commitment
from fedsql.secagg.messages import Descriptor, vector_from_bytes
from fedsql.secagg.qid_log import QidLog
from fedsql.secagg.roster import Authority, Roster
from fedsql.secagg.silo_session import RoundState

from .adversary import MaliciousCoordinator
from .harness import (
    EPOCH,
    FED_ID,
    Federation,
    identity_for,
    keypair_for,
    make_descriptor,
    make_federation,
    qid_for,
    wrapping_sum,
)

N = 7  # with c_max = 3: t = 4, n_min = 5, so S needs >= 5 and the coordinator owns t - 1 silos
C_MAX = 3
CORRUPT = ("clinic-004", "clinic-005", "clinic-006")
HONEST = ("clinic-000", "clinic-001", "clinic-002", "clinic-003")
D = 4096
BOUND = 2**40
SPEC = CoordinateSpec(bound=float(BOUND), frac_bits=0)


def _setup(
    label: str, *, d: int = D, epoch_keys: bool = True
) -> tuple[Federation, MaliciousCoordinator, Descriptor, dict[str, NDArray[np.int64]]]:
    fed = make_federation(N, c_max=C_MAX, label=label, signed=True, epoch_keys=epoch_keys)
    desc = make_descriptor(fed, cells=d, specs=(SPEC,), qid=qid_for(label))
    assert (desc.threshold, desc.survivors_needed) == (C_MAX + 1, 5)
    xs = {sid: np.full(d, BOUND, dtype=np.int64) for sid in fed.ids}
    return fed, MaliciousCoordinator(fed, CORRUPT), desc, xs


def _others(*excluded: str) -> list[str]:
    return [sid for sid in HONEST + CORRUPT if sid not in excluded]


def test_the_double_unmasks_what_an_honest_run_releases() -> None:
    """Sanity check of the bookkeeping: an honest run gives exactly the honest total."""
    fed, adv, desc, xs = _setup("attack/control", d=256)
    adv.send_query(desc, xs)
    adv.claim(desc.qid, HONEST, fed.ids, [])
    assert adv.unmaskable_honest_groups(desc.qid) == {frozenset(HONEST)}
    total = wrapping_sum(adv.residual(desc.qid, sid) for sid in HONEST)
    assert np.array_equal(total, wrapping_sum(xs[s].view(np.uint64) for s in HONEST))


# -- (i) a dropout claimed after the upload ---------------------------------------------------


def test_i_claimed_dropout_after_upload_never_yields_the_victims_vector() -> None:
    fed, adv, desc, xs = _setup("attack/i", d=100_000)
    victim = "clinic-000"
    survivors = _others(victim)
    adv.send_query(desc, xs)
    responses = adv.claim(desc.qid, HONEST[1:], survivors, [victim])
    # The victim is also shown a view in which it survived (a split view on top).
    responses[victim] = adv.send_unmask(victim, adv.request(desc.qid, victim, fed.ids, []))
    for sid, response in responses.items():
        assert response is not None
        assert victim not in {owner for owner, _ in response.seed_shares}, sid
    assert len(adv.shares_of(desc.qid, victim)) == desc.threshold - 1  # the colluders' only
    assert adv.seed_of(desc.qid, victim) is None
    assert set(adv.mask_keys_of(desc.qid, victim)) == set(fed.ids) - {victim}  # all the rest
    # The coordinator learns the total over S (by design) and nothing finer.
    assert adv.unmaskable_honest_groups(desc.qid) == {frozenset(HONEST[1:])}
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


# -- (ii) split views -------------------------------------------------------------------------


@pytest.mark.parametrize("told_dropped", range(8))
def test_ii_split_views_of_one_silo_never_give_its_seed_and_all_its_keys(told_dropped: int) -> None:
    target = "clinic-000"
    peers = HONEST[1:]
    dropped_view = {p for i, p in enumerate(peers) if told_dropped >> i & 1}
    fed, adv, desc, xs = _setup(f"attack/ii/{told_dropped}")
    adv.send_query(desc, xs)
    for v in peers:
        if v in dropped_view:
            adv.claim(desc.qid, [v], _others(target), [target])
        else:
            adv.claim(desc.qid, [v], fed.ids, [])
    adv.claim(desc.qid, [target], fed.ids, [])
    shares = adv.shares_of(desc.qid, target)
    keys_known = set(adv.mask_keys_of(desc.qid, target))
    honest_peers = set(peers)
    # SECAGG.md 11.4(ii): fewer than t shares of b_u, or at least one honest mk_uv missing.
    assert len(shares) < desc.threshold or not honest_peers <= keys_known
    assert (len(shares) >= desc.threshold) == (dropped_view != honest_peers)
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


@pytest.mark.parametrize("trial", range(12))
def test_ii_random_split_views_never_unmask_a_single_honest_silo(trial: int) -> None:
    rng = random.Random(trial)
    fed, adv, desc, xs = _setup(f"attack/ii/random/{trial}", d=64)
    adv.send_query(desc, xs)
    for v in HONEST:
        others = [s for s in fed.ids if s != v]
        dropped = rng.sample(others, rng.randint(0, N - desc.survivors_needed))
        adv.claim(desc.qid, [v], [s for s in fed.ids if s not in dropped], dropped)
    for u in HONEST:
        enough_shares = len(adv.shares_of(desc.qid, u)) >= desc.threshold
        all_keys = set(HONEST) - {u} <= set(adv.mask_keys_of(desc.qid, u))
        assert not (enough_shares and all_keys), u
    adv.assert_no_honest_vector_unmasks(desc.qid, xs, uniformity=False)


def test_ii_split_views_can_reveal_a_sum_of_two_honest_silos() -> None:
    """The limit of FSA-1 without a consistency round (SECAGG.md section 12): by telling two
    honest silos that both survived and the other honest silos that both dropped, the
    coordinator unmasks their two-silo sum, though never either vector alone. Only m = 2
    noise shares then protect that sum, fewer than the m_min the noise was sized for."""
    fed, adv, desc, xs = _setup("attack/ii/pair", d=256)
    xs = {sid: np.arange(256, dtype=np.int64) * (i + 1) for i, sid in enumerate(fed.ids)}
    pair = ("clinic-000", "clinic-001")
    adv.send_query(desc, xs)
    adv.claim(desc.qid, pair, fed.ids, [])
    adv.claim(desc.qid, HONEST[2:], _others(*pair), pair)
    assert frozenset(pair) in adv.unmaskable_honest_groups(desc.qid)
    total = wrapping_sum(adv.residual(desc.qid, sid) for sid in pair)
    assert np.array_equal(total.view(np.int64), xs[pair[0]] + xs[pair[1]])
    adv.assert_no_honest_vector_unmasks(desc.qid, xs, uniformity=False)


# -- (iii) a repeated round 2 -----------------------------------------------------------------


def test_iii_a_second_unmask_request_is_refused_whatever_it_claims() -> None:
    fed, adv, desc, xs = _setup("attack/iii")
    victim = "clinic-000"
    adv.send_query(desc, xs)
    first = adv.claim(desc.qid, HONEST, fed.ids, [])  # everyone survived: all seeds released
    assert all(r is not None for r in first.values())
    second = adv.claim(desc.qid, HONEST[1:], _others(victim), [victim])  # now w "dropped"
    assert all(r is None for r in second.values())
    again = adv.claim(desc.qid, HONEST, fed.ids, [])  # the identical request, replayed
    assert all(r is None for r in again.values())
    assert all("already unmasked" in why for _, why in adv.refusals)
    assert adv.seed_of(desc.qid, victim) is not None  # b_w is out (by design: w survived)
    assert set(adv.mask_keys_of(desc.qid, victim)) == set(CORRUPT)  # but no honest mk_wv
    assert adv.unmaskable_honest_groups(desc.qid) == {frozenset(HONEST)}
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


def test_iii_a_refused_request_releases_nothing_and_a_valid_one_is_still_answered() -> None:
    fed, adv, desc, xs = _setup("attack/iii/refused-first")
    adv.send_query(desc, xs)
    bad = adv.request(desc.qid, "clinic-001", ["clinic-001", "clinic-002"], _others("clinic-001",
                      "clinic-002"))  # fmt: skip
    assert adv.send_unmask("clinic-001", bad) is None
    assert fed.sessions["clinic-001"].state(desc.qid) is RoundState.UPLOADED
    assert adv.claim(desc.qid, ["clinic-001"], fed.ids, [])["clinic-001"] is not None
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


# -- (iv) a replayed query id after a restart -------------------------------------------------


@pytest.mark.parametrize("durable", [True, False], ids=["qid-log", "memory-only"])
def test_iv_a_replayed_qid_after_a_restart(tmp_path: Path, durable: bool) -> None:
    """With the durable log the replay is refused everywhere. The memory-only control shows
    what the log prevents: the same script then recovers the victim's vector exactly."""
    # Identity X25519 keys: a restarted silo derives the same pairwise masks again.
    fed, adv, desc, xs = _setup(f"attack/iv/{durable}", epoch_keys=False, d=512)
    xs = {sid: np.arange(512, dtype=np.int64) * 3 + i for i, sid in enumerate(fed.ids)}
    victim = "clinic-000"
    logs = {sid: QidLog(tmp_path / f"{sid}.qids") if durable else None for sid in HONEST}
    for sid in HONEST:
        fed.sessions[sid] = fed.new_session(sid, claim_qid=logs[sid])
    adv.send_query(desc, xs)
    adv.claim(desc.qid, HONEST[1:], _others(victim), [victim])  # get every mk with the victim
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)
    # Every honest silo restarts: new process, new randomness, same keys and files.
    for sid in HONEST:
        log = logs[sid]
        if log is not None:
            log.close()
        fed.sessions[sid] = fed.new_session(
            sid,
            claim_qid=QidLog(tmp_path / f"{sid}.qids") if durable else None,
            random_label=f"attack/iv/{sid}/after-restart",
        )
    second_life = MaliciousCoordinator(fed, CORRUPT)
    replayed = second_life.send_query(desc, xs, to=HONEST)
    if durable:
        assert replayed == {}
        assert len(second_life.refusals) == len(HONEST)
        assert all("replayed" in why for _, why in second_life.refusals)
        assert all(fed.sessions[s].state(desc.qid) is None for s in HONEST)
        adv.assert_no_honest_vector_unmasks(desc.qid, xs)
        return
    # Without it: the silos upload again under the same qid, with fresh seeds but the same
    # pairwise masks, and answer an all-survived request with shares of the fresh seeds.
    assert set(replayed) == set(HONEST)
    second_life.claim(desc.qid, HONEST, fed.ids, [])
    fresh_seed = second_life.seed_of(desc.qid, victim)
    assert fresh_seed is not None
    y = vector_from_bytes(replayed[victim].y, 512)
    prg.add_stream(y, fresh_seed, -1)
    apply_pairwise_masks(y, victim, adv.mask_keys_of(desc.qid, victim).items(), negate=True)
    assert np.array_equal(y.view(np.int64), xs[victim])  # the attack the log stops


# -- (v) inconsistent survivor and dropped sets ------------------------------------------------


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
        (["clinic-000", "clinic-001", "clinic-002", "clinic-003", "clinic-003", "clinic-004"],
         ["clinic-005", "clinic-006"], "twice"),
    ],
)  # fmt: skip
def test_v_inconsistent_survivor_sets_are_refused_and_release_nothing(
    survivors: list[str], dropped: list[str], message: str
) -> None:
    fed, adv, desc, xs = _setup("attack/v", d=256)
    adv.send_query(desc, xs)
    sid = "clinic-003"
    listed = [u for u in dict.fromkeys(survivors) if (desc.qid, u) in adv.uploads and u != sid]
    forwarded = [(u, dict(adv.uploads[(desc.qid, u)].shares)[sid]) for u in listed]
    req = dataclasses.replace(
        adv.request(desc.qid, sid, [], [], forwarded=forwarded),
        survivors=tuple(survivors),
        dropped=tuple(dropped),
    )
    assert fed.coordinator_key is not None
    req = sign_message(req, fed.coordinator_key)  # the coordinator really signed this nonsense
    with pytest.raises(ProtocolError, match=message):
        fed.sessions[sid].unmask(req)
    assert fed.sessions[sid].state(desc.qid) is RoundState.UPLOADED
    assert adv.responses == {}
    assert adv.unmaskable_honest_groups(desc.qid) == set()
    adv.assert_no_honest_vector_unmasks(desc.qid, xs, uniformity=False)


def test_v_a_request_for_another_descriptor_or_an_unknown_query_is_refused() -> None:
    fed, adv, desc, xs = _setup("attack/v/digest", d=64)
    adv.send_query(desc, xs)
    good = adv.request(desc.qid, "clinic-003", fed.ids, [])
    assert fed.coordinator_key is not None
    for bad, message in (
        (dataclasses.replace(good, hq=bytes(32)), "different descriptor digest"),
        (dataclasses.replace(good, qid=bytes(16)), "no upload"),
    ):
        with pytest.raises(ProtocolError, match=message):
            fed.sessions["clinic-003"].unmask(sign_message(bad, fed.coordinator_key))
    assert fed.sessions["clinic-003"].state(desc.qid) is RoundState.UPLOADED


# -- (vi) forged and cross-query ciphertexts ---------------------------------------------------


def test_vi_forged_reordered_and_cross_query_ciphertexts_fail_and_are_omitted() -> None:
    fed, adv, desc, xs = _setup("attack/vi", d=256)
    other = make_descriptor(fed, cells=256, specs=(SPEC,), qid=qid_for("attack/vi/other"))
    adv.send_query(desc, xs)
    adv.send_query(other, xs)
    receiver = "clinic-003"
    genuine = dict(adv.request(desc.qid, receiver, fed.ids, []).forwarded)
    fwd = dict(genuine)
    flipped = bytearray(fwd["clinic-000"])
    flipped[10] ^= 0x80
    fwd["clinic-000"] = bytes(flipped)  # forged
    fwd["clinic-001"], fwd["clinic-002"] = fwd["clinic-002"], fwd["clinic-001"]  # re-ordered
    fwd["clinic-004"] = dict(adv.uploads[(other.qid, "clinic-004")].shares)[receiver]  # cross-query
    fwd["clinic-005"] = dict(adv.uploads[(desc.qid, "clinic-005")].shares)[
        "clinic-002"
    ]  # misaddressed
    fwd["clinic-006"] = genuine["clinic-006"][:-1]  # truncated
    response = adv.send_unmask(receiver, adv.request(desc.qid, receiver, fed.ids, [],
                                                     forwarded=sorted(fwd.items())))  # fmt: skip
    assert response is not None
    assert {owner for owner, _ in response.seed_shares} == set()
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


def test_vi_a_dropped_silos_ciphertext_is_never_decrypted() -> None:
    fed, adv, desc, xs = _setup("attack/vi/dropped", d=256)
    victim = "clinic-000"
    adv.send_query(desc, xs)
    receiver = "clinic-001"
    forwarded = [(u, dict(adv.uploads[(desc.qid, u)].shares)[receiver])
                 for u in fed.ids if u != receiver]  # fmt: skip
    req = adv.request(desc.qid, receiver, _others(victim), [victim], forwarded=forwarded)
    response = adv.send_unmask(receiver, req)
    assert response is not None
    assert victim not in {owner for owner, _ in response.seed_shares}
    assert {peer for peer, _ in response.mask_keys} == {victim}
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


# -- (vii) a substituted roster or epoch key ---------------------------------------------------


def _substituted(
    fed: Federation, victim: str, version: int
) -> tuple[Roster, dict[str, SiloKeyPair]]:
    """The roster with every peer's X25519 key replaced by one the coordinator holds."""
    mitm = {sid: keypair_for(f"mitm/{sid}") for sid in fed.ids if sid != victim}
    entries = tuple(
        dataclasses.replace(e, x25519_public=mitm[e.silo_id].public_bytes)
        if e.silo_id in mitm
        else e
        for e in fed.roster.entries
    )
    return dataclasses.replace(fed.roster, version=version, entries=entries), mitm


def _mitm_unmask(
    fed: Federation, desc: Descriptor, victim: str, y: bytes, shares: tuple[tuple[str, bytes], ...],
    commit: bytes, mitm: dict[str, SiloKeyPair],
) -> NDArray[np.uint64] | None:  # fmt: skip
    """What a coordinator holding every peer key recovers from one upload alone."""
    hq, victim_public = desc.digest(), fed.keypairs[victim].public_bytes
    pair = {
        peer: keys.pair_key(kp.private_bytes, victim_public, FED_ID, EPOCH, peer, victim,
                            kp.public_bytes, victim_public)
        for peer, kp in mitm.items()
    }  # fmt: skip
    held = {}
    for holder, ciphertext in shares:
        share = aead.decrypt_share(
            keys.share_key(pair[holder], desc.qid, hq, victim, holder),
            ciphertext,
            aead.share_aad(desc.qid, victim, holder, hq),
        )
        if share is not None:
            held[fed.index(holder)] = share
    if len(held) < desc.threshold:
        return None
    seed = shamir.reconstruct(dict(sorted(held.items())[: desc.threshold]))
    assert seed_commitment(desc.qid, victim, seed) == commit
    out = vector_from_bytes(y, desc.dimension)
    prg.add_stream(out, seed, -1)
    apply_pairwise_masks(
        out, victim, [(p, keys.mask_key(k, desc.qid, hq)) for p, k in pair.items()], negate=True
    )
    return out


def test_vii_a_substituted_roster_key_is_refused_and_would_have_unmasked_the_silo() -> None:
    victim = "clinic-000"
    x = np.arange(64, dtype=np.int64) + 12345
    # Control: an unsigned session takes the substituted roster, and one upload is enough.
    plain = make_federation(N, c_max=C_MAX, label="attack/vii/unsigned", epoch_keys=False)
    roster, mitm = _substituted(plain, victim, version=2)
    plain.sessions[victim].update_roster(roster, EPOCH)
    plain.roster = roster
    desc = make_descriptor(plain, cells=64, specs=(SPEC,), qid=qid_for("attack/vii/a"))
    up = plain.sessions[victim].upload(desc, x)
    recovered = _mitm_unmask(plain, desc, victim, up.y, up.shares, up.commit, mitm)
    assert recovered is not None and np.array_equal(recovered.view(np.int64), x)
    # A signed session refuses the same substitution, unsigned, kept or forged signature.
    fed = make_federation(N, c_max=C_MAX, label="attack/vii/signed", signed=True)
    swapped, _ = _substituted(fed, victim, version=2)
    rogue = Authority(identity_for("attack/vii/rogue-authority"))
    session = fed.sessions[victim]
    for bad, message in (
        (dataclasses.replace(swapped, signature=b""), "not signed"),
        (swapped, "altered or signed by someone else"),
        (rogue.sign(swapped), "altered or signed by someone else"),
    ):
        with pytest.raises(ProtocolError, match=message):
            session.update_roster(bad, EPOCH)
        assert session.roster == fed.roster
    # The coordinator cannot even make a descriptor naming the substituted roster acceptable.
    forged_desc = make_descriptor(fed, cells=64, specs=(SPEC,), qid=qid_for("attack/vii/b"),
                                  roster_version=2)  # fmt: skip
    with pytest.raises(ProtocolError, match="roster version 2 but version 1 is pinned"):
        session.upload(forged_desc, x)


def test_vii_a_substituted_epoch_key_is_refused() -> None:
    fed, adv, desc, xs = _setup("attack/vii/epoch", d=64)
    victim = "clinic-000"
    session = fed.sessions[victim]
    # The coordinator forwards, as clinic-001's epoch key, one it made and signed itself.
    forged = EpochKeyStore(FED_ID, "clinic-001", fed.coordinator_key or identity_for("x"))
    with pytest.raises(ProtocolError, match="key of silo clinic-001 carries a signature"):
        session.add_epoch_keys([forged.open_epoch(EPOCH)])
    # The victim masks with clinic-001's genuine epoch key, which the coordinator cannot use.
    adv.send_query(desc, xs)
    adv.claim(desc.qid, HONEST, fed.ids, [])
    assert adv.unmaskable_honest_groups(desc.qid) == {frozenset(HONEST)}
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)


# -- other ways to get more than the sum --------------------------------------------------------


def test_an_aborted_query_releases_nothing_afterwards() -> None:
    fed, adv, desc, xs = _setup("attack/abort", d=64)
    adv.send_query(desc, xs)
    honest_coordinator = CoordinatorSession(
        adv.descs[desc.qid], fed.roster, C_MAX, signer=fed.coordinator_key
    )
    notice = honest_coordinator.abort("too few uploads")
    for sid in HONEST:
        fed.sessions[sid].receive_abort(notice)
    responses = adv.claim(desc.qid, HONEST, _others("clinic-000"), ["clinic-000"])
    assert all(r is None for r in responses.values())
    assert all("aborted" in why for _, why in adv.refusals)
    assert adv.unmaskable_honest_groups(desc.qid) == set()


def test_descriptor_substitution_gives_the_coordinator_garbage() -> None:
    """Showing one silo a different (even validly signed) descriptor yields no usable sum."""
    fed, adv, desc, xs = _setup("attack/substitution", d=1000)
    odd = "clinic-002"
    twisted = dataclasses.replace(desc, sql="SELECT something else")
    adv.send_query(twisted, xs, to=[odd])
    adv.send_query(desc, xs, to=[s for s in fed.ids if s != odd])
    assert fed.coordinator_key is not None
    for sid in HONEST:  # each silo is asked about the descriptor it saw
        req = adv.request(desc.qid, sid, fed.ids, [])
        if sid == odd:
            req = sign_message(dataclasses.replace(req, hq=twisted.digest()), fed.coordinator_key)
        assert adv.send_unmask(sid, req) is not None
    total = wrapping_sum(vector_from_bytes(adv.uploads[(desc.qid, s)].y, 1000) for s in fed.ids)
    for owner in fed.ids:
        seed = adv.seed_of(desc.qid, owner)
        if seed is not None:
            prg.add_stream(total, seed, -1)
    assert adv.seed_of(desc.qid, odd) is None  # its shares were encrypted under another hq
    assert int((total == wrapping_sum(x.view(np.uint64) for x in xs.values())).sum()) == 0
    adv.assert_no_honest_vector_unmasks(desc.qid, xs)
    coordinator = CoordinatorSession(adv.descs[desc.qid], fed.roster, C_MAX,
                                     signer=fed.coordinator_key)  # fmt: skip
    with pytest.raises(ProtocolError, match="different descriptor"):
        coordinator.add_upload(adv.uploads[(desc.qid, odd)])
