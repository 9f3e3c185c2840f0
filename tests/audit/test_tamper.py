"""Any change to a closed audit log is caught: flipped bytes, deleted, reordered or cut entries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsql.audit import head_path_for, verify_log
from fedsql.audit.heads import sign_head
from fedsql.audit.merkle import Frontier, leaf_hash
from fedsql.audit.records import AuditRecord, canonical_json, encode_entry
from fedsql.errors import IntegrityError
from fedsql.secagg.identity import verify_signature

from .logs import INTRUDER, LOG_ID, OWNER, write_log

ENTRIES = 40
EXAMPLES = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module", params=[1, 4], ids=["sign_every_1", "sign_every_4"])
def original(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a closed log of 40 entries (its head file is written beside it)."""
    folder = tmp_path_factory.mktemp(f"log{request.param}")
    write_log(folder / "audit.log", ENTRIES, sign_every=request.param)
    return (
        (folder / "audit.log").read_bytes()
        + b"\0"
        + head_path_for(folder / "audit.log").read_bytes()
    )


def split(blob: bytes) -> tuple[bytes, bytes]:
    log, head = blob.split(b"\0", 1)
    return log, head


def verifies(folder: Path, log: bytes, head: bytes, *, pinned: bool = True) -> bool:
    """Whether ``log`` with head file ``head`` passes verification (owner's key pinned)."""
    (folder / "audit.log").write_bytes(log)
    head_path_for(folder / "audit.log").write_bytes(head)
    try:
        verify_log(
            folder / "audit.log",
            verify_signature,
            key=OWNER.public_bytes if pinned else None,
            log_id=LOG_ID,
        )
    except IntegrityError:
        return False
    return True


def test_the_untouched_log_verifies(original: bytes, tmp_path: Path) -> None:
    log, head = split(original)
    assert verifies(tmp_path, log, head)
    report, entries = verify_log(tmp_path / "audit.log", verify_signature, keep_entries=True)
    assert report.entries == len(entries) == ENTRIES
    assert report.unsigned == 0
    assert not report.key_pinned
    assert report.key == OWNER.public_bytes


