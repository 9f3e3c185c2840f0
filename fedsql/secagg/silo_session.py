"""The silo half of FSA-1: validate a descriptor, mask and upload once, answer round 2 once.

Pure state machine, no I/O: the silo agent feeds it messages and sends what it returns. The
intended call order for one query is::

    hq = session.accept(desc)        # checks Q, claims the qid (refuses replays)
    ... approval, durable budget debit, run the plan, encode, add the noise share ...
    m1 = session.upload(desc, x)     # masked vector, commitment, encrypted seed shares
    m3 = session.unmask(m2)          # at most once per qid; never a share and a key for one peer
    session.abort(qid)               # on Abort: the qid stays consumed

``upload`` calls ``accept`` itself when the agent did not, but accepting first means a replayed
qid is refused before any budget is spent. Replay protection across restarts comes from the
optional ``claim_qid`` hook, which the agent backs with its durable store.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import DataError, ProtocolError
from fedsql.secagg import aead, keys, masks, prg, shamir
from fedsql.secagg.encoding import OVERFLOW_SIGMAS, check_plan
from fedsql.secagg.messages import (
    PROTOCOL_VERSION,
    Descriptor,
    MaskedUpload,
    Roster,
    UnmaskRequest,
    UnmaskResponse,
    vector_to_bytes,
)

__all__ = ["RoundState", "SiloSession", "check_descriptor"]


class RoundState(enum.Enum):
    """Where one query stands at a silo."""

    ACCEPTED = "accepted"
    """The descriptor passed every check and its qid is claimed; nothing has been sent."""
    UPLOADING = "uploading"
    """The masked upload is being computed."""
    UPLOADED = "uploaded"
    """M1 was produced; the silo waits for the unmask request."""
    ANSWERED = "answered"
    """M3 was produced; no further request for this qid is answered."""
    CLOSED = "closed"
    """Aborted or refused after the qid was claimed; the qid stays consumed."""


@dataclass
class _Round:
    state: RoundState
    desc: Descriptor | None
    hq: bytes
    pair_keys: dict[str, bytes] = field(default_factory=dict)


def check_descriptor(desc: Descriptor, roster: Roster, c_max: int) -> None:
    """The descriptor checks both parties make (SECAGG.md sections 2 and 7).

    Args:
        desc: The query descriptor.
        roster: The pinned roster.
        c_max: The largest number of silos assumed to collude with the coordinator.

    Raises:
        ProtocolError: If the version, federation, roster version, cohort, threshold or
            n_min is unacceptable; the message says which.
        QueryRejected: If an encoded measure could overflow 2^62 summed over the cohort.
    """
    if desc.version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"descriptor version {desc.version} is not supported (this silo speaks "
            f"version {PROTOCOL_VERSION})"
        )
    if desc.fed_id != roster.fed_id:
        raise ProtocolError(f"the descriptor is for federation {desc.fed_id}, not {roster.fed_id}")
    if desc.roster_version != roster.version:
        raise ProtocolError(
            f"the descriptor uses roster version {desc.roster_version} but version "
            f"{roster.version} is pinned; refresh the roster"
        )
    for sid in desc.cohort:
        if roster.get(sid) is None:
            raise ProtocolError(f"cohort member {sid} is not in roster version {roster.version}")
    n = len(desc.cohort)
    floor = max(2, c_max + 2)
    if desc.n_min < floor:
        raise ProtocolError(f"n_min = {desc.n_min} is below max(2, c_max + 2) = {floor}")
    if n < desc.n_min:
        raise ProtocolError(f"the cohort has {n} silos, fewer than n_min = {desc.n_min}")
    if not c_max + 1 <= desc.threshold <= n - 1:
        raise ProtocolError(
            f"threshold t = {desc.threshold} is outside [c_max + 1, n - 1] = [{c_max + 1}, {n - 1}]"
        )
    check_plan(desc.encoding, n)


def _check_own_entry(silo_id: str, keypair: keys.SiloKeyPair, roster: Roster) -> None:
    entry = roster.entry(silo_id)
    if entry.x25519_public != keypair.public_bytes:
        raise ProtocolError(
            f"roster version {roster.version} lists a different X25519 key for silo "
            f"{silo_id}; refusing to take part with a substituted key"
        )


class SiloSession:
    """One silo's FSA-1 state for one epoch: its keys, the roster and every query it has seen.

    Thread-safe: state transitions happen under a lock, the cryptography outside it.

    Args:
        silo_id: This silo's id.
        keypair: This silo's X25519 key pair for ``epoch``.
        roster: The pinned roster; it must list ``silo_id`` with ``keypair.public``.
        epoch: The current key epoch.
        c_max: The largest number of silos assumed to collude with the coordinator.
        claim_qid: Optional durable replay guard: called once per new qid, it must atomically
            record the qid and return True, or return False if the qid was recorded before
            (for instance by an earlier process). It runs under the session lock. Without it,
            replays are refused only within this session's memory.
        random_bytes: Source of the self-mask seeds and Shamir coefficients. Keep the default
            (``os.urandom``); override only to reproduce a run in tests.

    Raises:
        ProtocolError: If the silo or its key is not in the roster, or ``c_max`` is negative.
    """

    def __init__(
        self,
        silo_id: str,
        keypair: keys.SiloKeyPair,
        roster: Roster,
        epoch: int,
        *,
        c_max: int,
        claim_qid: Callable[[bytes], bool] | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        _check_own_entry(silo_id, keypair, roster)
        if c_max < 0:
            raise ProtocolError("c_max cannot be negative")
        self.silo_id = silo_id
        self.roster = roster
        self.epoch = epoch
        self.c_max = c_max
        self._keypair = keypair
        self._claim_qid = claim_qid
        self._random_bytes = random_bytes
        self._rounds: dict[bytes, _Round] = {}
        self._pair_keys: dict[tuple[str, int], bytes] = {}
        self._lock = threading.Lock()

    # -- keys -------------------------------------------------------------------------------

    def update_roster(self, roster: Roster, epoch: int) -> None:
        """Switch to a new roster or epoch (after a reconnect or an epoch change).

        Queries already uploaded keep the pair keys they were masked with, so they can still
        be unmasked; the record of seen query ids is kept.

        Args:
            roster: The new pinned roster; it must list this silo with its key.
            epoch: The current key epoch.

        Raises:
            ProtocolError: If the roster does not list this silo with this silo's key.
        """
        _check_own_entry(self.silo_id, self._keypair, roster)
        with self._lock:
            if roster != self.roster or epoch != self.epoch:
                self._pair_keys = {}  # a new dict: a derivation in flight fills the old one
            self.roster, self.epoch = roster, epoch

    def _pair_key(self, peer: str) -> bytes:
        """K_{self,peer} for the current epoch, from the cache or derived once."""
        with self._lock:
            roster, epoch, cache = self.roster, self.epoch, self._pair_keys
        cached = cache.get((peer, epoch))
        if cached is not None:
            return cached
        peer_public = roster.entry(peer).x25519_public
        key = keys.pair_key(
            self._keypair.private_bytes,
            peer_public,
            roster.fed_id,
            epoch,
            self.silo_id,
            peer,
            self._keypair.public_bytes,
            peer_public,
        )
        cache[(peer, epoch)] = key
        return key

    # -- round 1 ----------------------------------------------------------------------------

    def state(self, qid: bytes) -> RoundState | None:
        """The state of query ``qid`` at this silo, or None if it was never seen.

        Args:
            qid: The query id.

        Returns:
            The round state.
        """
        with self._lock:
            rnd = self._rounds.get(bytes(qid))
            return rnd.state if rnd else None

    def _validate(self, desc: Descriptor) -> bytes:
        """Every check of a descriptor against this silo's roster and epoch; returns hq."""
        with self._lock:
            roster, epoch = self.roster, self.epoch
        check_descriptor(desc, roster, self.c_max)
        if desc.epoch != epoch:
            raise ProtocolError(f"the descriptor is for epoch {desc.epoch}, not {epoch}")
        if self.silo_id not in desc.cohort:
            raise ProtocolError(f"silo {self.silo_id} is not in the query's cohort")
        return desc.digest()

    def accept(self, desc: Descriptor) -> bytes:
        """Check a descriptor and claim its qid, before any budget is spent.

        Args:
            desc: The query descriptor (M0).

        Returns:
            hq, the descriptor's digest.

        Raises:
            ProtocolError: If the descriptor is unacceptable (see :func:`check_descriptor`),
                the silo is not in the cohort, the epoch is not current, or the qid was seen
                before (a replay).
            QueryRejected: If an encoded measure could overflow 2^62 over the cohort.
        """
        hq = self._validate(desc)
        with self._lock:
            if desc.qid in self._rounds:
                raise ProtocolError("this query id was already used; refusing a replayed query")
            if self._claim_qid is not None and not self._claim_qid(desc.qid):
                raise ProtocolError("this query id was already used; refusing a replayed query")
            self._rounds[desc.qid] = _Round(RoundState.ACCEPTED, desc, hq)
        return hq

    def upload(self, desc: Descriptor, x: NDArray[np.int64]) -> MaskedUpload:
        """Mask this silo's encoded, noised vector and produce message M1.

        Args:
            desc: The query descriptor; the one passed to :meth:`accept`, if it was called.
            x: The encoded vector with the noise share added (int64, length ``dimension``).

        Returns:
            The masked upload.

        Raises:
            ProtocolError: If the descriptor is unacceptable or replayed, differs from the
                accepted one, or the query is past round 1.
            DataError: If ``x`` has the wrong type or length, or a coordinate lies outside its
                bound plus 8 noise standard deviations; the qid is then closed.
            QueryRejected: If an encoded measure could overflow 2^62 over the cohort.
        """
        qid = bytes(desc.qid)
        with self._lock:
            known = qid in self._rounds
        # When accepted earlier, validate again: the roster or epoch may have changed since.
        hq = self._validate(desc) if known else self.accept(desc)
        with self._lock:
            rnd = self._rounds[qid]
            if rnd.state is not RoundState.ACCEPTED:
                raise ProtocolError("this query id was already used; refusing a replayed query")
            if rnd.hq != hq:
                raise ProtocolError("the descriptor differs from the one accepted for this qid")
            rnd.state = RoundState.UPLOADING
        try:
            message = self._masked_upload(desc, rnd, x)
        except BaseException:
            with self._lock:
                rnd.state, rnd.desc, rnd.pair_keys = RoundState.CLOSED, None, {}
            raise
        with self._lock:
            rnd.state = RoundState.UPLOADED
        return message

    def _check_input(self, desc: Descriptor, x: NDArray[np.int64]) -> NDArray[np.uint64]:
        if not isinstance(x, np.ndarray) or x.dtype != np.int64 or x.ndim != 1:
            raise DataError("the encoded vector must be a 1-D int64 numpy array")
        if x.shape[0] != desc.dimension:
            raise DataError(
                f"the encoded vector has length {x.shape[0]}, the query needs {desc.dimension}"
            )
        m = len(desc.encoding)
        limits = np.array(
            [
                min(s.limit + int(np.ceil(OVERFLOW_SIGMAS * sig)), 2**63 - 1)
                for s, sig in zip(desc.encoding, desc.sigma_loc, strict=True)
            ],
            dtype=np.int64,
        )
        mat = x.reshape(desc.cells, m)
        outside = (mat > limits) | (mat < -limits)
        if outside.any():
            j = int(np.flatnonzero(outside.ravel())[0])
            raise DataError(
                f"coordinate {j} (cell {j // m}, measure {j % m}) of the encoded vector is "
                "outside its bound plus noise allowance; refusing to upload"
            )
        return np.ascontiguousarray(x).view(np.uint64).copy()

    def _masked_upload(self, desc: Descriptor, rnd: _Round, x: NDArray[np.int64]) -> MaskedUpload:
        hq = rnd.hq
        y = self._check_input(desc, x)
        seed = self._random_bytes(shamir.SECRET_BYTES)
        if len(seed) != shamir.SECRET_BYTES:
            raise ProtocolError("the random source returned a short seed")
        prg.add_stream(y, seed, +1)
        peers = [sid for sid in desc.cohort if sid != self.silo_id]
        pair = {peer: self._pair_key(peer) for peer in peers}
        rnd.pair_keys = pair  # round 2 uses exactly the keys the vector was masked with
        masks.apply_pairwise_masks(
            y, self.silo_id, ((peer, keys.mask_key(pair[peer], desc.qid, hq)) for peer in peers)
        )
        holders = {self.roster.entry(peer).index: peer for peer in peers}
        shares = shamir.split(seed, desc.threshold, list(holders), random_bytes=self._random_bytes)
        ciphertexts = tuple(
            (
                peer,
                aead.encrypt_share(
                    keys.share_key(pair[peer], desc.qid, hq, self.silo_id, peer),
                    shares[index],
                    aead.share_aad(desc.qid, self.silo_id, peer, hq),
                ),
            )
            for index, peer in holders.items()
        )
        commit = masks.seed_commitment(desc.qid, self.silo_id, seed)
        del seed, shares  # Python cannot wipe memory; at least keep no reference
        return MaskedUpload(
            qid=desc.qid,
            silo_id=self.silo_id,
            hq=hq,
            y=vector_to_bytes(y),
            commit=commit,
            shares=ciphertexts,
        )

    # -- round 2 ----------------------------------------------------------------------------

    def unmask(self, req: UnmaskRequest) -> UnmaskResponse:
        """Answer an unmask request (M2) with message M3, at most once per qid.

        For each peer this releases either a share of its self-mask seed (peer in S) or the
        pairwise mask key with it (peer in D), never both. Shares whose ciphertext fails
        authentication are silently left out.

        Args:
            req: The unmask request addressed to this silo.

        Returns:
            The unmask response.

        Raises:
            ProtocolError: If the silo has not uploaded for the qid, already answered it or
                closed it, the digest differs, or S and D are not a valid split of the cohort
                (overlap, not covering U, this silo not in S, or S below max(t + 1, n_min)).
        """
        qid = bytes(req.qid)
        with self._lock:
            rnd = self._rounds.get(qid)
            if rnd is None:
                raise ProtocolError("no upload was made for this query id; nothing to unmask")
            if rnd.state is RoundState.ANSWERED:
                raise ProtocolError("this query was already unmasked; a second request is refused")
            if rnd.state is RoundState.CLOSED:
                raise ProtocolError("this query was aborted; nothing to unmask")
            if rnd.state is not RoundState.UPLOADED or rnd.desc is None:
                raise ProtocolError("this query has not been uploaded yet; nothing to unmask")
            desc = rnd.desc
            if req.hq != rnd.hq:
                raise ProtocolError("the unmask request is for a different descriptor digest")
            survivors, dropped = self._check_split(desc, req)
            pair, hq = rnd.pair_keys, rnd.hq
            rnd.state, rnd.desc, rnd.pair_keys = RoundState.ANSWERED, None, {}
        seed_shares: dict[str, bytes] = {}
        for owner, ciphertext in req.forwarded:
            if owner not in survivors or owner == self.silo_id or owner in seed_shares:
                continue  # never a share of a dropped silo's seed, and one per owner
            share = aead.decrypt_share(
                keys.share_key(pair[owner], qid, hq, owner, self.silo_id),
                ciphertext,
                aead.share_aad(qid, owner, self.silo_id, hq),
            )
            if share is not None:
                seed_shares[owner] = share
        mask_keys = tuple((peer, keys.mask_key(pair[peer], qid, hq)) for peer in sorted(dropped))
        return UnmaskResponse(
            qid=qid,
            silo_id=self.silo_id,
            request_digest=req.digest(),
            seed_shares=tuple(sorted(seed_shares.items())),
            mask_keys=mask_keys,
        )

    def _check_split(self, desc: Descriptor, req: UnmaskRequest) -> tuple[set[str], set[str]]:
        survivors, dropped = set(req.survivors), set(req.dropped)
        if len(survivors) != len(req.survivors) or len(dropped) != len(req.dropped):
            raise ProtocolError("the unmask request lists a silo twice")
        if survivors & dropped:
            raise ProtocolError("the unmask request puts a silo both in S and in D")
        if survivors | dropped != set(desc.cohort):
            raise ProtocolError("the unmask request's S and D do not make up the cohort")
        if self.silo_id not in survivors:
            raise ProtocolError(f"silo {self.silo_id} is not in the request's survivor set")
        if len(survivors) < desc.survivors_needed:
            raise ProtocolError(
                f"the survivor set has {len(survivors)} silos, below max(t + 1, n_min) = "
                f"{desc.survivors_needed}"
            )
        return survivors, dropped

    def abort(self, qid: bytes) -> None:
        """Close query ``qid`` (on an Abort message); it can never be uploaded or unmasked again.

        Args:
            qid: The query id.
        """
        with self._lock:
            rnd = self._rounds.get(bytes(qid))
            if rnd is None:
                self._rounds[bytes(qid)] = _Round(RoundState.CLOSED, None, b"")
            else:
                rnd.state, rnd.desc, rnd.pair_keys = RoundState.CLOSED, None, {}
