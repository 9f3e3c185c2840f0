"""The durable query-id log: one claim per qid, across threads, processes and restarts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from fedsql.errors import ConfigError, OperationalError, ProtocolError
from fedsql.secagg.encoding import CoordinateSpec
from fedsql.secagg.messages import Descriptor
from fedsql.secagg.qid_log import QidLog
from fedsql.secagg.silo_session import RoundState, SiloSession

from .harness import Federation, make_descriptor, make_federation, qid_for

SPEC = CoordinateSpec(bound=1000.0, frac_bits=0)


def test_a_qid_is_claimed_once(tmp_path: Path) -> None:
    with QidLog(tmp_path / "qids.sqlite") as log:
        a, b = qid_for("log/a"), qid_for("log/b")
        assert log.claim(a) is True
        assert log.claim(a) is False
        assert log(b) is True  # the log is the session's claim_qid hook
        assert log(b) is False
        assert a in log and b in log and qid_for("log/c") not in log
        assert "not a qid" not in log
        assert len(log) == 2


def test_claims_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "qids.sqlite"
    log = QidLog(path)
    qids = [qid_for(f"log/restart/{i}") for i in range(20)]
    assert all(log.claim(q) for q in qids)
    log.close()
    with pytest.raises(OperationalError, match="closed"):
        log.claim(qid_for("log/after-close"))
    reopened = QidLog(path)
    assert not any(reopened.claim(q) for q in qids)
    assert reopened.claim(qid_for("log/restart/new"))
    assert len(reopened) == 21
    reopened.close()


_CHILD = """
import os, sys
from fedsql.secagg.qid_log import QidLog
log = QidLog(sys.argv[1])
print(log.claim(bytes.fromhex(sys.argv[2])), flush=True)
os._exit(0)  # die without closing anything, as a crash would
"""


def test_a_claim_made_by_a_process_that_died_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "qids.sqlite"
    qid = qid_for("log/crash")
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), qid.hex()],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert child.stdout.strip() == "True"
    with QidLog(path) as log:
        assert log.claim(qid) is False
        assert log.claim(qid_for("log/crash/other")) is True


def test_concurrent_claims_of_one_qid_succeed_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "qids.sqlite"
    logs = [QidLog(path) for _ in range(2)]  # two handles, as two processes would have
    qid = qid_for("log/race")
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def claim(log: QidLog) -> None:
        barrier.wait()
        outcome = log.claim(qid)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=claim, args=(logs[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    for log in logs:
        log.close()


def test_malformed_qids_and_unusable_files_are_refused(tmp_path: Path) -> None:
    with QidLog(tmp_path / "qids.sqlite") as log, pytest.raises(ProtocolError, match="16 bytes"):
        log.claim(b"short")
    with pytest.raises(ConfigError, match=r"cannot open|not a usable"):
        QidLog(tmp_path / "missing-dir" / "qids.sqlite")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match="not a usable query-id log"):
        QidLog(garbage)
    future = tmp_path / "future.sqlite"
    conn = sqlite3.connect(future)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="schema version 99"):
        QidLog(future)


def test_the_log_is_durable_by_configuration(tmp_path: Path) -> None:
    with QidLog(tmp_path / "qids.sqlite") as log:
        conn = log._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_restarted_silo_refuses_a_replayed_query(tmp_path: Path) -> None:
    fed = make_federation(3, label="log/silo", signed=True)
    path = tmp_path / "clinic-000.qids"
    desc = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("log/silo"))
    x = np.zeros(4, dtype=np.int64)
    log = QidLog(path)
    first = fed.new_session("clinic-000", claim_qid=log)
    first.upload(desc, x)
    log.close()  # the process goes away, and its memory of the query with it
    del first
    restarted = fed.new_session("clinic-000", claim_qid=QidLog(path))
    with pytest.raises(ProtocolError, match="replayed"):
        restarted.accept(desc)
    with pytest.raises(ProtocolError, match="replayed"):
        restarted.upload(desc, x)
    assert restarted.state(desc.qid) is None
    fresh = make_descriptor(fed, cells=4, specs=(SPEC,), qid=qid_for("log/silo/fresh"))
    restarted.upload(fresh, x)
    assert restarted.state(fresh.qid) is RoundState.UPLOADED


def _accepted_then_aborted(
    fed: Federation, session: SiloSession, label: str, count: int
) -> list[Descriptor]:
    """``count`` fresh queries, each accepted by ``session`` and then aborted by it."""
    descriptors = [
        make_descriptor(fed, cells=2, specs=(SPEC,), qid=qid_for(f"{label}/{i}"))
        for i in range(count)
    ]
    for desc in descriptors:
        session.accept(desc)
        session.abort(desc.qid)
    return descriptors


def test_a_long_running_silo_forgets_old_rounds_but_still_refuses_their_replays(
    tmp_path: Path,
) -> None:
    fed = make_federation(3, label="log/forget")
    log = QidLog(tmp_path / "clinic-000.qids")
    session = fed.new_session("clinic-000", claim_qid=log, keep_finished=4)
    descriptors = _accepted_then_aborted(fed, session, "log/forget", 20)
    assert len(session._rounds) <= 8
    assert session.state(descriptors[0].qid) is None  # forgotten
    assert session.state(descriptors[-1].qid) is RoundState.CLOSED
    with pytest.raises(ProtocolError, match="replayed"):
        session.accept(descriptors[0])  # the durable log still refuses it


def test_without_a_durable_log_a_silo_keeps_every_round_to_refuse_replays() -> None:
    fed = make_federation(3, label="log/keep")
    session = fed.new_session("clinic-000", keep_finished=4)
    descriptors = _accepted_then_aborted(fed, session, "log/keep", 20)
    assert len(session._rounds) == 20
    with pytest.raises(ProtocolError, match="replayed"):
        session.accept(descriptors[0])
