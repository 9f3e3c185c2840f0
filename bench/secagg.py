"""Secure aggregation (FSA-1) cost per silo and at the hub, split by phase, over n and d.

Each grid point builds a signed federation of n silos on epoch keys and runs one real query
through the silo and coordinator sessions (every silo uploads and answers round 2). The
per-silo split repeats, on one silo, the steps ``SiloSession.upload`` takes, with the same
library functions:

- keys:      per-query HKDF mask and share keys from the cached epoch pair keys
             ("epoch keys" shows the X25519 + HKDF pair keys, paid once per epoch);
- masks:     AES-CTR expansion of the self mask and the n - 1 pairwise masks;
- shamir:    splitting the self-mask seed and encrypting the n - 1 shares;
- sign:      the Ed25519 signature over SHA-256 of M1;
- noise:     the opendp discrete Gaussian noise share (depends on d only);
- transport: protobuf serialization and parsing of M1 (``fedsql.transport.codec``), and its
             size; no network time is included.

The hub: receive (verify, parse and sum the n uploads and n responses) and finish (the
measured ``CoordinatorSession.finish``), of which shamir (reconstructing the n self-mask seeds)
and expand (removing the n self masks) are timed alone; the first finish for a holder set
also computes its Lagrange coefficients (cached afterwards). "upload()" and "unmask()" are the
measured end-to-end session calls of one silo.

    python bench/secagg.py            # n in {4, 10, 50, 100}, d in {100, 10,000, 100,000}
    python bench/secagg.py --smoke    # a tiny grid, one repetition
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fedsql.catalog import SecAggParams
from fedsql.privacy import sample_discrete_gaussian
from fedsql.secagg import aead, keys, masks, prg, shamir
from fedsql.secagg.coordinator_session import CoordinatorSession
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.epochs import EpochKeyStore
from fedsql.secagg.identity import IdentityKey, sign_message
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.messages import PROTOCOL_VERSION, Descriptor, MaskedUpload
from fedsql.secagg.roster import Authority, Roster, RosterEntry
from fedsql.secagg.silo_session import SiloSession
from fedsql.transport import codec
from fedsql.transport import messages as wire

FED_ID = "bench"
EPOCH = 1
C_MAX = 1
SIGMA_LOC = 10.0
CONTRACT_HASH = hashlib.sha256(b"bench contract").hexdigest()

TARGET_N, TARGET_D = 10, 100_000
TARGET_SILO_MS = 100.0
TARGET_HUB_MS = 200.0
#: Flower 1.42 SecAgg+ at n = 10, d = 100,000, as quoted for comparison (not measured here).
FLOWER_COMPUTE_S = 0.6
FLOWER_STAGES = "4 stages (setup, share keys, collect masked vectors, unmask)"


def median_ms(fn: Callable[[], object], reps: int) -> float:
    """Median wall time of ``reps`` calls, in milliseconds."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


@dataclass
class Federation:
    """A signed federation on epoch keys, with one session per silo."""

    ids: list[str]
    roster: Roster
    coordinator_key: IdentityKey
    identities: dict[str, IdentityKey]
    stores: dict[str, EpochKeyStore]
    sessions: dict[str, SiloSession]


def build_federation(n: int) -> Federation:
    """n silos with identity keys, an authority-signed roster and published epoch keys."""
    ids = [f"silo-{i:03d}" for i in range(n)]
    x25519 = {sid: SiloKeyPair.generate() for sid in ids}
    identities = {sid: IdentityKey.generate() for sid in ids}
    coordinator_key = IdentityKey.generate()
    authority = Authority.generate()
    roster = authority.sign(
        Roster(
            FED_ID,
            1,
            tuple(
                RosterEntry(sid, i + 1, x25519[sid].public_bytes, identities[sid].public_bytes)
                for i, sid in enumerate(ids)
            ),
            contract_hash=CONTRACT_HASH,
            coordinator_public=coordinator_key.public_bytes,
        )
    )
    stores = {sid: EpochKeyStore(FED_ID, sid, identities[sid]) for sid in ids}
    published = [store.open_epoch(EPOCH) for store in stores.values()]
    sessions = {}
    for sid in ids:
        session = SiloSession(
            sid,
            x25519[sid],
            roster,
            EPOCH,
            c_max=C_MAX,
            identity=identities[sid],
            authority_public=authority.public_bytes,
            contract_hash=CONTRACT_HASH,
            epoch_keys=stores[sid],
        )
        session.add_epoch_keys(published)
        sessions[sid] = session
    return Federation(ids, roster, coordinator_key, identities, stores, sessions)


