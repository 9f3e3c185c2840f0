"""Test logs: a fixed owner key, a steady clock, and logs of varied entries."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from fedsql.audit import AuditLog, AuditRecord
from fedsql.secagg.identity import IdentityKey, verify_signature

#: The owner's key of every test log (fixed, so logs are reproducible).
OWNER = IdentityKey.from_private_bytes(bytes(range(32)))
#: Someone else's key.
INTRUDER = IdentityKey.from_private_bytes(bytes(range(1, 33)))
LOG_ID = "silo:clinic-a"

SQL_SAMPLES = (
    "SELECT sex, COUNT(*) FROM patients GROUP BY sex",
    "SELECT AVG(bmi) FROM patients WHERE age >= ?",
    "SELECT 1 /* \u202e hidden */ -- \x1b[2J",
    "SELECT test, AVG(value) FROM labs\nGROUP BY test",
)


def steady_clock(start: int = 1_750_000_000_000) -> Callable[[], int]:
    """A clock that advances one second per reading."""
    ticks = itertools.count(start, 1000)
    return lambda: next(ticks)


def sample_record(i: int) -> AuditRecord:
    """The i-th record of a test log: requests and releases by a few analysts."""
    if i % 3 == 2:
        return AuditRecord(
            event="release",
            actor=LOG_ID,
            analyst=("alice", "bob", "carol")[i % 3],
            qid=f"{i:032x}",
            decision="released",
            release_digest=f"{i:064x}",
        )
    return AuditRecord(
        event="request",
        actor=LOG_ID,
        analyst=("alice", "bob", "carol")[i % 3],
        qid=f"{i:032x}",
        plan_hash=f"{i * 7:064x}",
        sql=SQL_SAMPLES[i % len(SQL_SAMPLES)],
        params_json="[40]" if i % 2 else "",
        decision="admitted" if i % 5 else "refused",
        reason="" if i % 5 else "epsilon 2 is above this clinic's per-query cap of 1",
        epsilon_micro=0 if i % 5 == 0 else 250_000 * (1 + i % 4),
    )


def write_log(path: Path, entries: int, *, sign_every: int = 1) -> None:
    """Write and close a log of ``entries`` sample records."""
    with AuditLog(
        path,
        OWNER,
        verify_signature,
        log_id=LOG_ID,
        sign_every=sign_every,
        durable=False,
        clock=steady_clock(),
    ) as log:
        for i in range(entries):
            log.append(sample_record(i))
