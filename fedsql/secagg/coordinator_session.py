"""The coordinator half of FSA-1: collect uploads, issue unmask requests, recover the total.

Pure state machine, no I/O: the hub feeds it messages and sends what it returns. It never
learns more than the protocol reveals by design: the masked sum over the survivors (and, when
every cohort member answered with nobody dropped, the sum of their extra noise parts, which it
removes: :mod:`fedsql.secagg.extra`). Uploads are summed as they arrive, so memory stays O(d)
whatever the cohort size.

With a ``signer`` (the coordinator's Ed25519 key, pinned in the roster) the session signs the
descriptor, every unmask request and the abort notice; it checks the signature of every upload
and response from a silo whose roster entry carries an Ed25519 key, which in a signed roster is
every silo.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import ProtocolError, QuorumNotMet
from fedsql.secagg import aead, extra, masks, prg, shamir
from fedsql.secagg.identity import IdentityKey, sign_message, verify_message
from fedsql.secagg.messages import (
    Abort,
    Descriptor,
    MaskedUpload,
    Roster,
    UnmaskRequest,
    UnmaskResponse,
    vector_from_bytes,
)
from fedsql.secagg.validation import check_descriptor

__all__ = ["MAX_SHARE_SUBSETS", "CoordinatorSession", "CoordinatorState"]

#: How many t-subsets of a seed's shares are tried before declaring the shares faulty.
MAX_SHARE_SUBSETS = 64


class CoordinatorState(enum.Enum):
    """Where one query stands at the coordinator."""

    COLLECTING = "collecting"
    """Round 1: masked uploads are being collected."""
    UNMASKING = "unmasking"
    """Round 2: unmask requests were issued; responses are being collected."""
    FINISHED = "finished"
    """The total over the survivors was recovered."""
    ABORTED = "aborted"
    """The query was aborted; nothing more is accepted."""


@dataclass(frozen=True)
class _Upload:
    commit: bytes
    ciphertexts: dict[str, bytes]


class CoordinatorSession:
    """The coordinator's FSA-1 state for one query.

    Not thread-safe: drive one session from one thread (the hub's per-query runner).

    Args:
        desc: The query descriptor for the cohort. With a ``signer``, an unsigned descriptor
            is signed and a signed one must verify. Send :attr:`desc` (the signed one) as M0.
        roster: The roster the descriptor refers to.
        c_max: The largest number of silos assumed to collude with the coordinator.
        signer: The coordinator's Ed25519 key. Required when the roster pins a coordinator
            key, and then it must be that key.

    Raises:
        ProtocolError: If the descriptor is inconsistent with the roster, its threshold and
            n_min break the FSA-1 constraints, its signature does not verify, or the signer
            is missing or is not the key the roster pins.
        QueryRejected: If an encoded measure could overflow 2^62 over the cohort.
    """

    def __init__(
        self,
        desc: Descriptor,
        roster: Roster,
        c_max: int,
        *,
        signer: IdentityKey | None = None,
    ) -> None:
        if c_max < 0:
            raise ProtocolError("c_max cannot be negative")
        pinned = roster.coordinator_public
        if pinned and (signer is None or signer.public_bytes != pinned):
            raise ProtocolError(
                f"roster version {roster.version} pins a coordinator key; the session needs "
                "that key to sign with"
            )
        check_descriptor(desc, roster, c_max)
        if signer is not None and desc.signature:
            verify_message(desc, signer.public_bytes, "the query descriptor")
        elif signer is not None:
            desc = sign_message(desc, signer)
        self.desc = desc
        self._signer = signer
        self.roster = roster
        self.c_max = c_max
        self.hq = desc.digest()
        self._state = CoordinatorState.COLLECTING
        self._total = np.zeros(desc.dimension, dtype=np.uint64)
        self._uploads: dict[str, _Upload] = {}
        self._survivors: tuple[str, ...] = ()
        self._dropped: tuple[str, ...] = ()
        self._request_digest = b""
        self._responses: dict[str, UnmaskResponse] = {}
        self._result: NDArray[np.uint64] | None = None
        self._extras_removed = False

    # -- introspection ----------------------------------------------------------------------

    @property
    def state(self) -> CoordinatorState:
        """The current state."""
        return self._state

    @property
    def uploaded(self) -> tuple[str, ...]:
        """Sorted ids of the silos whose upload was accepted."""
        return tuple(sorted(self._uploads))

    @property
    def survivors(self) -> tuple[str, ...]:
        """S, fixed when round 1 closes (empty before)."""
        return self._survivors

    @property
    def dropped(self) -> tuple[str, ...]:
        """D = U - S, fixed when round 1 closes (empty before)."""
        return self._dropped

    @property
    def extras_removed(self) -> bool:
        """Whether :meth:`finish` removed the extra noise parts: every cohort member answered
        round 2 with nobody dropped and sent its masked extra vector."""
        return self._extras_removed

    @property
    def responders(self) -> tuple[str, ...]:
        """Sorted ids of the survivors whose unmask response was accepted."""
        return tuple(sorted(self._responses))

    def _require_state(self, expected: CoordinatorState, action: str) -> None:
        if self._state is not expected:
            raise ProtocolError(f"cannot {action}: the query is {self._state.value}")

    # -- round 1 ----------------------------------------------------------------------------

    def _check_signature(
        self, message: MaskedUpload | UnmaskResponse, sender: str, what: str
    ) -> None:
        public = self.roster.entry(sender).ed25519_public
        if public:
            verify_message(message, public, f"the {what} from {sender}")

    def add_upload(self, upload: MaskedUpload) -> None:
        """Accept one masked upload (M1) and add its vector to the running sum.

        Args:
            upload: The message.

        Raises:
            ProtocolError: If round 1 is over, or the upload is for another query or
                descriptor, comes from outside the cohort, is a duplicate, is unsigned or
                badly signed (when the roster lists the sender's Ed25519 key), or has a
                vector or share list of the wrong shape. A refused upload changes nothing.
        """
        self._require_state(CoordinatorState.COLLECTING, "accept an upload")
        desc, sender = self.desc, upload.silo_id
        if upload.qid != desc.qid:
            raise ProtocolError(f"the upload from {sender} is for another query id")
        if upload.hq != self.hq:
            raise ProtocolError(f"the upload from {sender} is for a different descriptor")
        if sender not in desc.cohort:
            raise ProtocolError(f"silo {sender} is not in the query's cohort")
        if sender in self._uploads:
            raise ProtocolError(f"silo {sender} already uploaded for this query")
        y = vector_from_bytes(upload.y, desc.dimension)
        ciphertexts = dict(upload.shares)
        expected = set(desc.cohort) - {sender}
        if len(ciphertexts) != len(upload.shares) or set(ciphertexts) != expected:
            raise ProtocolError(
                f"the upload from {sender} must carry exactly one share per other cohort member"
            )
        if any(len(ct) != aead.CIPHERTEXT_BYTES for ct in ciphertexts.values()):
            raise ProtocolError(f"the upload from {sender} carries a malformed share ciphertext")
        self._check_signature(upload, sender, "upload")
        np.add(self._total, y, out=self._total)
        self._uploads[sender] = _Upload(upload.commit, ciphertexts)

    def close_round1(self) -> dict[str, UnmaskRequest]:
        """End round 1: fix S (the uploaders) and D, and build one unmask request per survivor.

        Returns:
            Map from survivor id to its unmask request (M2).

        Raises:
            QuorumNotMet: If fewer than max(t + 1, n_min) silos uploaded; the query is
                aborted before any unmask request exists, so nothing secret is released.
            ProtocolError: If round 1 was already closed.
        """
        self._require_state(CoordinatorState.COLLECTING, "close round 1")
        desc = self.desc
        needed = desc.survivors_needed
        if len(self._uploads) < needed:
            self.abort()
            raise QuorumNotMet(
                f"only {len(self._uploads)} of {len(desc.cohort)} silos uploaded; at least "
                f"{needed} are needed for a safe release, so the query is aborted"
            )
        self._survivors = tuple(sorted(self._uploads))
        self._dropped = tuple(sid for sid in desc.cohort if sid not in self._uploads)
        # R2 = (qid, hq, S, D) is the same for every survivor, and so is its signature.
        r2 = UnmaskRequest(desc.qid, self.hq, self._survivors, self._dropped, ())
        if self._signer is not None:
            r2 = sign_message(r2, self._signer)
        requests: dict[str, UnmaskRequest] = {}
        for v in self._survivors:
            forwarded = tuple(
                (u, self._uploads[u].ciphertexts[v]) for u in self._survivors if u != v
            )
            requests[v] = UnmaskRequest(
                qid=desc.qid,
                hq=self.hq,
                survivors=self._survivors,
                dropped=self._dropped,
                forwarded=forwarded,
                signature=r2.signature,
            )
        self._request_digest = r2.digest()
        self._state = CoordinatorState.UNMASKING
        return requests

    # -- round 2 ----------------------------------------------------------------------------

    def add_response(self, response: UnmaskResponse) -> None:
        """Accept one unmask response (M3).

        Args:
            response: The message.

        Raises:
            ProtocolError: If round 2 is not open, or the response is for another query or
                request, comes from a non-survivor, is a duplicate, is unsigned or badly
                signed (when the roster lists the sender's Ed25519 key), holds shares of seeds
                that are not other survivors', or does not hold exactly one mask key per
                dropped silo. A refused response changes nothing.
        """
        self._require_state(CoordinatorState.UNMASKING, "accept an unmask response")
        sender = response.silo_id
        if response.qid != self.desc.qid:
            raise ProtocolError(f"the response from {sender} is for another query id")
        if sender not in self._survivors:
            raise ProtocolError(f"silo {sender} is not a survivor of this query")
        if sender in self._responses:
            raise ProtocolError(f"silo {sender} already answered the unmask request")
        if response.request_digest != self._request_digest:
            raise ProtocolError(f"the response from {sender} answers a different unmask request")
        owners = [owner for owner, _ in response.seed_shares]
        allowed = set(self._survivors) - {sender}
        if len(set(owners)) != len(owners) or not set(owners) <= allowed:
            raise ProtocolError(
                f"the response from {sender} holds seed shares that are not one per other survivor"
            )
        keyed = [peer for peer, _ in response.mask_keys]
        if len(set(keyed)) != len(keyed) or set(keyed) != set(self._dropped):
            raise ProtocolError(
                f"the response from {sender} must hold exactly one mask key per dropped silo"
            )
        self._check_signature(response, sender, "unmask response")
        self._responses[sender] = response

    def _shares_by_owner(self) -> dict[str, dict[int, bytes]]:
        """Every returned seed share, grouped by seed owner and keyed by the holder's index."""
        by_owner: dict[str, dict[int, bytes]] = {u: {} for u in self._survivors}
        for holder, response in self._responses.items():
            index = self.roster.entry(holder).index
            for owner, share in response.seed_shares:
                if owner != holder:  # add_response admits only other survivors' seeds
                    by_owner[owner][index] = share
        return by_owner

    def _seed_of(self, owner: str, held: dict[int, bytes]) -> bytes:
        """Reconstruct survivor ``owner``'s self-mask seed and check it against its commitment."""
        threshold = self.desc.threshold
        if len(held) < threshold:
            raise QuorumNotMet(
                f"only {len(held)} shares of survivor {owner}'s seed arrived and {threshold} "
                "are needed; the query is aborted"
            )
        commit = self._uploads[owner].commit
        points = sorted(held)
        for subset in itertools.islice(
            itertools.combinations(points, threshold), MAX_SHARE_SUBSETS
        ):
            try:
                seed = shamir.reconstruct({x: held[x] for x in subset})
            except ProtocolError:
                continue
            if masks.seed_commitment(self.desc.qid, owner, seed) == commit:
                return seed
        raise ProtocolError(
            f"the seed shares of survivor {owner} do not match its commitment; some holder "
            "sent a faulty share and the query is aborted"
        )

    def finish(self) -> NDArray[np.uint64]:
        """Remove every mask and return the total over the survivors, mod 2^64.

        When nobody dropped and every cohort member's response carries a masked extra
        vector of length d, their sum is subtracted, which removes the extra parts of the
        noise shares (:attr:`extras_removed`); otherwise extra vectors are ignored.

        Returns:
            ``sum over S of (X_u + E_u)`` as uint64 (with ``E_u`` the base part only when the
            extras were removed); decode it with :func:`fedsql.secagg.encoding.decode` and
            ``n = len(survivors)``.

        Raises:
            QuorumNotMet: If some silos dropped and a survivor did not answer round 2 (its
                masks with the dropped silos cannot be removed), or fewer than t holders
                returned shares of some survivor's seed. The query is aborted.
            ProtocolError: If round 2 is not open, or a seed's shares do not match its
                commitment. The query is aborted.
        """
        if self._state is CoordinatorState.FINISHED and self._result is not None:
            return self._result.copy()
        self._require_state(CoordinatorState.UNMASKING, "finish")
        try:
            missing = [v for v in self._survivors if v not in self._responses]
            if self._dropped and missing:
                raise QuorumNotMet(
                    f"{len(missing)} survivor(s) ({', '.join(missing)}) did not answer the "
                    "unmask request while silos dropped, so their masks cannot be removed; "
                    "the query is aborted, retry it with a new query id"
                )
            held = self._shares_by_owner()
            seeds = {u: self._seed_of(u, held[u]) for u in self._survivors}
        except (QuorumNotMet, ProtocolError):
            self.abort()
            raise
        total = self._total.copy()
        for seed in seeds.values():
            prg.add_stream(total, seed, -1)
        # With D empty there is nothing left to remove and silent survivors are allowed;
        # otherwise every survivor answered (checked above).
        for v, response in self._responses.items():
            masks.apply_pairwise_masks(total, v, response.mask_keys, negate=True)
        width = 8 * self.desc.dimension
        if (
            not self._dropped
            and set(self._responses) == set(self.desc.cohort)
            and all(len(r.extra) == width for r in self._responses.values())
        ):
            extra.remove_extras(
                total,
                (vector_from_bytes(r.extra, self.desc.dimension) for r in self._responses.values()),
            )
            self._extras_removed = True
        self._result = total
        self._state = CoordinatorState.FINISHED
        return total.copy()

    def abort(self, reason: str = "aborted") -> Abort:
        """Abort the query; no further message is accepted.

        Args:
            reason: Why, for the silos' logs.

        Returns:
            The Abort message to send to the cohort, signed when the session has a signer.
        """
        if self._state is not CoordinatorState.FINISHED:
            self._state = CoordinatorState.ABORTED
        self._total.fill(0)
        notice = Abort(qid=self.desc.qid, reason=reason)
        return notice if self._signer is None else sign_message(notice, self._signer)
