"""A silo's keyring: which X25519 keys it masks with, its peers' verified epoch keys, pair keys.

Two modes (SECAGG.md section 3):

- **epoch keys** (with an :class:`~fedsql.secagg.epochs.EpochKeyStore`): pair keys come from
  this silo's epoch key and each peer's epoch key for the query's epoch, which the peer signed
  with the identity key the roster lists. Ending an epoch deletes its private key and every
  pair key derived from it, so a later compromise does not expose that epoch's uploads.
- **identity keys** (without a store): pair keys come from the long-term X25519 keys in the
  roster. Simpler, but with no forward secrecy (SECAGG.md section 1, limit 7).

Pair keys K_ij^e are cached per (peer, epoch, peer key).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from fedsql.errors import ProtocolError
from fedsql.secagg import keys
from fedsql.secagg.epochs import EpochKey, EpochKeyStore, verify_epoch_key
from fedsql.secagg.roster import Roster

__all__ = ["SiloKeyring"]


class SiloKeyring:
    """The key material one silo derives pair keys from. Thread-safe.

    Args:
        silo_id: This silo's id.
        keypair: This silo's long-term X25519 key pair (the one the roster lists).
        roster: The roster in force.
        epoch_keys: This silo's epoch-key store; None runs on the identity keys.
    """

    def __init__(
        self,
        silo_id: str,
        keypair: keys.SiloKeyPair,
        roster: Roster,
        epoch_keys: EpochKeyStore | None,
    ) -> None:
        self.silo_id = silo_id
        self._keypair = keypair
        self._store = epoch_keys
        self._roster = roster
        self._peer_keys: dict[tuple[str, int], EpochKey] = {}
        self._cache: dict[tuple[str, int, bytes], bytes] = {}
        self._ended_through: int | None = None
        self._lock = threading.Lock()

    def _ended(self, epoch: int) -> bool:
        return self._ended_through is not None and epoch <= self._ended_through

    @property
    def uses_epoch_keys(self) -> bool:
        """Whether pair keys come from epoch keys (True) or the identity X25519 keys."""
        return self._store is not None

    def set_roster(self, roster: Roster) -> None:
        """Switch to a new roster: keep only the peers' epoch keys that still verify under it.

        Args:
            roster: The new roster (already checked by the caller).
        """
        with self._lock:
            kept: dict[tuple[str, int], EpochKey] = {}
            for slot, key in self._peer_keys.items():
                try:
                    verify_epoch_key(key, roster)
                except ProtocolError:
                    continue
                kept[slot] = key
            self._roster, self._peer_keys, self._cache = roster, kept, {}

    def add_epoch_keys(self, epoch_keys: Iterable[EpochKey]) -> None:
        """Verify published epoch keys against the roster and keep them (all or none).

        A newer key for the same silo and epoch (after that silo restarted) replaces the old
        one; this silo's own key must be the one its store holds.

        Args:
            epoch_keys: Signed epoch keys, typically every cohort member's for the epoch.

        Raises:
            ProtocolError: If this silo runs on identity keys, or any key is for another
                federation or an unknown silo, fails its signature check, or claims to be
                this silo's key without being it. Nothing is stored then.
        """
        store = self._store
        if store is None:
            raise ProtocolError(
                f"silo {self.silo_id} runs on its identity X25519 key; it takes no epoch keys"
            )
        with self._lock:
            roster = self._roster
        batch = list(epoch_keys)
        for key in batch:
            verify_epoch_key(key, roster)
            if key.silo_id == self.silo_id and key != store.public(key.epoch):
                raise ProtocolError(
                    f"an epoch {key.epoch} key for silo {self.silo_id} is not the one this silo "
                    "published; refusing a substituted key"
                )
        with self._lock:
            if self._roster is not roster:  # the roster changed meanwhile: check again
                for key in batch:
                    verify_epoch_key(key, self._roster)
            for key in batch:
                if key.silo_id != self.silo_id and not self._ended(key.epoch):
                    self._peer_keys[(key.silo_id, key.epoch)] = key

    def _peer_public(self, peer: str, epoch: int) -> tuple[bytes, Roster]:
        with self._lock:
            if self._ended(epoch):
                raise ProtocolError(f"epoch {epoch} has ended; its pair keys are gone")
            roster = self._roster
            published = self._peer_keys.get((peer, epoch))
        if self._store is None:
            return roster.entry(peer).x25519_public, roster
        if published is None:
            raise ProtocolError(
                f"silo {self.silo_id} holds no verified epoch {epoch} key for peer {peer}; "
                "refusing to mask without it"
            )
        return published.x25519_public, roster

    def _own(self, epoch: int) -> keys.SiloKeyPair:
        return self._keypair if self._store is None else self._store.keypair(epoch)

    def pair_key(self, peer: str, epoch: int) -> bytes:
        """K_{self,peer}^e, from the cache or derived once.

        Args:
            peer: The other silo's id.
            epoch: The query's epoch.

        Returns:
            The 32-byte pair key.

        Raises:
            ProtocolError: If the epoch has ended, the peer is not in the roster, its epoch key
                is missing, this silo's epoch key is missing, or the peer key is invalid.
        """
        peer_public, roster = self._peer_public(peer, epoch)
        slot = (peer, epoch, peer_public)
        with self._lock:
            cached = self._cache.get(slot)
        if cached is not None:
            return cached
        own = self._own(epoch)  # loaded only on a miss: a cached key needs no private key
        derived = keys.pair_key(
            own.private_bytes,
            peer_public,
            roster.fed_id,
            epoch,
            self.silo_id,
            peer,
            own.public_bytes,
            peer_public,
        )
        del own
        with self._lock:
            # A roster switch or an ended epoch meanwhile must not be undone by caching.
            if self._roster is roster and not self._ended(epoch):
                self._cache[slot] = derived
        return derived

    def end_epoch(self, epoch: int) -> None:
        """Forget everything of ``epoch`` and earlier: own private keys, peers' keys, pair keys.

        Args:
            epoch: The last epoch to end.
        """
        with self._lock:
            if self._ended_through is None or epoch > self._ended_through:
                self._ended_through = epoch
        if self._store is not None:
            self._store.end_epoch(epoch)
        with self._lock:
            self._peer_keys = {slot: k for slot, k in self._peer_keys.items() if slot[1] > epoch}
            self._cache = {slot: k for slot, k in self._cache.items() if slot[1] > epoch}
