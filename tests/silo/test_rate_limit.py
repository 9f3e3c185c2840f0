"""Per-analyst rate limits: a sliding window, refusals that cost nothing, counts that survive."""

from __future__ import annotations

import doctest
import threading
from pathlib import Path

import pytest

from fedsql.catalog import RateLimit
from fedsql.errors import DataError, IntegrityError, QueryRejected
from fedsql.silo import rate_limit
from fedsql.silo.rate_limit import RateLimiter

T0 = 1_750_000_000.0
THREE_PER_MINUTE = RateLimit(queries=3, window_s=60)


def test_module_examples_hold() -> None:
    assert doctest.testmod(rate_limit).failed == 0


def test_the_limit_is_a_sliding_window() -> None:
    limiter = RateLimiter()
    for t in (0.0, 1.0, 2.0):
        limiter.check_and_record("alice", T0 + t, THREE_PER_MINUTE)
    with pytest.raises(QueryRejected) as caught:
        limiter.check_and_record("alice", T0 + 3.0, THREE_PER_MINUTE)
    message = str(caught.value)
    assert "rate limit of 3 queries per minute (limits.rate_limit)" in message
    assert "try again in 57 seconds" in message
    # The first query leaves the window 60 s after it was sent, not before.
    with pytest.raises(QueryRejected):
        limiter.check_and_record("alice", T0 + 59.999, THREE_PER_MINUTE)
    limiter.check_and_record("alice", T0 + 60.0, THREE_PER_MINUTE)
    assert limiter.recent("alice", T0 + 60.0, 60) == 3


def test_refused_queries_are_not_counted() -> None:
    limiter = RateLimiter()
    for t in range(3):
        limiter.check_and_record("alice", T0 + t, THREE_PER_MINUTE)
    for t in range(10):
        with pytest.raises(QueryRejected):
            limiter.check_and_record("alice", T0 + 3 + t, THREE_PER_MINUTE)
    assert limiter.recent("alice", T0 + 20, 60) == 3


def test_analysts_are_limited_separately() -> None:
    limiter = RateLimiter()
    for t in range(3):
        limiter.check_and_record("alice", T0 + t, THREE_PER_MINUTE)
    limiter.check_and_record("bob", T0 + 3, THREE_PER_MINUTE)


def test_a_changed_limit_applies_at_once() -> None:
    limiter = RateLimiter()
    for t in range(5):
        limiter.check_and_record("alice", T0 + t, None)  # no limit, but counted
    with pytest.raises(QueryRejected):
        limiter.check_and_record("alice", T0 + 5, RateLimit(5, 3600))
    limiter.check_and_record("alice", T0 + 5, RateLimit(6, 3600))
    with pytest.raises(QueryRejected, match=r"per 10800 seconds .* try again in 3 hours"):
        limiter.check_and_record("alice", T0 + 6, RateLimit(6, 3 * 3600))


def test_counts_survive_a_restart_and_are_shared_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.sqlite"
    first = RateLimiter(path)
    for t in range(3):
        first.check_and_record("alice", T0 + t, THREE_PER_MINUTE)
    first.close()
    second, third = RateLimiter(path), RateLimiter(path)
    with pytest.raises(QueryRejected):
        second.check_and_record("alice", T0 + 10, THREE_PER_MINUTE)
    with pytest.raises(QueryRejected):
        third.check_and_record("alice", T0 + 10, THREE_PER_MINUTE)


def test_concurrent_callers_never_let_more_through_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "rates.sqlite"
    limit = RateLimit(queries=50, window_s=3600)
    admitted: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        limiter = RateLimiter(path)  # one connection each, as separate processes would have
        for i in range(20):
            try:
                limiter.check_and_record("alice", T0 + i / 100, limit)
            except QueryRejected:
                continue
            with lock:
                admitted.append(i)
        limiter.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 50
    assert RateLimiter(path).recent("alice", T0 + 1, 3600) == 50


def test_old_history_is_pruned(tmp_path: Path) -> None:
    limiter = RateLimiter()
    for t in range(100):
        limiter.check_and_record("alice", T0 + t, None)
    limiter.check_and_record("alice", T0 + 2 * 86_400, None)
    assert limiter.recent("alice", T0 + 2 * 86_400, 10 * 86_400) == 1


def test_bad_arguments_and_files(tmp_path: Path) -> None:
    limiter = RateLimiter()
    with pytest.raises(DataError):
        limiter.check_and_record("", T0, None)
    with pytest.raises(DataError):
        limiter.check_and_record("alice", float("nan"), None)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IntegrityError):
        RateLimiter(junk)
