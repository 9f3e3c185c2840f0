"""The long-running silo process: dial the hub, serve, reconnect with jittered backoff, stop."""

from __future__ import annotations

import logging
import random
import signal
import threading
from types import FrameType

from fedsql.errors import ConfigError, Error
from fedsql.silo.agent import SiloAgent

log = logging.getLogger(__name__)

#: Reconnection backoff: first delay, ceiling and jitter fraction.
BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 10.0
BACKOFF_JITTER = 0.5


class Backoff:
    """Exponential reconnection delays with jitter: 0.2 s doubling to 10 s, each +-50%.

    >>> b = Backoff(random.Random(1))
    >>> [round(b.next_delay(), 2) for _ in range(3)]
    [0.13, 0.54, 1.01]
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        """Start from the first delay."""
        self._rng = rng or random.Random()
        self._base = BACKOFF_FIRST_S

    def next_delay(self) -> float:
        """The next delay in seconds."""
        base = self._base
        self._base = min(BACKOFF_MAX_S, self._base * 2)
        return base * (1 + BACKOFF_JITTER * (2 * self._rng.random() - 1))

    def reset(self) -> None:
        """Start again from the first delay (after a connection that worked)."""
        self._base = BACKOFF_FIRST_S


def serve_silo(
    agent: SiloAgent,
    target: str,
    *,
    stop: threading.Event | None = None,
    credentials: object | None = None,
    server_name: str | None = None,
) -> None:
    """Keep ``agent`` connected to the hub at ``target`` until SIGTERM/SIGINT or ``stop``.

    The silo dials out (clinics open no inbound port). When the stream ends, it reconnects with
    jittered exponential backoff; its ledger and replay log are on disk, so nothing is charged
    twice across reconnects or restarts.
    """
    done = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("silo %s received signal %d; stopping", agent.silo_id, signum)
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    delays = Backoff()
    try:
        while not done.is_set():
            try:
                agent.connect(target, credentials=credentials, server_name=server_name)
            except ConfigError:
                raise  # a wrong setup does not fix itself by retrying
            except Error as exc:
                delay = delays.next_delay()
                log.warning(
                    "silo %s could not join the hub at %s (%s); retrying in %.1f s",
                    agent.silo_id,
                    target,
                    exc,
                    delay,
                )
                done.wait(delay)
                continue
            delays.reset()
            log.info("silo %s connected to %s", agent.silo_id, target)
            while not done.is_set() and not agent.wait_disconnected(0.5):
                pass
            if not done.is_set():
                delay = delays.next_delay()
                log.warning("silo %s lost the hub; reconnecting in %.1f s", agent.silo_id, delay)
                done.wait(delay)
    finally:
        agent.close()
        log.info("silo %s stopped", agent.silo_id)
