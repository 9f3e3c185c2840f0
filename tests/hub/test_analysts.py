"""The hub's analyst tokens: shown once, stored hashed (0600), re-read when the file changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fedsql.errors import DataError
from fedsql.hub.analysts import AnalystTokens


def test_a_token_resolves_to_its_analyst_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = AnalystTokens(tmp_path / "analysts.json")
    ana, bob = store.add("ana"), store.add("bob")
    assert (store.analyst_for(ana), store.analyst_for(bob)) == ("ana", "bob")
    assert store.analyst_for("guess") is None and store.analyst_for("") is None
    text = (tmp_path / "analysts.json").read_text()
    assert ana not in text and bob not in text
    assert os.stat(tmp_path / "analysts.json").st_mode & 0o777 == 0o600
    assert store.names() == ["ana", "bob"]


def test_a_new_token_replaces_the_old_and_removal_revokes(tmp_path: Path) -> None:
    store = AnalystTokens(tmp_path / "analysts.json")
    old = store.add("ana")
    new = store.add("ana")
    assert store.analyst_for(old) is None and store.analyst_for(new) == "ana"
    store.remove("ana")
    assert store.analyst_for(new) is None
    with pytest.raises(DataError, match="analyst ana has no token"):
        store.remove("ana")


def test_a_running_hub_sees_tokens_added_by_another_process(tmp_path: Path) -> None:
    serving = AnalystTokens(tmp_path / "analysts.json")
    assert serving.names() == []
    token = AnalystTokens(tmp_path / "analysts.json").add("carol")  # the admin's command
    assert serving.analyst_for(token) == "carol"


def test_bad_names_and_a_damaged_file(tmp_path: Path) -> None:
    store = AnalystTokens(tmp_path / "analysts.json")
    for bad in ("", "Ana", "a b", "-x", "x" * 64):
        with pytest.raises(DataError, match="an analyst name is"):
            store.add(bad)
    token = store.add("ana")
    (tmp_path / "analysts.json").write_text(json.dumps({"not": "ours"}))
    assert store.analyst_for(token) is None  # a damaged file admits no one
