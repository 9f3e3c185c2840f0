"""Builders for secure-aggregation tests: deterministic federations, descriptors, full runs."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from fedsql.catalog import SecAggParams
from fedsql.secagg import keys
from fedsql.secagg.coordinator_session import CoordinatorSession
from fedsql.secagg.encoding import CoordinateSpec, dimension
from fedsql.secagg.epochs import EpochKeyStore
from fedsql.secagg.identity import IdentityKey, sign_message
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.messages import (
    PROTOCOL_VERSION,
    Descriptor,
    MaskedUpload,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsql.secagg.roster import Authority, Roster, RosterEntry
from fedsql.secagg.silo_session import SiloSession

#: Stress and statistical tests use full sizes only when FEDSQL_SLOW=1.
SLOW = os.environ.get("FEDSQL_SLOW") == "1"

FED_ID = "fed-test"
EPOCH = 7
CONTRACT_HASH = hashlib.sha256(b"contract/fed-test").hexdigest()


def seeded_bytes(label: str) -> Callable[[int], bytes]:
    """A deterministic byte source (SHAKE-256 counter stream) standing in for os.urandom."""
    counter = 0

    def draw(n: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(f"{label}/{counter}".encode()).digest(n)

    return draw


def keypair_for(label: str) -> SiloKeyPair:
    """A fixed X25519 key pair derived from a label."""
    return SiloKeyPair.from_private_bytes(hashlib.sha256(label.encode()).digest())


def identity_for(label: str) -> IdentityKey:
    """A fixed Ed25519 identity key derived from a label."""
    return IdentityKey.from_private_bytes(hashlib.sha256(b"ed25519/" + label.encode()).digest())


def qid_for(label: str) -> bytes:
    """A fixed 16-byte query id derived from a label."""
    return hashlib.sha256(b"qid/" + label.encode()).digest()[:16]


@dataclass
class Federation:
    """A roster, key pairs and one SiloSession per silo.

    A *signed* federation has an enrolment authority, a coordinator key and an identity key
    per silo, and its sessions run in signed mode. With *epoch keys*, each silo masks with a
    per-epoch key from its own store, and every session holds every peer's signed epoch key.
    """

    ids: tuple[str, ...]
    keypairs: dict[str, SiloKeyPair]
    roster: Roster
    c_max: int
    label: str = "fed"
    identities: dict[str, IdentityKey] = field(default_factory=dict)
    authority: Authority | None = None
    coordinator_key: IdentityKey | None = None
    epoch_stores: dict[str, EpochKeyStore] = field(default_factory=dict)
    sessions: dict[str, SiloSession] = field(default_factory=dict)
    claimed: dict[str, set[bytes]] = field(default_factory=dict)

    @property
    def signed(self) -> bool:
        return self.authority is not None

    def index(self, silo_id: str) -> int:
        return self.roster.entry(silo_id).index

    def new_session(
        self,
        silo_id: str,
        *,
        claim_qid: Callable[[bytes], bool] | None = None,
        random_label: str | None = None,
        with_peer_keys: bool = True,
        **overrides: object,
    ) -> SiloSession:
        """A session for ``silo_id`` configured like the federation's (a restarted silo).

        With epoch keys it receives every silo's published key unless ``with_peer_keys`` is
        false.
        """
        options: dict[str, object] = {
            "c_max": self.c_max,
            "claim_qid": claim_qid,
            "random_bytes": seeded_bytes(random_label or f"{self.label}/{silo_id}/random"),
        }
        if self.signed:
            assert self.authority is not None
            options.update(
                identity=self.identities[silo_id],
                authority_public=self.authority.public_bytes,
                contract_hash=CONTRACT_HASH,
            )
        elif silo_id in self.identities:
            options["identity"] = self.identities[silo_id]
        if silo_id in self.epoch_stores:
            options["epoch_keys"] = self.epoch_stores[silo_id]
        options.update(overrides)
        session = SiloSession(
            silo_id,
            self.keypairs[silo_id],
            self.roster,
            EPOCH,
            **options,  # type: ignore[arg-type]
        )
        if silo_id in self.epoch_stores and with_peer_keys:
            session.add_epoch_keys(store.public(EPOCH) for store in self.epoch_stores.values())
        return session

    def sign(self, message: Descriptor) -> Descriptor:
        """The descriptor signed by the coordinator key (unchanged in an unsigned federation)."""
        if self.coordinator_key is None:
            return message
        return sign_message(message, self.coordinator_key)

    def coordinator(self, desc: Descriptor) -> CoordinatorSession:
        """An honest coordinator session for ``desc``."""
        return CoordinatorSession(desc, self.roster, self.c_max, signer=self.coordinator_key)

    def pair_key(self, a: str, b: str, epoch: int = EPOCH) -> bytes:
        """K_ab as silo ``a`` derives it (what a corrupt silo ``a`` hands the coordinator)."""
        if a in self.epoch_stores:
            own = self.epoch_stores[a].keypair(epoch)
            peer_public = self.epoch_stores[b].public(epoch).x25519_public
        else:
            own, peer_public = self.keypairs[a], self.roster.entry(b).x25519_public
        return keys.pair_key(
            own.private_bytes,
            peer_public,
            self.roster.fed_id,
            epoch,
            a,
            b,
            own.public_bytes,
            peer_public,
        )


def make_federation(
    ids: Iterable[str] | int,
    *,
    c_max: int = 1,
    label: str = "fed",
    deterministic: bool = True,
    signed: bool = False,
    epoch_keys: bool = False,
) -> Federation:
    """A federation of the given silo ids (or ``n`` ids ``clinic-000``...), with fixed keys."""
    if isinstance(ids, int):
        ids = [f"clinic-{i:03d}" for i in range(ids)]
    silo_ids = tuple(ids)
    keypairs = {sid: keypair_for(f"{label}/{sid}") for sid in silo_ids}
    identities = (
        {sid: identity_for(f"{label}/{sid}") for sid in silo_ids} if signed or epoch_keys else {}
    )
    entries = tuple(
        RosterEntry(
            silo_id=sid,
            index=i + 1,
            x25519_public=keypairs[sid].public_bytes,
            ed25519_public=identities[sid].public_bytes if signed else b"",
        )
        for i, sid in enumerate(silo_ids)
    )
    authority = Authority(identity_for(f"{label}/authority")) if signed else None
    coordinator_key = identity_for(f"{label}/coordinator") if signed else None
    roster = Roster(
        fed_id=FED_ID,
        version=1,
        entries=entries,
        contract_hash=CONTRACT_HASH if signed else "",
        coordinator_public=coordinator_key.public_bytes if coordinator_key else b"",
    )
    if authority is not None:
        roster = authority.sign(roster)
    fed = Federation(
        silo_ids,
        keypairs,
        roster,
        c_max,
        label=label,
        identities=identities,
        authority=authority,
        coordinator_key=coordinator_key,
    )
    if epoch_keys:
        for sid in silo_ids:
            store = EpochKeyStore(
                FED_ID, sid, identities[sid], random_bytes=seeded_bytes(f"{label}/{sid}/epoch")
            )
            store.open_epoch(EPOCH)
            fed.epoch_stores[sid] = store
    for sid in silo_ids:
        fed.sessions[sid] = fed.new_session(
            sid,
            random_bytes=seeded_bytes(f"{label}/{sid}/random") if deterministic else os.urandom,
        )
    return fed


def params_for(n: int, c_max: int) -> tuple[int, int]:
    """(threshold, n_min) for a cohort of n, from the catalog's defaults."""
    n_min = max(2, c_max + 2) if n <= 3 else max(3, c_max + 2)
    params = SecAggParams(n_min=n_min, c_max=c_max)
    return params.threshold_for(n), n_min