@EXAMPLES
@given(data=st.data())
def test_flipping_any_byte_of_the_log_fails(
    original: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    log, head = split(original)
    position = data.draw(st.integers(0, len(log) - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    changed = bytearray(log)
    changed[position] ^= mask
    assert not verifies(tmp_path, bytes(changed), head)


@EXAMPLES
@given(data=st.data())
def test_flipping_any_byte_of_the_head_file_fails(
    original: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    log, head = split(original)
    # The head file is the head line, a newline and space padding; padding is not content.
    content = len(head.rstrip(b" "))
    position = data.draw(st.integers(0, content - 1), label="position")
    mask = data.draw(st.integers(1, 255), label="mask")
    changed = bytearray(head)
    changed[position] ^= mask
    if bytes(changed).rstrip(b" ") == head.rstrip(b" ").rstrip(b"\n"):
        return  # turning the final newline into a space leaves the same head line
    assert not verifies(tmp_path, log, bytes(changed))


def entry_lines(log: bytes) -> list[int]:
    lines = log.split(b"\n")[:-1]
    return [i for i, line in enumerate(lines) if json.loads(line)["type"] == "entry"]


@EXAMPLES
@given(data=st.data())
def test_deleting_any_entry_fails(original: bytes, tmp_path: Path, data: st.DataObject) -> None:
    log, head = split(original)
    lines = log.split(b"\n")[:-1]
    victim = data.draw(st.sampled_from(entry_lines(log)), label="line")
    kept = lines[:victim] + lines[victim + 1 :]
    assert not verifies(tmp_path, b"\n".join(kept) + b"\n", head)


@EXAMPLES
@given(data=st.data())
def test_reordering_any_two_lines_fails(
    original: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    log, head = split(original)
    lines = log.split(b"\n")[:-1]
    first = data.draw(st.integers(0, len(lines) - 1), label="first")
    second = data.draw(
        st.integers(0, len(lines) - 1).filter(lambda j: lines[j] != lines[first]), label="second"
    )
    lines[first], lines[second] = lines[second], lines[first]
    assert not verifies(tmp_path, b"\n".join(lines) + b"\n", head)


@EXAMPLES
@given(data=st.data())
def test_truncating_at_any_byte_fails(original: bytes, tmp_path: Path, data: st.DataObject) -> None:
    log, head = split(original)
    length = data.draw(st.integers(0, len(log) - 1), label="length")
    assert not verifies(tmp_path, log[:length], head)


def test_truncating_at_every_line_boundary_fails(original: bytes, tmp_path: Path) -> None:
    log, head = split(original)
    ends = [i + 1 for i, byte in enumerate(log) if byte == ord("\n")][:-1]
    assert ends
    for end in ends:
        assert not verifies(tmp_path, log[:end], head), end


def rewrite(log: bytes, drop_seq: int, key: object) -> tuple[bytes, bytes]:
    """The log with entry ``drop_seq`` removed and everything after it re-chained and re-signed
    by ``key``: what someone who knows the format but not the owner's key could produce."""
    entries = [json.loads(line) for line in log.split(b"\n")[:-1]]
    records = [e for e in entries if e["type"] == "entry" and e["seq"] != drop_seq]
    frontier = Frontier()
    first = sign_head(LOG_ID, 0, frontier.root(), 1, key)  # type: ignore[arg-type]
    out = [first.line()]
    at = 1
    for seq, obj in enumerate(records):
        record = AuditRecord(
            **{k: v for k, v in obj.items() if k not in ("type", "seq", "at", "prev")}
        )
        at = obj["at"]
        line = encode_entry(seq, at, frontier.root(), record)
        frontier.append(leaf_hash(line))
        out.append(line)
        out.append(sign_head(LOG_ID, seq + 1, frontier.root(), at, key).line())  # type: ignore[arg-type]
    return b"\n".join(out) + b"\n", out[-1] + b"\n"


def test_a_log_rewritten_with_another_key_fails_against_the_pinned_key(
    original: bytes, tmp_path: Path
) -> None:
    log, _ = split(original)
    forged, forged_head = rewrite(log, drop_seq=7, key=INTRUDER)
    assert not verifies(tmp_path, forged, forged_head, pinned=True)
    # Without the owner's key pinned, a consistent forgery verifies: hence --key.
    assert verifies(tmp_path, forged, forged_head, pinned=False)
    report, _ = verify_log(tmp_path / "audit.log", verify_signature)
    assert report.key == INTRUDER.public_bytes and not report.key_pinned


def test_a_rewritten_log_cannot_keep_the_owners_heads(original: bytes, tmp_path: Path) -> None:
    log, head = split(original)
    forged, _ = rewrite(log, drop_seq=7, key=OWNER)
    # Re-signing needs the owner's key; a rewrite that keeps the owner's old head file fails.
    assert not verifies(tmp_path, forged, head)


def test_a_log_of_1000_entries_verifies_in_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_log(path, 1000)
    started = time.perf_counter()
    report, _ = verify_log(path, verify_signature, key=OWNER.public_bytes, log_id=LOG_ID)
    elapsed = time.perf_counter() - started
    assert report.entries == 1000 and report.heads == 1001
    assert elapsed < 1.0, f"verifying 1,000 entries took {elapsed:.2f} s"


def test_a_copied_head_line_is_the_only_head_file_content(tmp_path: Path) -> None:
    write_log(tmp_path / "audit.log", 3)
    head = head_path_for(tmp_path / "audit.log").read_bytes().rstrip(b" ")
    last = (tmp_path / "audit.log").read_bytes().split(b"\n")[-2]
    assert head == last + b"\n"
    assert canonical_json(json.loads(last)) == last


@pytest.mark.parametrize("mask", [0x01, 0x20, 0x80])
def test_every_byte_of_a_small_log_is_protected(tmp_path: Path, mask: int) -> None:
    source = tmp_path / "source"
    source.mkdir()
    write_log(source / "audit.log", 3)
    log = (source / "audit.log").read_bytes()
    head = head_path_for(source / "audit.log").read_bytes()
    for position in range(len(log)):
        changed = bytearray(log)
        changed[position] ^= mask
        assert not verifies(tmp_path, bytes(changed), head), position
