"""``fedsql analyst keygen``, ``fedsql hub analyst add|list|remove`` and enrolling analysts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from fedsql.cli.app import app
from fedsql.demo.generator import demo_files
from fedsql.hub.analysts import AnalystTokens
from fedsql.secagg.identity import IdentityKey

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_keygen_makes_a_private_key_and_its_public_file(tmp_path: Path) -> None:
    code, out, _ = run("analyst", "keygen", str(tmp_path / "ana"))
    assert code == 0 and "analyst.pub" in out
    key = IdentityKey.load(tmp_path / "ana" / "analyst.key")
    assert (tmp_path / "ana" / "analyst.pub").read_text().strip() == key.public_bytes.hex()
    assert os.stat(tmp_path / "ana" / "analyst.key").st_mode & 0o777 == 0o600
    again, _, err = run("analyst", "keygen", str(tmp_path / "ana"))
    assert again != 0 and "exists" in err  # never overwrites a key


def test_hub_analyst_tokens_from_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(
        '[hub]\nlisten = "127.0.0.1:0"\ncontract = "c.toml"\nroster = "r.json"\n'
        'key = "k"\nauthority = "a.pub"\ninsecure_local = true\n'
    )
    code, token, err = run("hub", "analyst", "add", "ana", "--config", str(config))
    assert code == 0 and "shown only now" in err
    assert AnalystTokens(tmp_path / "analysts.json").analyst_for(token.strip()) == "ana"
    assert run("hub", "analyst", "list", "--config", str(config))[1].split() == ["ana"]
    assert run("hub", "analyst", "remove", "ana", "--config", str(config))[0] == 0
    assert run("hub", "analyst", "list", "--config", str(config))[1].split() == []
    code, _, err = run("hub", "analyst", "add", "Not Valid", "--config", str(config))
    assert code == 1 and "an analyst name is" in err


def test_the_authority_enrols_analysts_in_the_signed_roster(tmp_path: Path) -> None:
    assert run("authority", "init", str(tmp_path / "auth"))[0] == 0
    assert run("hub", "keygen", str(tmp_path / "hub"))[0] == 0
    assert run("silo", "enrol", "--id", "a", "--state", str(tmp_path / "a"))[0] == 0
    assert run("analyst", "keygen", str(tmp_path / "ana"))[0] == 0
    code, out, err = run(
        "authority", "sign-roster", str(tmp_path / "a" / "enrolment.json"),
        "--authority", str(tmp_path / "auth"),
        "--contract", str(demo_files() / "contract.toml"),
        "--coordinator", str(tmp_path / "hub" / "coordinator.pub"),
        "--analyst", f"ana={tmp_path / 'ana' / 'analyst.pub'}",
        "--out", str(tmp_path / "roster.json"),
    )  # fmt: skip
    assert code == 0, err
    assert "1 silo(s) and 1 analyst(s)" in out
    roster = json.loads((tmp_path / "roster.json").read_text())
    public = (tmp_path / "ana" / "analyst.pub").read_text().strip()
    assert roster["analysts"] == [{"name": "ana", "ed25519_public": public}]
    code, _, err = run(
        "authority", "sign-roster", str(tmp_path / "a" / "enrolment.json"),
        "--authority", str(tmp_path / "auth"),
        "--contract", str(demo_files() / "contract.toml"),
        "--coordinator", str(tmp_path / "hub" / "coordinator.pub"),
        "--analyst", "ana", "--out", str(tmp_path / "r2.json"),
    )  # fmt: skip
    assert code != 0 and "NAME=FILE" in err