def descriptor(fed: Federation, d: int) -> Descriptor:
    """A signed descriptor of one measure over d cells for the whole federation."""
    n = len(fed.ids)
    params = SecAggParams(n_min=3 if n > 2 else 2, c_max=C_MAX)
    spec = CoordinateSpec(bound=1e6, frac_bits=0, sigma_total=SIGMA_LOC * n**0.5)
    desc = Descriptor(
        version=PROTOCOL_VERSION,
        fed_id=FED_ID,
        roster_version=fed.roster.version,
        epoch=EPOCH,
        qid=os.urandom(16),
        cohort=tuple(fed.ids),
        threshold=params.threshold_for(n),
        n_min=params.n_min,
        dimension=d,
        encoding=(spec,),
        cells=d,
        sigma_loc=(SIGMA_LOC,),
        rho_charge="0.5",
        epsilon_charge="1",
        analyst="bench",
        plan_hash="00" * 32,
        sql="SELECT SUM(x) FROM t GROUP BY g",
        params_json="[]",
        deadline_ms=0,
    )
    return sign_message(desc, fed.coordinator_key)


def to_wire(up: MaskedUpload) -> wire.MaskedUpload:
    """The transport form of M1."""
    return wire.MaskedUpload(up.qid, up.silo_id, up.hq, up.y, up.commit, up.shares, up.signature)


@dataclass
class Row:
    """One grid point's figures (milliseconds unless named otherwise)."""

    n: int
    d: int
    epoch_keys: float
    keys: float
    masks: float
    shamir: float
    sign: float
    noise: float
    transport: float
    m1_bytes: int
    upload_call: float
    unmask_call: float
    hub_receive: float
    hub_shamir: float
    hub_expand: float
    hub_finish: float

    @property
    def silo_total(self) -> float:
        """Per-silo crypto and transport time for one query, without noise sampling."""
        return self.keys + self.masks + self.shamir + self.sign + self.transport

    @property
    def hub_total(self) -> float:
        """The hub's time for one query."""
        return self.hub_receive + self.hub_finish


