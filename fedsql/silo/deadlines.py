"""Query time limits without a thread per query: one watchdog thread fires expired deadlines."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog", "watchdog"]

log = logging.getLogger(__name__)


class Watchdog:
    """Calls each armed callback once, on its own daemon thread, when its deadline passes.

    Arming and disarming are cheap and never start a thread (the watchdog's thread starts with
    the first deadline and then lives as long as the process), so a query pays no thread start
    for its time limit. A callback should be short; an exception it raises is logged.

    >>> fired = threading.Event()
    >>> dog = Watchdog()
    >>> token = dog.arm(0.01, fired.set)
    >>> fired.wait(5)
    True
    >>> dog.disarm(dog.arm(60, fired.clear))
    """

    def __init__(self) -> None:
        """An idle watchdog."""
        self._cond = threading.Condition()
        self._armed: dict[int, Callable[[], None]] = {}
        self._heap: list[tuple[float, int]] = []
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, timeout_s: float, callback: Callable[[], None]) -> int:
        """Call ``callback`` in ``timeout_s`` seconds unless disarmed first.

        Args:
            timeout_s: Seconds from now.
            callback: What to call once the time has passed.

        Returns:
            The token to pass to :meth:`disarm`.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            token = next(self._tokens)
            self._armed[token] = callback
            if len(self._heap) > 2 * len(self._armed) + 64:  # drop disarmed entries
                self._heap = [entry for entry in self._heap if entry[1] in self._armed]
                heapq.heapify(self._heap)
            earliest = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="fedsql-query-deadlines", daemon=True
                )
                self._thread.start()
            elif earliest:
                self._cond.notify()  # the thread sleeps until a later deadline
        return token

    def disarm(self, token: int) -> None:
        """Cancel an armed callback (nothing happens if it already fired)."""
        with self._cond:
            self._armed.pop(token, None)

    def _watch(self) -> None:
        while True:
            with self._cond:
                callback = None
                while callback is None:
                    while self._heap and self._heap[0][1] not in self._armed:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    deadline, token = self._heap[0]
                    left = deadline - time.monotonic()
                    if left > 0:
                        self._cond.wait(left)
                        continue
                    heapq.heappop(self._heap)
                    callback = self._armed.pop(token)
            try:
                callback()
            except Exception:
                log.exception("a query deadline's callback failed")


#: The process's watchdog for partial queries' time limits.
watchdog = Watchdog()
