"""The silo half of FSA-1: validate a descriptor, mask and upload once, answer round 2 once.

Pure state machine, no I/O of its own: the silo agent feeds it messages and sends what it
returns. The intended call order for one query is::

    hq = session.accept(desc)        # checks Q and its signature, claims the qid (no replays)
    ... approval, durable budget debit, run the plan, encode, add the noise share ...
    m1 = session.upload(desc, x, extra)  # masked vector, commitment, encrypted seed shares, signed
    m3 = session.unmask(m2)          # at most once per qid; never a share and a key for one peer
                                     # (plus the masked extra noise vector when nobody dropped)
    session.receive_abort(abort)     # the coordinator's Abort: the qid stays consumed
    session.abort(qid)               # the silo's own decision to drop a query

``upload`` calls ``accept`` itself when the agent did not, but accepting first means a replayed
qid is refused before any budget is spent. Replay protection across restarts comes from the
``claim_qid`` hook, normally a :class:`fedsql.secagg.qid_log.QidLog`.

**Signed mode** (``authority_public`` given) is how a federation runs: the roster must be signed
by the pinned enrolment authority and name this silo's contract, descriptors, unmask requests
and aborts must carry the coordinator's signature, and this silo signs its uploads and
responses. Without ``authority_public`` the session trusts the roster it is given and checks a
coordinator signature only if the roster pins a coordinator key; that mode is for tests and
embedded single-process use, never for a federation with an untrusted coordinator.

With an :class:`~fedsql.secagg.epochs.EpochKeyStore` the masks come from per-epoch keys
(forward secrecy, see :mod:`fedsql.secagg.keyring`); without one, from the identity X25519 key.
"""

from __future__ import annotations

import enum
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import ProtocolError
from fedsql.secagg import aead, extra, keys, masks, prg, shamir
from fedsql.secagg.epochs import EpochKey, EpochKeyStore
from fedsql.secagg.identity import IdentityKey, sign_message, verify_message
from fedsql.secagg.keyring import SiloKeyring
from fedsql.secagg.messages import (
    Abort,
    Descriptor,
    MaskedUpload,
    UnmaskRequest,
    UnmaskResponse,
    vector_to_bytes,
)
from fedsql.secagg.roster import Roster, verify_roster
from fedsql.secagg.validation import check_descriptor, check_input, check_own_entry, check_split

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
    epoch: int | None = None
    pair_keys: dict[str, bytes] = field(default_factory=dict)
    extra: NDArray[np.int64] | None = None
    #: The coordinator key and signature the accepted descriptor was verified with.
    verified: tuple[bytes, bytes] = (b"", b"")

    def close(self) -> None:
        self.state, self.desc, self.pair_keys, self.extra = RoundState.CLOSED, None, {}, None


_FINAL = (RoundState.ANSWERED, RoundState.CLOSED)


