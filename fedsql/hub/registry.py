"""The hub's registry of connected silos and the roster it derives from them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from fedsql.errors import ProtocolError
from fedsql.transport.messages import Hello, RosterEntry, Welcome
from fedsql.transport.server import SiloChannel


def now_ms() -> int:
    """Wall-clock milliseconds."""
    return int(time.time() * 1000)


@dataclass
class ConnectedSilo:
    """One silo on the hub's books: what it said in its hello and the channel to reach it."""

    hello: Hello
    channel: SiloChannel
    connected_since_ms: int = field(default_factory=now_ms)
    last_seen_ms: int = field(default_factory=now_ms)

    @property
    def silo_id(self) -> str:
        """The silo's identifier."""
        return self.hello.silo_id


class Registry:
    """Thread-safe set of connected silos; every change bumps the roster version."""

    def __init__(self, fed_id: str, contract_fingerprint: str) -> None:
        """Start empty for federation ``fed_id``."""
        self.fed_id = fed_id
        self.contract_fingerprint = contract_fingerprint
        self.epoch = 0
        self.version = 0
        self._silos: dict[str, ConnectedSilo] = {}
        self._lock = threading.Lock()

    def add(self, hello: Hello, channel: SiloChannel) -> None:
        """Register a silo that said hello.

        Raises:
            ProtocolError: It enrolled with another contract, or its id is already connected.
        """
        if hello.contract_fingerprint != self.contract_fingerprint:
            raise ProtocolError(
                f"silo {hello.silo_id} runs a different federation contract than the hub"
            )
        with self._lock:
            if hello.silo_id in self._silos:
                raise ProtocolError(f"silo {hello.silo_id} is already connected")
            self._silos[hello.silo_id] = ConnectedSilo(hello, channel)
            self.version += 1

    def remove(self, silo_id: str) -> None:
        """Forget a silo whose stream ended."""
        with self._lock:
            if self._silos.pop(silo_id, None) is not None:
                self.version += 1

    def touch(self, silo_id: str) -> None:
        """Note that a silo was heard from."""
        with self._lock:
            silo = self._silos.get(silo_id)
            if silo is not None:
                silo.last_seen_ms = now_ms()

    def snapshot(self) -> tuple[int, list[ConnectedSilo]]:
        """The roster version and the connected silos, sorted by id."""
        with self._lock:
            return self.version, [self._silos[k] for k in sorted(self._silos)]

    def welcome(self) -> Welcome:
        """The roster as sent to every silo: ids, 1-based indices and public keys."""
        version, silos = self.snapshot()
        return Welcome(
            fed_id=self.fed_id,
            roster_version=version,
            epoch=self.epoch,
            roster=tuple(
                RosterEntry(silo_id=s.silo_id, index=i + 1, x25519_public=s.hello.x25519_public)
                for i, s in enumerate(silos)
            ),
            hub_version="",
        )