def measure(n: int, d: int, reps: int, noise_ms: dict[int, float]) -> Row:
    """Run one query for real and time its phases."""
    fed = build_federation(n)
    desc = descriptor(fed, d)
    rng = np.random.default_rng(n * d)
    xs = {sid: rng.integers(-(10**6), 10**6, size=d, dtype=np.int64) for sid in fed.ids}

    # The real run: every silo uploads, the hub sums, every survivor answers round 2.
    coordinator = CoordinatorSession(desc, fed.roster, C_MAX, signer=fed.coordinator_key)
    uploads, upload_ms = {}, []
    for sid in fed.ids:
        t0 = time.perf_counter()
        uploads[sid] = fed.sessions[sid].upload(desc, xs[sid])
        upload_ms.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    for up in uploads.values():
        coordinator.add_upload(up)
    requests = coordinator.close_round1()
    receive = time.perf_counter() - t0
    responses, unmask_ms = {}, []
    for sid, req in requests.items():
        t0 = time.perf_counter()
        responses[sid] = fed.sessions[sid].unmask(req)
        unmask_ms.append((time.perf_counter() - t0) * 1e3)
    t0 = time.perf_counter()
    for resp in responses.values():
        coordinator.add_response(resp)
    receive += time.perf_counter() - t0
    t0 = time.perf_counter()
    total = coordinator.finish()
    finish_ms = (time.perf_counter() - t0) * 1e3
    assert np.array_equal(total.view(np.int64), np.sum(list(xs.values()), axis=0))

    # The hub's Shamir share of finish(): the same reconstructions, timed alone.
    index = {sid: fed.roster.entry(sid).index for sid in fed.ids}
    held = {
        owner: {index[h]: s for h, r in responses.items() for o, s in r.seed_shares if o == owner}
        for owner in fed.ids
    }
    t = desc.threshold
    hub_shamir = median_ms(
        lambda: [shamir.reconstruct(dict(sorted(h.items())[:t])) for h in held.values()],
        reps,
    )
    seeds = [shamir.reconstruct(dict(sorted(h.items())[:t])) for h in held.values()]
    acc = total.copy()

    def expand() -> None:
        for seed in seeds:
            prg.add_stream(acc, seed, -1)

    hub_expand = median_ms(expand, reps)

    # One silo's phases, step by step as SiloSession.upload takes them.
    sid = fed.ids[0]
    peers = fed.ids[1:]
    own = fed.stores[sid].keypair(EPOCH)
    peer_pub = {p: fed.stores[p].public(EPOCH).x25519_public for p in peers}
    hq, qid = desc.digest(), desc.qid

    def pair_keys() -> dict[str, bytes]:
        return {
            p: keys.pair_key(own.private_bytes, peer_pub[p], FED_ID, EPOCH, sid, p,
                             own.public_bytes, peer_pub[p])
            for p in peers
        }  # fmt: skip

    pair = pair_keys()
    epoch_keys_ms = median_ms(pair_keys, reps)

    def query_keys() -> tuple[list[tuple[str, bytes]], list[bytes]]:
        mk = [(p, keys.mask_key(pair[p], qid, hq)) for p in peers]
        ek = [keys.share_key(pair[p], qid, hq, sid, p) for p in peers]
        return mk, ek

    mk, ek = query_keys()
    seed = os.urandom(16)

    def mask() -> None:
        y = xs[sid].view(np.uint64).copy()
        prg.add_stream(y, seed, +1)
        masks.apply_pairwise_masks(y, sid, mk)

    holders = [index[p] for p in peers]

    def share() -> None:
        shares = shamir.split(seed, t, holders)
        for p, key in zip(peers, ek, strict=True):
            aead.encrypt_share(key, shares[index[p]], aead.share_aad(qid, sid, p, hq))

    upload = uploads[sid]
    message = to_wire(upload)
    data = codec.to_bytes(message)

    def transport() -> None:
        codec.from_bytes(wire.MaskedUpload, codec.to_bytes(message))

    if d not in noise_ms:
        noise_ms[d] = median_ms(lambda: sample_discrete_gaussian(SIGMA_LOC, d), 1)
    return Row(
        n=n,
        d=d,
        epoch_keys=epoch_keys_ms,
        keys=median_ms(query_keys, reps),
        masks=median_ms(mask, reps),
        shamir=median_ms(share, reps),
        sign=median_ms(lambda: sign_message(upload, fed.identities[sid]), reps),
        noise=noise_ms[d],
        transport=median_ms(transport, reps),
        m1_bytes=len(data),
        upload_call=statistics.median(upload_ms),
        unmask_call=statistics.median(unmask_ms),
        hub_receive=receive * 1e3,
        hub_shamir=hub_shamir,
        hub_expand=hub_expand,
        hub_finish=finish_ms,
    )


