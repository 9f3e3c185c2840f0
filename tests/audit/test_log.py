"""The audit log writer: durable appends, signed heads, reopening, crash recovery, one writer."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from fedsql.audit import AuditLog, AuditRecord, head_path_for, verify_log
from fedsql.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from fedsql.errors import IntegrityError, OperationalError
from fedsql.secagg.identity import verify_signature

from .logs import INTRUDER, LOG_ID, OWNER, sample_record, steady_clock, write_log


def open_log(path: Path, **options: object) -> AuditLog:
    settings: dict[str, object] = {"log_id": LOG_ID, "durable": False, "clock": steady_clock()}
    settings.update(options)
    return AuditLog(path, OWNER, verify_signature, **settings)  # type: ignore[arg-type]


def verify(path: Path) -> tuple[int, int]:
    report, _ = verify_log(path, verify_signature, key=OWNER.public_bytes, log_id=LOG_ID)
    return report.entries, report.unsigned


def test_a_new_log_starts_with_the_signed_head_of_the_empty_tree(log_path: Path) -> None:
    with open_log(log_path) as log:
        assert log.size == 0
        assert log.head.size == 0
        assert log.head.verifies(verify_signature)
    assert log_path.read_bytes().count(b"\n") == 1
    assert head_path_for(log_path).exists()
    assert verify(log_path) == (0, 0)


def test_appends_are_numbered_chained_and_signed(log_path: Path) -> None:
    with open_log(log_path) as log:
        receipts = [log.append(sample_record(i)) for i in range(5)]
        assert [r.seq for r in receipts] == [0, 1, 2, 3, 4]
        assert all(r.head is not None and r.head.size == r.seq + 1 for r in receipts)
        entries = log.entries()
    assert [e.seq for e in entries] == [0, 1, 2, 3, 4]
    assert entries[0].record == sample_record(0).stored()
    assert verify(log_path) == (5, 0)


def test_times_never_go_backwards_along_the_log(log_path: Path) -> None:
    readings = iter([5_000, 9_000, 7_000, 6_000, 12_000])
    with open_log(log_path, clock=lambda: next(readings)) as log:
        stamps = [log.append(sample_record(i)).at_ms for i in range(4)]
    assert stamps == [9_000, 9_000, 9_000, 12_000]


def test_reopening_continues_the_same_tree(log_path: Path) -> None:
    write_log(log_path, 4)
    with open_log(log_path) as log:
        old_head = log.head
        assert log.size == 4
        log.append(sample_record(4))
        new_head = log.head
        proof = log.consistency_proof(old_head.size)
        inclusion = log.inclusion_proof(2)
        entries = log.entries()
    assert verify_consistency(old_head.size, 5, old_head.root, new_head.root, proof)
    assert verify_inclusion(2, 5, leaf_hash(entries[2].line), inclusion, new_head.root)
    assert not verify_inclusion(2, 5, leaf_hash(entries[3].line), inclusion, new_head.root)
    assert verify(log_path) == (5, 0)


def test_heads_every_few_entries_and_on_close(log_path: Path) -> None:
    with open_log(log_path, sign_every=3) as log:
        heads = [log.append(sample_record(i)).head for i in range(7)]
        assert [h is not None for h in heads] == [False, False, True, False, False, True, False]
        assert log.unsigned == 1
        # Readers see the unsigned tail while the log is open ...
        assert verify(log_path) == (7, 1)
        on_demand = log.sign_head()
        assert on_demand.size == 7 and log.unsigned == 0
        log.append(sample_record(7))
    # ... and closing signs what is left.
    assert verify(log_path) == (8, 0)


def test_stored_text_is_escaped_in_the_file(log_path: Path) -> None:
    with open_log(log_path) as log:
        log.append(AuditRecord(event="request", sql="SELECT 1 -- \u202e\x1b[31m\nDROP", reason="é"))
    data = log_path.read_bytes()
    assert data.isascii()
    text = data.decode()
    assert all(ch.isprintable() or ch == "\n" for ch in text)
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\\\u202e\\\\x1b[31m\\\\nDROP" in text  # escaped, then JSON-quoted


def test_a_torn_last_line_is_cut_and_recorded(log_path: Path) -> None:
    write_log(log_path, 3)
    torn = b'{"actor":"silo:clinic-a","analyst":"al'  # a write cut short by a crash
    with log_path.open("ab") as stream:
        stream.write(torn)
    report, _ = verify_log(log_path, verify_signature, key=OWNER.public_bytes)
    assert (report.entries, report.torn) == (3, len(torn))  # a write in progress, not a change
    with open_log(log_path) as log:
        entries = log.entries()
    assert entries[-1].record.event == "recovery"
    assert f"{len(torn)} bytes" in entries[-1].record.reason
    assert verify(log_path) == (4, 0)


def test_a_torn_first_write_starts_a_new_log(log_path: Path) -> None:
    log_path.write_bytes(b'{"at":17')
    with open_log(log_path) as log:
        assert log.size == 1  # the recovery entry
    assert verify(log_path) == (1, 0)


def test_one_writer_at_a_time(log_path: Path) -> None:
    with open_log(log_path), pytest.raises(OperationalError, match="another process"):
        open_log(log_path)
    with open_log(log_path) as log:  # released on close
        log.append(sample_record(0))


def test_a_closed_log_refuses_appends(log_path: Path) -> None:
    log = open_log(log_path)
    log.close()
    log.close()
    with pytest.raises(OperationalError, match="closed"):
        log.append(sample_record(0))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("key", "another key"),
        ("log_id", "not 'silo:clinic-b'"),
        ("tamper", "does not chain|signed root"),
        ("no_head_file", "head file is missing"),
        ("emptied", "emptied"),
        ("cut_mid_line", "no longer holds its kept signed head"),
    ],
)
def test_a_log_that_does_not_verify_is_never_appended_to(
    log_path: Path, change: str, match: str
) -> None:
    write_log(log_path, 3)
    options: dict[str, object] = {}
    signer = OWNER
    if change == "key":
        signer = INTRUDER
    elif change == "log_id":
        options["log_id"] = "silo:clinic-b"
    elif change == "tamper":
        log_path.write_bytes(log_path.read_bytes().replace(b"alice", b"mallo", 1))
    elif change == "no_head_file":
        head_path_for(log_path).unlink()
    elif change == "cut_mid_line":  # looks like a torn write, but cuts into signed lines
        log_path.write_bytes(log_path.read_bytes()[:-100])
    else:
        log_path.write_bytes(b"")
    before = log_path.read_bytes()
    settings: dict[str, object] = {"log_id": LOG_ID, "durable": False, **options}
    with pytest.raises(IntegrityError, match=match):
        AuditLog(log_path, signer, verify_signature, **settings)  # type: ignore[arg-type]
    assert log_path.read_bytes() == before


def test_threads_append_without_losing_or_mixing_entries(log_path: Path) -> None:
    counter = itertools.count()
    with open_log(log_path, durable=True) as log:

        def work() -> None:
            for _ in range(25):
                log.append(sample_record(next(counter)))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seqs = [e.seq for e in log.entries()]
    assert seqs == list(range(200))
    assert verify(log_path) == (200, 0)


def test_bad_arguments(log_path: Path) -> None:
    with pytest.raises(ValueError):
        open_log(log_path, sign_every=0)
    with pytest.raises(ValueError):
        open_log(log_path, log_id="Silo A")
    with open_log(log_path) as log:
        log.append(sample_record(0))
        with pytest.raises(ValueError):
            log.inclusion_proof(0, size=5)
        with pytest.raises(ValueError):
            log.consistency_proof(0, new_size=9)
