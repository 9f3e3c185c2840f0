"""A silo's policy file is re-read when it changes; a broken one never falls back to the old."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from fedsql.config import PolicySource
from fedsql.errors import ConfigError, QueryRejected
from fedsql.silo.policy_checks import policy_for_query

from .policy_cases import CONTRACT, MALFORMED, SHARE, SILO

VALID = SILO + SHARE + "[privacy]\nbudget_epsilon = 10.0\n"
CHANGED = SILO + SHARE + "[privacy]\nbudget_epsilon = 3.5\n"


def write(path: Path, text: str) -> None:
    """Replace the file's content, making sure its modification time moves on."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    info = path.stat()
    if info.st_mtime_ns == before:  # coarse file-system clocks
        os.utime(path, ns=(info.st_atime_ns, before + 1_000_000))


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.toml"
    path.write_text(VALID)
    return path


def test_a_valid_file_is_read_once_and_kept(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    first = source.current()
    assert first.silo_id == "clinic-a" and first.budget_epsilon == 10.0
    assert source.current() is first
    assert source.version == 1 and source.error is None
    assert len(source.digest) == 64


def test_a_changed_policy_applies_from_the_next_query(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    assert source.current().budget_epsilon == 10.0
    write(policy_file, CHANGED)
    assert source.current().budget_epsilon == 3.5
    assert source.version == 2


def test_touching_the_file_without_changing_it_keeps_the_version(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    policy = source.current()
    write(policy_file, VALID)
    assert source.current() is policy
    assert source.version == 1


def test_a_same_size_rewrite_with_the_old_mtime_is_still_seen(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    source.current()
    info = policy_file.stat()
    same_size = VALID.replace("10.0", "11.0")
    policy_file.write_text(same_size)
    os.utime(policy_file, ns=(info.st_atime_ns, info.st_mtime_ns))  # an editor resetting mtime
    assert source.current().budget_epsilon == 11.0


@pytest.mark.parametrize(
    ("text", "key"), [case[1:3] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_a_silo_refuses_to_start_on_each_malformed_policy(
    tmp_path: Path, text: str, key: str
) -> None:
    path = tmp_path / "clinic.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        PolicySource(path, CONTRACT)
    assert [k for k, _ in caught.value.problems] == [key]


@pytest.mark.parametrize(
    ("text", "key"), [case[1:3] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_a_running_silo_refuses_every_query_while_its_policy_is_malformed(
    policy_file: Path, text: str, key: str
) -> None:
    source = PolicySource(policy_file, CONTRACT)
    assert policy_for_query(source).budget_epsilon == 10.0
    write(policy_file, text)
    for _ in range(3):  # every query, not just the first after the change
        with pytest.raises(ConfigError) as caught:
            source.current()
        assert [k for k, _ in caught.value.problems] == [key]
        with pytest.raises(QueryRejected, match="policy file is invalid"):
            policy_for_query(source)
    assert source.error is not None
    write(policy_file, CHANGED)
    assert policy_for_query(source).budget_epsilon == 3.5
    assert source.error is None


def test_a_deleted_policy_refuses_queries_until_it_is_back(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    source.current()
    policy_file.unlink()
    with pytest.raises(ConfigError, match="no such file"):
        source.current()
    policy_file.write_text(VALID)
    assert source.current().budget_epsilon == 10.0


def test_reverting_a_broken_file_to_the_old_text_restores_the_old_policy(
    policy_file: Path,
) -> None:
    source = PolicySource(policy_file, CONTRACT)
    source.current()
    write(policy_file, "[silo\n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        source.current()
    write(policy_file, VALID)
    assert source.current().budget_epsilon == 10.0
    assert source.version == 1


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('id = "clinic-a"', 'id = "clinic-b"', "silo.id"),
        ('data = "demo:clinic-a"', 'data = "demo:clinic-b"', "silo.data"),
    ],
)
def test_a_running_silo_cannot_change_its_identity(
    policy_file: Path, old: str, new: str, key: str
) -> None:
    source = PolicySource(policy_file, CONTRACT)
    source.current()
    write(policy_file, VALID.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        source.current()
    assert caught.value.key == key
    assert "restart the silo" in str(caught.value)


def test_a_missing_file_at_start_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        PolicySource(tmp_path / "absent.toml", CONTRACT)


def test_concurrent_readers_see_one_policy_or_the_other(policy_file: Path) -> None:
    source = PolicySource(policy_file, CONTRACT)
    seen: set[float] = set()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(200):
                seen.add(source.current().budget_epsilon)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    temp = policy_file.with_suffix(".new")
    temp.write_text(CHANGED)
    os.replace(temp, policy_file)  # an atomic change, as careful operators make it
    for thread in threads:
        thread.join()
    assert not errors
    assert seen <= {10.0, 3.5}
    assert source.current().budget_epsilon == 3.5
