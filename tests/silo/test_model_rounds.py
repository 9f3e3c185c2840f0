"""The durable model-round log: one take per round, in order, within the total and max_iter."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.errors import ConfigError, OperationalError, ProtocolError
from fedsql.silo.model_rounds import ModelRoundLog

NONCE = bytes(range(16))
DIGEST = b"d" * 32


def take(log: ModelRoundLog, index: int, share: int, *, statement: bytes = DIGEST) -> None:
    log.take(NONCE, statement, index, max_rounds=3, total_micro=100, share_micro=share)


def test_a_round_after_the_total_was_spent_is_refused(tmp_path: Path) -> None:
    with ModelRoundLog(tmp_path / "m.sqlite") as log:
        take(log, 0, 60)
        with pytest.raises(ProtocolError, match="more than the epsilon the analyst signed"):
            take(log, 1, 50)
        take(log, 1, 40)
        with pytest.raises(ProtocolError, match="more than the epsilon the analyst signed"):
            take(log, 2, 1)
        assert log.charged(NONCE) == 100


def test_round_one_alone_may_not_exceed_the_total_nor_max_iter(tmp_path: Path) -> None:
    with ModelRoundLog(tmp_path / "m.sqlite") as log:
        with pytest.raises(ProtocolError, match="more than the signed epsilon"):
            take(log, 0, 101)
        with pytest.raises(ProtocolError, match="at most 3 rounds"):
            take(log, 3, 1)
        assert log.charged(NONCE) == 0


def test_two_processes_sharing_the_file_cannot_both_take_a_round(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with ModelRoundLog(path) as one, ModelRoundLog(path) as two:
        take(one, 0, 10)
        take(two, 1, 10)
        with pytest.raises(ProtocolError, match="a replay, or a skipped round"):
            take(one, 1, 10)
        with pytest.raises(ProtocolError, match="another statement"):
            take(one, 2, 10, statement=b"e" * 32)
    with ModelRoundLog(path) as reopened:
        assert reopened.charged(NONCE) == 20


def test_a_closed_or_foreign_file_refuses(tmp_path: Path) -> None:
    log = ModelRoundLog(tmp_path / "m.sqlite")
    log.close()
    with pytest.raises(OperationalError, match="closed"):
        take(log, 0, 1)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigError, match="not a usable model-round log"):
        ModelRoundLog(tmp_path / "junk.sqlite")
