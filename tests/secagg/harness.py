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
from fedsql.secagg.coordinator_session import CoordinatorSession
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.messages import (
    PROTOCOL_VERSION,
    Descriptor,
    MaskedUpload,
    Roster,
    RosterEntry,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsql.secagg.silo_session import SiloSession

#: Stress and statistical tests use full sizes only when FEDSQL_SLOW=1.
SLOW = os.environ.get("FEDSQL_SLOW") == "1"

FED_ID = "fed-test"
EPOCH = 7


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


def qid_for(label: str) -> bytes:
    """A fixed 16-byte query id derived from a label."""
    return hashlib.sha256(b"qid/" + label.encode()).digest()[:16]


@dataclass
class Federation:
    """A roster, key pairs and one SiloSession per silo."""

    ids: tuple[str, ...]
    keypairs: dict[str, SiloKeyPair]
    roster: Roster
    c_max: int
    sessions: dict[str, SiloSession] = field(default_factory=dict)
    claimed: dict[str, set[bytes]] = field(default_factory=dict)

    def index(self, silo_id: str) -> int:
        return self.roster.entry(silo_id).index


def make_federation(
    ids: Iterable[str] | int,
    *,
    c_max: int = 1,
    label: str = "fed",
    deterministic: bool = True,
) -> Federation:
    """A federation of the given silo ids (or ``n`` ids ``clinic-000``...), with fixed keys."""
    if isinstance(ids, int):
        ids = [f"clinic-{i:03d}" for i in range(ids)]
    silo_ids = tuple(ids)
    keypairs = {sid: keypair_for(f"{label}/{sid}") for sid in silo_ids}
    entries = tuple(
        RosterEntry(silo_id=sid, index=i + 1, x25519_public=keypairs[sid].public_bytes)
        for i, sid in enumerate(silo_ids)
    )
    roster = Roster(fed_id=FED_ID, version=1, entries=entries)
    fed = Federation(silo_ids, keypairs, roster, c_max)
    for sid in silo_ids:
        fed.sessions[sid] = SiloSession(
            sid,
            keypairs[sid],
            roster,
            EPOCH,
            c_max=c_max,
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
        dimension=cells * len(specs),
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
    return with_fields(desc, overrides)


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
) -> Run:
    """Run FSA-1: ``uploaders`` (default: the cohort) upload, ``responders`` answer round 2."""
    coordinator = CoordinatorSession(desc, fed.roster, fed.c_max)
    up_ids = list(uploaders) if uploaders is not None else list(desc.cohort)
    uploads = {sid: fed.sessions[sid].upload(desc, inputs[sid]) for sid in up_ids}
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
