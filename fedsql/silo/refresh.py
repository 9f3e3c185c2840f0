"""Refreshing a running silo's snapshot: a signal to the silo process, an outcome file back.

``fedsql silo serve`` writes its process id to ``<state>/<silo id>.pid`` and reloads its snapshot
on ``SIGHUP``, in a background thread: the previous snapshot serves every query until the new
one is loaded and checked. The outcome goes to ``<state>/<silo id>.refresh.json`` (how many
refreshes have finished, whether the last one worked, its message and load time), where
``fedsql silo refresh`` waits for it. Only the silo's own operator (who can signal its process
and read its state folder) can ask for a refresh, and no port is opened for it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from fedsql.errors import ConfigError, Error, OperationalError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RefreshOutcome:
    """What the last refresh did: ``done`` counts finished refreshes since the silo started."""

    done: int
    ok: bool
    message: str
    seconds: float


def pid_file(state: Path, silo_id: str) -> Path:
    """Where a serving silo keeps its process id."""
    return state / f"{silo_id}.pid"


def outcome_file(state: Path, silo_id: str) -> Path:
    """Where a serving silo writes the outcome of its last refresh."""
    return state / f"{silo_id}.refresh.json"


def read_outcome(state: Path, silo_id: str) -> RefreshOutcome | None:
    """The last refresh's outcome, or None if there was none."""
    try:
        data = json.loads(outcome_file(state, silo_id).read_text())
        return RefreshOutcome(**data)
    except (OSError, ValueError, TypeError):
        return None


class RefreshControl:
    """The serving side: the pid file, the SIGHUP handler and the outcome file.

    Args:
        state: The silo's state folder.
        silo_id: The silo's id.
        reload: Loads a new snapshot and returns the seconds it took; raises on failure.
    """

    def __init__(self, state: Path, silo_id: str, reload: Callable[[], float]) -> None:
        self.state = state
        self.silo_id = silo_id
        self._reload = reload
        self._lock = threading.Lock()
        self._done = 0
        self._pending = threading.Event()

    def install(self) -> None:
        """Write the pid file and handle SIGHUP (call from the main thread)."""
        self.state.mkdir(parents=True, exist_ok=True)
        outcome_file(self.state, self.silo_id).unlink(missing_ok=True)
        pid_file(self.state, self.silo_id).write_text(f"{os.getpid()}\n")
        signal.signal(signal.SIGHUP, self._on_signal)

    def uninstall(self) -> None:
        """Remove the pid file."""
        pid_file(self.state, self.silo_id).unlink(missing_ok=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=self.refresh, name=f"refresh-{self.silo_id}", daemon=True).start()

    def refresh(self) -> RefreshOutcome:
        """Reload now (one refresh at a time) and write the outcome."""
        with self._lock:
            start = time.perf_counter()
            try:
                seconds = self._reload()
                ok, message = True, f"snapshot of silo {self.silo_id} reloaded"
            except Error as exc:
                seconds = time.perf_counter() - start
                ok, message = False, f"refresh failed, the previous snapshot serves on: {exc}"
            log.info("silo %s: %s", self.silo_id, message)
            self._done += 1
            outcome = RefreshOutcome(self._done, ok, message, round(seconds, 3))
            target = outcome_file(self.state, self.silo_id)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(outcome)))
            tmp.replace(target)
            return outcome


def request_refresh(state: Path, silo_id: str, timeout_s: float = 600.0) -> RefreshOutcome:
    """Ask the silo serving from ``state`` to reload its snapshot, and wait for the outcome.

    Raises:
        ConfigError: No silo of that id serves from that folder.
        OperationalError: The silo did not finish within ``timeout_s``.
    """
    try:
        pid = int(pid_file(state, silo_id).read_text())
    except (OSError, ValueError):
        raise ConfigError(
            f"no silo {silo_id} is serving from this state folder (no {silo_id}.pid); start it "
            "with fedsql silo serve",
            key="state",
        ) from None
    before = read_outcome(state, silo_id)
    done = before.done if before else 0
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise ConfigError(
            f"silo {silo_id} is not running (its pid file is stale); start it with "
            "fedsql silo serve",
            key="state",
        ) from None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcome = read_outcome(state, silo_id)
        if outcome is not None and outcome.done > done:
            return outcome
        time.sleep(0.1)
    raise OperationalError(f"silo {silo_id} did not finish its refresh in {timeout_s:g} s")