def make_descriptor(
    fed: Federation,
    *,
    specs: Sequence[CoordinateSpec] = (CoordinateSpec(bound=1000.0, frac_bits=0),),
    cells: int = 1,
    cohort: Sequence[str] | None = None,
    qid: bytes | None = None,
    threshold: int | None = None,
    n_min: int | None = None,
    sql: str = "SELECT COUNT(*) FROM patients",
    **overrides: object,
) -> Descriptor:
    """A descriptor over ``cohort`` (default: every silo) with the catalog's default t and n_min."""
    members = tuple(sorted(cohort if cohort is not None else fed.ids))
    t_default, n_min_default = params_for(len(members), fed.c_max)
    desc = Descriptor(
        version=PROTOCOL_VERSION,
        fed_id=fed.roster.fed_id,
        roster_version=fed.roster.version,
        epoch=EPOCH,
        qid=qid if qid is not None else qid_for(f"{sql}/{members}/{cells}"),
        cohort=members,
        threshold=threshold if threshold is not None else t_default,
        n_min=n_min if n_min is not None else n_min_default,
        dimension=dimension(specs, cells),
        encoding=tuple(specs),
        cells=cells,
        sigma_loc=tuple(0.0 for _ in specs),
        rho_charge="0",
        epsilon_charge="0",
        analyst="analyst@example.org",
        plan_hash="ab" * 32,
        sql=sql,
        params_json="[]",
        deadline_ms=1_700_000_000_000,
    )
    return fed.sign(with_fields(desc, overrides))


