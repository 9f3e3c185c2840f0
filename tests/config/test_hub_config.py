"""The hub's TOML configuration: paths resolved, every problem reported with its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.config.hub_config import load_hub_config
from fedsql.errors import ConfigError

BASE = """[hub]
listen = "127.0.0.1:0"
contract = "contract.toml"
roster = "roster.json"
key = "keys/coordinator.key"
authority = "keys/authority.pub"
insecure_local = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load_hub_config(write(tmp_path, BASE))
    assert config.contract == tmp_path / "contract.toml"
    assert config.audit == tmp_path / "hub.audit.log"
    assert config.round_timeout_s == 60.0


def test_the_round_timeout_is_configurable(tmp_path: Path) -> None:
    config = load_hub_config(write(tmp_path, BASE + "round_timeout_s = 600\n"))
    assert config.round_timeout_s == 600.0


@pytest.mark.parametrize("value", ["0", "-5", "true", '"60"', "90000"])
def test_a_bad_round_timeout_is_named(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"hub\.round_timeout_s: must be a number of seconds"):
        load_hub_config(write(tmp_path, BASE + f"round_timeout_s = {value}\n"))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = '[hub]\nlisten = "0.0.0.0:7700"\ncolour = "blue"\nround_timeout_s = 0\n'
    with pytest.raises(ConfigError) as caught:
        load_hub_config(write(tmp_path, text))
    keys = [key for key, _ in caught.value.problems]
    assert keys == [
        "hub.colour",
        "hub.contract",
        "hub.roster",
        "hub.key",
        "hub.authority",
        "hub.round_timeout_s",
        "hub.tls",
    ]


def test_plaintext_only_on_loopback(tmp_path: Path) -> None:
    text = BASE.replace("127.0.0.1:0", "0.0.0.0:7700")
    with pytest.raises(ConfigError, match="allowed only on a loopback address"):
        load_hub_config(write(tmp_path, text))