def print_table(rows: list[Row]) -> None:
    """The per-silo and hub tables."""
    print("per silo (ms; 'total' excludes noise; epoch keys are paid once per epoch)")
    print(
        f"{'n':>4} {'d':>7} {'epochkeys':>9} {'keys':>6} {'masks':>7} {'shamir':>7} "
        f"{'sign':>6} {'transport':>9} {'M1 KB':>8} {'total':>7} {'noise':>8} "
        f"{'upload()':>9} {'unmask()':>9}"
    )
    for r in rows:
        print(
            f"{r.n:>4} {r.d:>7} {r.epoch_keys:>9.2f} {r.keys:>6.2f} {r.masks:>7.2f} "
            f"{r.shamir:>7.2f} {r.sign:>6.2f} {r.transport:>9.2f} {r.m1_bytes / 1e3:>8.1f} "
            f"{r.silo_total:>7.2f} {r.noise:>8.1f} {r.upload_call:>9.2f} {r.unmask_call:>9.2f}"
        )
    print()
    print("hub (ms; receive = verify, parse and sum every M1 and M3; total = receive + finish)")
    print(
        f"{'n':>4} {'d':>7} {'receive':>8} {'shamir':>7} {'expand':>7} {'finish':>7} {'total':>7}"
    )
    for r in rows:
        print(
            f"{r.n:>4} {r.d:>7} {r.hub_receive:>8.2f} {r.hub_shamir:>7.2f} "
            f"{r.hub_expand:>7.2f} {r.hub_finish:>7.2f} {r.hub_total:>7.2f}"
        )


def print_targets(rows: list[Row]) -> None:
    """The targets at n = 10, d = 100,000 and the comparison with Flower's SecAgg+."""
    target = next((r for r in rows if (r.n, r.d) == (TARGET_N, TARGET_D)), None)
    print()
    if target is None:
        print(f"targets apply at n = {TARGET_N}, d = {TARGET_D:,}, which this grid does not run")
        return
    silo_ok = target.silo_total <= TARGET_SILO_MS
    hub_ok = target.hub_total <= TARGET_HUB_MS
    print(f"targets at n = {TARGET_N}, d = {TARGET_D:,}:")
    print(
        f"  per silo without noise {target.silo_total:7.1f} ms  (target <= {TARGET_SILO_MS:g} ms)"
        f"  {'met' if silo_ok else 'MISSED'}"
    )
    print(
        f"  hub                    {target.hub_total:7.1f} ms  (target <= {TARGET_HUB_MS:g} ms)"
        f"  {'met' if hub_ok else 'MISSED'}"
    )
    print(f"  noise sampling         {target.noise:7.1f} ms  (opendp, outside the target)")
    ours = (target.silo_total + target.hub_total) / 1e3
    print()
    print("compared with Flower 1.42 SecAgg+ at the same size (figures quoted, not measured):")
    print(f"  {'':<18}{'computation/round':>18}  {'round trips':<}")
    print(f"  {'Flower SecAgg+':<18}{FLOWER_COMPUTE_S:>16.2f} s  several seconds; {FLOWER_STAGES}")
    print(
        f"  {'fedsql FSA-1':<18}{ours:>16.3f} s  2 exchanges (M0/M1, M2/M3); "
        "network time not measured here"
    )
    print(f"  ratio Flower / fedsql computation: {FLOWER_COMPUTE_S / ours:.1f}x")
    print("  (fedsql computation = one silo without noise + the hub; silos work in parallel)")


def main() -> None:
    """Run the grid and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny grid, for CI")
    parser.add_argument("--reps", type=int, default=5, help="repetitions at small sizes")
    args = parser.parse_args()
    if args.smoke:
        grid = [(4, 100), (10, 1_000)]
    else:
        grid = [(n, d) for n in (4, 10, 50, 100) for d in (100, 10_000, 100_000)]
    noise_ms: dict[int, float] = {}
    sample_discrete_gaussian(SIGMA_LOC, 8)  # build the opendp sampler once, outside the timings
    rows = []
    for n, d in grid:
        reps = 1 if args.smoke else max(1, min(args.reps, int(2e6 // (n * d)) or 1))
        rows.append(measure(n, d, reps, noise_ms))
        print(f"  measured n = {n}, d = {d:,}", flush=True)
    print()
    print_table(rows)
    print_targets(rows)


if __name__ == "__main__":
    main()
