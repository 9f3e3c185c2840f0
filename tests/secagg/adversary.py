"""A malicious coordinator test double that colludes with corrupt silos, and its bookkeeping.

:class:`MaliciousCoordinator` holds the coordinator's signing key and everything the corrupt
silos know (their private keys, hence their pair keys with every peer and every seed share
addressed to them). It sends honest silos whatever messages a test scripts, records what they
release, and then answers the question that matters: which honest silos' vectors (or sums of
them) can it now strip of every mask? A vector y_u is unmasked by the coordinator iff it
knows u's self-mask seed b_u (at least t valid shares, checked against u's commitment) and
the pairwise mask key mk_uv for every other cohort member v; a sum over a group A of honest
silos iff that holds for each u in A with respect to every v outside A (masks inside A cancel).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from fedsql.errors import DataError, ProtocolError
from fedsql.secagg import aead, keys, prg, shamir
from fedsql.secagg.identity import sign_message
from fedsql.secagg.masks import apply_pairwise_masks, seed_commitment
from fedsql.secagg.messages import (
    Descriptor,
    MaskedUpload,
    UnmaskRequest,
    UnmaskResponse,
    vector_from_bytes,
)

from .harness import Federation, byte_histogram_pvalue


class MaliciousCoordinator:
    """The coordinator plus ``corrupt`` silos, scripted by a test against the honest silos."""

    def __init__(self, fed: Federation, corrupt: Iterable[str]) -> None:
        self.fed = fed
        self.corrupt = tuple(sorted(corrupt))
        self.honest = tuple(sid for sid in fed.ids if sid not in self.corrupt)
        self.descs: dict[bytes, Descriptor] = {}
        self.uploads: dict[tuple[bytes, str], MaskedUpload] = {}
        self.responses: dict[tuple[bytes, str], UnmaskResponse] = {}
        self.refusals: list[tuple[str, str]] = []

    # -- acting -----------------------------------------------------------------------------

    def send_query(
        self,
        desc: Descriptor,
        inputs: Mapping[str, NDArray[np.int64]],
        to: Iterable[str] | None = None,
    ) -> dict[str, MaskedUpload]:
        """Send M0 (signed) to ``to`` (default: the cohort) and collect the uploads."""
        if self.fed.coordinator_key is not None:
            desc = sign_message(desc, self.fed.coordinator_key)
        self.descs[desc.qid] = desc
        got: dict[str, MaskedUpload] = {}
        for sid in to if to is not None else desc.cohort:
            try:
                upload = self.fed.sessions[sid].upload(desc, inputs[sid])
            except (ProtocolError, DataError) as exc:
                self.refusals.append((sid, str(exc)))
                continue
            self.uploads[(desc.qid, sid)] = got[sid] = upload
        return got

    def request(
        self,
        qid: bytes,
        receiver: str,
        survivors: Iterable[str],
        dropped: Iterable[str],
        *,
        forwarded: Sequence[tuple[str, bytes]] | None = None,
    ) -> UnmaskRequest:
        """A signed M2 for ``receiver`` claiming (S, D). By default it forwards the genuine
        ciphertext addressed to the receiver of *every* uploader, those it claims dropped
        included, in case the receiver decrypts them."""
        members = tuple(sorted(survivors))
        if forwarded is None:
            forwarded = [
                (u, dict(upload.shares)[receiver])
                for (q, u), upload in sorted(self.uploads.items())
                if q == qid and u != receiver
            ]
        req = UnmaskRequest(
            qid, self.descs[qid].digest(), members, tuple(sorted(dropped)), tuple(forwarded)
        )
        if self.fed.coordinator_key is not None:
            req = sign_message(req, self.fed.coordinator_key)
        return req

    def send_unmask(self, receiver: str, req: UnmaskRequest) -> UnmaskResponse | None:
        """Send M2 to an honest silo; record and return its M3, or None if it refused."""
        try:
            response = self.fed.sessions[receiver].unmask(req)
        except ProtocolError as exc:
            self.refusals.append((receiver, str(exc)))
            return None
        key = (req.qid, receiver)
        assert key not in self.responses, "an honest silo answered twice for one qid"
        self.responses[key] = response
        return response

    def claim(
        self, qid: bytes, receivers: Iterable[str], survivors: Iterable[str], dropped: Iterable[str]
    ) -> dict[str, UnmaskResponse | None]:
        """Tell each receiver the same (S, D)."""
        s, d = tuple(survivors), tuple(dropped)
        return {v: self.send_unmask(v, self.request(qid, v, s, d)) for v in receivers}

    # -- what it knows ----------------------------------------------------------------------

    def _hq(self, qid: bytes) -> bytes:
        return self.descs[qid].digest()

    def shares_of(self, qid: bytes, owner: str) -> dict[int, bytes]:
        """Every share of ``owner``'s seed it holds: released by honest silos or decrypted
        by corrupt ones, keyed by the holder's roster index."""
        held: dict[int, bytes] = {}
        for (q, holder), response in self.responses.items():
            if q == qid:
                for o, share in response.seed_shares:
                    if o == owner:
                        held[self.fed.index(holder)] = share
        upload = self.uploads.get((qid, owner))
        if upload is not None:
            hq = self._hq(qid)
            for holder, ciphertext in upload.shares:
                if holder in self.corrupt:
                    key = keys.share_key(self.fed.pair_key(holder, owner), qid, hq, owner, holder)
                    opened = aead.decrypt_share(
                        key, ciphertext, aead.share_aad(qid, owner, holder, hq)
                    )
                    if opened is not None:
                        held[self.fed.index(holder)] = opened
        return held

    def seed_of(self, qid: bytes, owner: str) -> bytes | None:
        """``owner``'s self-mask seed if its shares reconstruct it (checked by the commitment)."""
        upload = self.uploads.get((qid, owner))
        held = self.shares_of(qid, owner)
        t = self.descs[qid].threshold
        if upload is None or len(held) < t:
            return None
        for subset in itertools.islice(itertools.combinations(sorted(held), t), 64):
            try:
                seed = shamir.reconstruct({x: held[x] for x in subset})
            except ProtocolError:
                continue
            if seed_commitment(qid, owner, seed) == upload.commit:
                return seed
        return None

    def mask_keys_of(self, qid: bytes, owner: str) -> dict[str, bytes]:
        """The pairwise mask keys mk_{owner,v} it holds, by peer v."""
        hq = self._hq(qid)
        known: dict[str, bytes] = {}
        for (q, responder), response in self.responses.items():
            if q != qid:
                continue
            for peer, key in response.mask_keys:
                if responder == owner:
                    known[peer] = key
                elif peer == owner:
                    known[responder] = key
        for peer in self.descs[qid].cohort:
            if peer == owner:
                continue
            if peer in self.corrupt:
                known[peer] = keys.mask_key(self.fed.pair_key(peer, owner), qid, hq)
            elif owner in self.corrupt:
                known[peer] = keys.mask_key(self.fed.pair_key(owner, peer), qid, hq)
        return known

    def unmaskable(self, qid: bytes, group: Iterable[str]) -> bool:
        """Whether it can strip every mask from the sum of ``group``'s uploads."""
        members = set(group)
        cohort = self.descs[qid].cohort
        for u in members:
            if (qid, u) not in self.uploads or self.seed_of(qid, u) is None:
                return False
            known = self.mask_keys_of(qid, u)
            if any(v not in known for v in cohort if v != u and v not in members):
                return False
        return True

    def unmaskable_honest_groups(self, qid: bytes) -> set[frozenset[str]]:
        """Every non-empty group of honest uploaders whose sum it can unmask."""
        uploaders = [sid for sid in self.honest if (qid, sid) in self.uploads]
        groups: set[frozenset[str]] = set()
        for size in range(1, len(uploaders) + 1):
            for group in itertools.combinations(uploaders, size):
                if self.unmaskable(qid, group):
                    groups.add(frozenset(group))
        return groups

    def residual(self, qid: bytes, owner: str) -> NDArray[np.uint64]:
        """``owner``'s upload with every mask it can remove removed."""
        upload = self.uploads[(qid, owner)]
        y = vector_from_bytes(upload.y, self.descs[qid].dimension)
        seed = self.seed_of(qid, owner)
        if seed is not None:
            prg.add_stream(y, seed, -1)
        apply_pairwise_masks(y, owner, self.mask_keys_of(qid, owner).items(), negate=True)
        return y

    def assert_no_honest_vector_unmasks(
        self,
        qid: bytes,
        inputs: Mapping[str, NDArray[np.int64]],
        *,
        uniformity: bool = True,
    ) -> None:
        """The proof each attack test ends with: no single honest upload can be unmasked.

        Symbolically (no honest silo is in a group of one it can unmask) and numerically
        (what is left of each honest upload after removing every known mask matches the
        input in no coordinate and, if ``uniformity``, looks uniform byte by byte).
        """
        singles = {g for g in self.unmaskable_honest_groups(qid) if len(g) == 1}
        assert not singles, f"the coordinator can unmask {sorted(map(sorted, singles))}"
        uploaders = [sid for sid in self.honest if (qid, sid) in self.uploads]
        for sid in uploaders:
            left = self.residual(qid, sid)
            assert not np.any(left == inputs[sid].view(np.uint64)), sid
            if uniformity:
                alpha = 1e-3 / (2 * len(uploaders))  # Bonferroni over the checks made here
                assert byte_histogram_pvalue(left, 0) > alpha, sid
                assert byte_histogram_pvalue(left, 56) > alpha, sid