class SiloSession:
    """One silo's FSA-1 state: its keys, the roster and every query it has seen.

    Thread-safe: state transitions happen under a lock, the cryptography outside it.

    Args:
        silo_id: This silo's id.
        keypair: This silo's long-term X25519 key pair, as listed in the roster.
        roster: The roster; it must list ``silo_id`` with ``keypair.public_bytes``.
        epoch: The current key epoch.
        c_max: The largest number of silos assumed to collude with the coordinator.
        claim_qid: Durable replay guard: called once per new qid, it must atomically record
            the qid and return True, or return False if the qid was recorded before (for
            instance by an earlier process). It runs under the session lock. Pass a
            :class:`~fedsql.secagg.qid_log.QidLog`. Without it, replays are refused only
            within this session's memory.
        random_bytes: Source of the self-mask seeds and Shamir coefficients. Keep the default
            (``os.urandom``); override only to reproduce a run in tests.
        identity: This silo's Ed25519 identity key; uploads and responses are signed with it.
            Required in signed mode, and it must be the key the roster lists.
        authority_public: The pinned Ed25519 key of the enrolment authority. Given, the
            session runs in signed mode; None runs unsigned (tests and embedded use only).
        contract_hash: The fingerprint of the contract this silo runs; required in signed
            mode, where the roster must name it.
        min_roster_version: The lowest roster version to accept (persist the highest version
            seen and pass it after a restart, so an old roster cannot be replayed).
        epoch_keys: This silo's epoch-key store; masks then come from epoch keys and peers'
            signed epoch keys (see :meth:`add_epoch_keys`). None uses the identity X25519 key.
        keep_finished: With a ``claim_qid``, how many answered or closed rounds to keep in
            memory (the oldest are forgotten once twice as many pile up; their qids stay
            refused by ``claim_qid``). Without one, every round is kept.

    Raises:
        ProtocolError: If the silo or its keys are not in the roster, ``c_max`` is negative,
            or (signed mode) the identity key or contract hash is missing or the roster does
            not verify.
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
        identity: IdentityKey | None = None,
        authority_public: bytes | None = None,
        contract_hash: str | None = None,
        min_roster_version: int = 0,
        epoch_keys: EpochKeyStore | None = None,
        keep_finished: int = 4096,
    ) -> None:
        if c_max < 0:
            raise ProtocolError("c_max cannot be negative")
        if authority_public is not None:
            if identity is None:
                raise ProtocolError(
                    "a silo that pins an enrolment authority needs its identity key"
                )
            if contract_hash is None:
                raise ProtocolError(
                    "a silo that pins an enrolment authority needs its contract hash to check "
                    "the roster against"
                )
        if epoch_keys is not None and (epoch_keys.silo_id, epoch_keys.fed_id) != (
            silo_id,
            roster.fed_id,
        ):
            raise ProtocolError("the epoch-key store belongs to another silo or federation")
        self.silo_id = silo_id
        self.c_max = c_max
        self._keypair = keypair
        self._identity = identity
        self._authority_public = authority_public
        self._contract_hash = contract_hash
        self._epoch_keys = epoch_keys
        self._check_roster(roster, min_roster_version, None)
        self.roster = roster
        self.epoch = epoch
        self._keyring = SiloKeyring(silo_id, keypair, roster, epoch_keys)
        self._claim_qid = claim_qid
        self._random_bytes = random_bytes
        self._rounds: dict[bytes, _Round] = {}
        self._keep_finished = keep_finished
        self._lock = threading.Lock()

    # -- roster and keys --------------------------------------------------------------------

    @property
    def signed(self) -> bool:
        """Whether the session runs in signed mode (an enrolment authority is pinned)."""
        return self._authority_public is not None

    def _check_roster(self, roster: Roster, min_version: int, current: Roster | None) -> None:
        """Every check of a roster before this silo uses it."""
        if self._authority_public is not None:
            verify_roster(
                roster,
                self._authority_public,
                min_version=min_version,
                contract_hash=self._contract_hash,
            )
        elif roster.version < min_version:
            raise ProtocolError(
                f"roster version {roster.version} is outdated: version {min_version} or later "
                "is already pinned"
            )
        check_own_entry(
            roster,
            self.silo_id,
            self._keypair.public_bytes,
            self._identity.public_bytes if self._identity is not None else None,
            self._epoch_keys.identity_public if self._epoch_keys is not None else None,
        )
        if (
            self.signed
            and current is not None
            and roster.version == current.version
            and roster.canonical() != current.canonical()
        ):
            raise ProtocolError(
                f"a different roster with the pinned version {roster.version} was received; "
                "refusing it"
            )

    def update_roster(self, roster: Roster, epoch: int) -> None:
        """Switch to a new roster or epoch (after a reconnect or an epoch change).

        Queries already uploaded keep the pair keys they were masked with, so they can still
        be unmasked; the record of seen query ids is kept. In signed mode the roster must
        verify, must not be older than the one held, and must not differ from it under the
        same version.

        Args:
            roster: The new roster; it must list this silo with this silo's keys.
            epoch: The current key epoch.

        Raises:
            ProtocolError: If the roster is refused (see above) or substitutes this silo's key.
        """
        with self._lock:
            current = self.roster
        self._check_roster(roster, current.version if self.signed else 0, current)
        with self._lock:
            if roster != self.roster:
                self._keyring.set_roster(roster)
            self.roster, self.epoch = roster, epoch

    def add_epoch_keys(self, epoch_keys: Iterable[EpochKey]) -> None:
        """Take the peers' published epoch keys, each checked against the roster.

        Args:
            epoch_keys: Signed epoch keys (this silo's own may be among them).

        Raises:
            ProtocolError: If the session runs on identity keys, or any key fails its check
                (forged, for another federation, an unknown silo, or a substitute of this
                silo's own key); then none is taken.
        """
        self._keyring.add_epoch_keys(epoch_keys)

    def end_epoch(self, epoch: int) -> None:
        """End ``epoch`` and every earlier one: delete their private and pair keys.

        Queries of those epochs that have not been answered are closed: they can no longer
        be unmasked, and nothing about them is released.

        Args:
            epoch: The last epoch to end.
        """
        with self._lock:
            for rnd in self._rounds.values():
                if rnd.epoch is not None and rnd.epoch <= epoch and rnd.state not in _FINAL:
                    rnd.close()
        self._keyring.end_epoch(epoch)

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

    def _coordinator_check(self, message: Descriptor | UnmaskRequest | Abort, what: str) -> None:
        """Verify a coordinator message's signature when the roster pins a coordinator key."""
        with self._lock:
            pinned = self.roster.coordinator_public
        if pinned:  # always, in signed mode: a verified roster is complete
            verify_message(message, pinned, what)

    def _validate(
        self, desc: Descriptor, accepted: _Round | None = None
    ) -> tuple[bytes, Roster, bytes]:
        """Every check of a descriptor against this silo's roster and epoch.

        The coordinator's signature is verified unless ``accepted`` holds this very descriptor
        (same digest) already verified with the same signature under the key pinned now.

        Returns:
            hq, the roster checked against, and the coordinator key the signature was
            verified with (empty when the roster pins none).
        """
        with self._lock:
            roster, epoch = self.roster, self.epoch
        pinned = roster.coordinator_public
        hq = desc.digest()
        already = (
            accepted is not None
            and accepted.hq == hq
            and accepted.verified == (pinned, desc.signature)
        )
        if pinned and not already:  # always, in signed mode: a verified roster is complete
            verify_message(desc, pinned, "the query descriptor")
        check_descriptor(desc, roster, self.c_max)
        if desc.epoch != epoch:
            raise ProtocolError(f"the descriptor is for epoch {desc.epoch}, not {epoch}")
        if self.silo_id not in desc.cohort:
            raise ProtocolError(f"silo {self.silo_id} is not in the query's cohort")
        return hq, roster, pinned

    def accept(self, desc: Descriptor) -> bytes:
        """Check a descriptor and claim its qid, before any budget is spent.

        Args:
            desc: The query descriptor (M0).

        Returns:
            hq, the descriptor's digest.

        Raises:
            ProtocolError: If the descriptor's signature does not verify (when a coordinator
                key is pinned), it is unacceptable (see :func:`check_descriptor`), the silo
                is not in the cohort, the epoch is not current, or the qid was seen before
                (a replay, also across restarts when ``claim_qid`` is durable).
            QueryRejected: If an encoded measure could overflow 2^62 over the cohort.
            OperationalError: If the durable replay log cannot record the qid.
        """
        hq, _, pinned = self._validate(desc)
        self._claim(desc, hq, pinned)
        return hq

    def _claim(self, desc: Descriptor, hq: bytes, pinned: bytes) -> None:
        with self._lock:
            if desc.qid in self._rounds:
                raise ProtocolError("this query id was already used; refusing a replayed query")
            if self._claim_qid is not None and not self._claim_qid(desc.qid):
                raise ProtocolError("this query id was already used; refusing a replayed query")
            verified = (pinned, desc.signature) if pinned else (b"", b"")
            self._rounds[desc.qid] = _Round(
                RoundState.ACCEPTED, desc, hq, desc.epoch, verified=verified
            )
            if self._claim_qid is not None and len(self._rounds) > 2 * self._keep_finished:
                self._forget_finished()

    def _forget_finished(self) -> None:
        """Drop the oldest finished rounds beyond ``keep_finished`` (lock held).

        Only rounds whose qid ``claim_qid`` recorded (a durable log, which refuses them from
        then on): memory then stays bounded in a silo that runs for months, and a replay is
        still refused.
        """
        finished = [q for q, r in self._rounds.items() if r.state in _FINAL and r.hq]
        for qid in finished[: max(0, len(finished) - self._keep_finished)]:
            del self._rounds[qid]

    def upload(
        self, desc: Descriptor, x: NDArray[np.int64], extra_noise: NDArray[np.int64] | None = None
    ) -> MaskedUpload:
        """Mask this silo's encoded, noised vector and produce message M1.

        Args:
            desc: The query descriptor; the one passed to :meth:`accept`, if it was called.
            x: The encoded vector with the noise share added (int64, length ``dimension``).
            extra_noise: The extra part of that noise share (int64, length ``dimension``),
                kept in memory until round 2 and sent back masked only if nobody dropped
                (:mod:`fedsql.secagg.extra`); None when the share has no extra part.

        Returns:
            The masked upload, signed when the session has an identity key.

        Raises:
            ProtocolError: If the descriptor is unacceptable or replayed, differs from the
                accepted one, the query is past round 1 or was closed meanwhile, or a key
                needed for the masks is missing; the qid is then closed.
            DataError: If ``x`` or ``extra_noise`` has the wrong type or length, or a coordinate
                of ``x`` lies outside its bound plus 8 noise standard deviations; the qid is
                then closed.
            QueryRejected: If an encoded measure could overflow 2^62 over the cohort.
        """
        qid = bytes(desc.qid)
        with self._lock:
            accepted = self._rounds.get(qid)
        # When accepted earlier, validate again: the roster or epoch may have changed since
        # (the signature check is not repeated for the same descriptor under the same key).
        hq, roster, pinned = self._validate(desc, accepted)
        if accepted is None:
            self._claim(desc, hq, pinned)
        with self._lock:
            rnd = self._rounds[qid]
            if rnd.state is not RoundState.ACCEPTED:
                raise ProtocolError("this query id was already used; refusing a replayed query")
            if rnd.hq != hq:
                raise ProtocolError("the descriptor differs from the one accepted for this qid")
            rnd.state = RoundState.UPLOADING
        try:
            kept = None if extra_noise is None else extra.check_extra(extra_noise, desc.dimension)
            message = self._masked_upload(desc, rnd, roster, x)
        except BaseException:
            with self._lock:
                rnd.close()
            raise
        with self._lock:
            if rnd.state is not RoundState.UPLOADING:
                rnd.close()
                raise ProtocolError("the query was closed while its upload was computed")
            rnd.state, rnd.extra = RoundState.UPLOADED, kept
        return message

    def _masked_upload(
        self, desc: Descriptor, rnd: _Round, roster: Roster, x: NDArray[np.int64]
    ) -> MaskedUpload:
        hq = rnd.hq
        y = check_input(desc, x)
        peers = [sid for sid in desc.cohort if sid != self.silo_id]
        pair = {peer: self._keyring.pair_key(peer, desc.epoch) for peer in peers}
        seed = self._random_bytes(shamir.SECRET_BYTES)
        if len(seed) != shamir.SECRET_BYTES:
            raise ProtocolError("the random source returned a short seed")
        prg.add_stream(y, seed, +1)
        with self._lock:
            rnd.pair_keys = pair  # round 2 uses exactly the keys the vector was masked with
        masks.apply_pairwise_masks(
            y, self.silo_id, ((peer, keys.mask_key(pair[peer], desc.qid, hq)) for peer in peers)
        )
        holders = {roster.entry(peer).index: peer for peer in peers}
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
        upload = MaskedUpload(
            qid=desc.qid,
            silo_id=self.silo_id,
            hq=hq,
            y=vector_to_bytes(y),
            commit=commit,
            shares=ciphertexts,
        )
        return upload if self._identity is None else sign_message(upload, self._identity)

    # -- round 2 ----------------------------------------------------------------------------

    def unmask(self, req: UnmaskRequest) -> UnmaskResponse:
        """Answer an unmask request (M2) with message M3, at most once per qid.

        For each peer this releases either a share of its self-mask seed (peer in S) or the
        pairwise mask key with it (peer in D), never both. Shares whose ciphertext fails
        authentication are silently left out. When D is empty and the silo holds the extra part
        of its noise share, the response also carries the masked extra vector; with D
        non-empty it never does. A refused request releases nothing and leaves the query where
        it was.

        Args:
            req: The unmask request addressed to this silo.

        Returns:
            The unmask response, signed when the session has an identity key.

        Raises:
            ProtocolError: If the request's signature does not verify (when a coordinator key
                is pinned), the silo has not uploaded for the qid, already answered it or
                closed it, the digest differs, or S and D are not a valid split of the cohort
                (overlap, not covering U, this silo not in S, or S below max(t + 1, n_min)).
        """
        qid = bytes(req.qid)
        self._coordinator_check(req, "the unmask request")
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
            survivors, dropped = check_split(desc, self.silo_id, req.survivors, req.dropped)
            pair, hq, kept = rnd.pair_keys, rnd.hq, rnd.extra
            rnd.state, rnd.desc, rnd.pair_keys, rnd.extra = RoundState.ANSWERED, None, {}, None
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
        digest = req.digest()
        masked = b""
        if kept is not None and not dropped:
            z = extra.masked_extra(kept, self.silo_id, pair, qid, hq, digest, dropped)
            masked = vector_to_bytes(z)
        del kept
        response = UnmaskResponse(
            qid=qid,
            silo_id=self.silo_id,
            request_digest=digest,
            seed_shares=tuple(sorted(seed_shares.items())),
            mask_keys=mask_keys,
            extra=masked,
        )
        return response if self._identity is None else sign_message(response, self._identity)

    # -- abort ------------------------------------------------------------------------------

    def abort(self, qid: bytes) -> None:
        """Close query ``qid`` on this silo's own decision; it can never be uploaded or unmasked.

        For the coordinator's Abort message use :meth:`receive_abort`, which checks its
        signature.

        Args:
            qid: The query id.
        """
        with self._lock:
            rnd = self._rounds.get(bytes(qid))
            if rnd is None:
                self._rounds[bytes(qid)] = _Round(RoundState.CLOSED, None, b"")
            else:
                rnd.close()

    def receive_abort(self, message: Abort) -> None:
        """Close a query on the coordinator's Abort (no refund; the qid stays consumed).

        Args:
            message: The Abort message.

        Raises:
            ProtocolError: If a coordinator key is pinned and the message's signature does
                not verify; the query is then left as it was.
        """
        self._coordinator_check(message, "the abort message")
        self.abort(message.qid)