@dataclass
class Run:
    """What a full protocol run produced."""

    coordinator: CoordinatorSession
    uploads: dict[str, MaskedUpload]
    requests: dict[str, UnmaskRequest]
    responses: dict[str, UnmaskResponse]
    total: NDArray[np.uint64] | None


def run_protocol(
    fed: Federation,
    desc: Descriptor,
    inputs: Mapping[str, NDArray[np.int64]],
    *,
    uploaders: Iterable[str] | None = None,
    responders: Iterable[str] | None = None,
    finish: bool = True,
    extras: Mapping[str, NDArray[np.int64]] | None = None,
) -> Run:
    """Run FSA-1: ``uploaders`` (default: the cohort) upload, ``responders`` answer round 2.

    ``extras`` gives silos the extra noise part of their input (already added to it), kept
    until round 2.
    """
    coordinator = fed.coordinator(desc)
    desc = coordinator.desc
    up_ids = list(uploaders) if uploaders is not None else list(desc.cohort)
    held = extras or {}
    uploads = {sid: fed.sessions[sid].upload(desc, inputs[sid], held.get(sid)) for sid in up_ids}
    for up in uploads.values():
        coordinator.add_upload(up)
    requests = coordinator.close_round1()
    answering = set(responders) if responders is not None else set(requests)
    responses = {
        sid: fed.sessions[sid].unmask(req) for sid, req in requests.items() if sid in answering
    }
    for resp in responses.values():
        coordinator.add_response(resp)
    total = coordinator.finish() if finish else None
    return Run(coordinator, uploads, requests, responses, total)


def wrapping_sum(vectors: Iterable[NDArray[np.uint64]]) -> NDArray[np.uint64]:
    """The element-wise sum mod 2^64 of uint64 vectors (at least one)."""
    acc: NDArray[np.uint64] | None = None
    for v in vectors:
        acc = v.copy() if acc is None else acc + v
    assert acc is not None
    return acc


def plain_sum(vectors: Iterable[NDArray[np.int64]]) -> NDArray[np.uint64]:
    """The sum mod 2^64 of int64 vectors, as uint64 (the value FSA-1 must reproduce)."""
    return wrapping_sum(v.astype(np.int64).view(np.uint64) for v in vectors)


def with_fields(desc: Descriptor, changes: Mapping[str, object]) -> Descriptor:
    """``desc`` with some fields replaced (the descriptor validates itself again)."""
    return replace(desc, **changes)  # type: ignore[arg-type]


def chi2_sf(stat: float, dof: int) -> float:
    """Survival function of the chi-square distribution (regularised upper incomplete gamma)."""
    a, x = dof / 2.0, stat / 2.0
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # series for P(a, x)
        term = total = 1.0 / a
        k = a
        while abs(term) > 1e-16 * abs(total):
            k += 1
            term *= x / k
            total += term
        return max(0.0, 1.0 - math.exp(log_front) * total)
    # Lentz continued fraction for Q(a, x)
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_front) * h


def byte_histogram_pvalue(values: NDArray[np.uint64], shift: int) -> float:
    """Chi-square p-value that the byte ``(v >> shift) & 0xFF`` is uniform over 256 bins."""
    counts = np.bincount(
        ((values >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64), minlength=256
    )
    expected = values.size / 256
    stat = float(((counts - expected) ** 2 / expected).sum())
    return chi2_sf(stat, 255)


def two_sample_pvalue(a: NDArray[np.uint64], b: NDArray[np.uint64], shift: int) -> float:
    """Chi-square homogeneity p-value of the byte at ``shift`` between two samples."""
    ca = np.bincount(((a >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64), minlength=256)
    cb = np.bincount(((b >> np.uint64(shift)) & np.uint64(0xFF)).astype(np.int64), minlength=256)
    table = np.vstack([ca, cb]).astype(np.float64)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    mask = expected > 0
    stat = float((((table - expected) ** 2)[mask] / expected[mask]).sum())
    return chi2_sf(stat, 255)
