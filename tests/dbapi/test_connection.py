"""connect(): hubs by address, fedsql:// URL or profile; profile files and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import fedsql
from fedsql.dbapi.profiles import Endpoint, load_profiles, parse_url, profiles_path, resolve
from fedsql.demo.federation import DemoFederation
from fedsql.errors import ConfigError, HubUnreachable, InterfaceError
from tests.dbapi.conftest import BY_SEX


@pytest.fixture
def profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty profile file location named by FEDSQL_PROFILES."""
    path = tmp_path / "profiles.toml"
    monkeypatch.setenv("FEDSQL_PROFILES", str(path))
    return path


def test_profile_file_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FEDSQL_PROFILES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert profiles_path() == tmp_path / "fedsql" / "profiles.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert profiles_path() == tmp_path / ".config" / "fedsql" / "profiles.toml"


def test_connect_with_a_profile(oracle_federation: DemoFederation, profiles: Path) -> None:
    profiles.write_text(
        f'[clinics]\nhub = "{oracle_federation.target}"\nanalyst = "carol"\nepsilon = 0.25\n'
    )
    with fedsql.connect(profile="clinics") as conn:
        assert conn.analyst == "carol"
        assert conn.epsilon == 0.25
        cur = conn.cursor().execute(BY_SEX)
        assert cur.privacy is not None and cur.privacy.epsilon == "0.25"
    with fedsql.connect(profile="clinics", analyst="dave", epsilon=0.5) as conn:
        assert (conn.analyst, conn.epsilon) == ("dave", 0.5)


def test_the_default_profile_is_used_when_no_hub_is_named(
    oracle_federation: DemoFederation, profiles: Path
) -> None:
    profiles.write_text(f'[default]\nhub = "{oracle_federation.target}"\nanalyst = "erin"\n')
    with fedsql.connect() as conn:
        assert conn.analyst == "erin"
        assert conn.target == oracle_federation.target


def test_connect_with_a_url(oracle_federation: DemoFederation, profiles: Path) -> None:
    with fedsql.connect(f"fedsql://frank@{oracle_federation.target}/?epsilon=0.5") as conn:
        assert (conn.analyst, conn.epsilon) == ("frank", 0.5)
        assert conn.cursor().execute(BY_SEX).rowcount == 2


def test_resolution_order(profiles: Path) -> None:
    profiles.write_text(
        '[default]\nhub = "d:1"\nanalyst = "dee"\n\n'
        '[p]\nhub = "p:1"\nanalyst = "pat"\nepsilon = 2\n'
    )
    assert resolve(None, Endpoint()).hub == "d:1"
    assert resolve("h:1", Endpoint()) == Endpoint(hub="h:1")
    assert resolve(None, Endpoint(profile="p")) == Endpoint("p:1", "pat", 2.0, None, "p")
    assert resolve("fedsql:///?profile=p", Endpoint(analyst="al")).analyst == "al"
    assert resolve("fedsql://x@h:2/?profile=p", Endpoint()).hub == "h:2"
    profiles.unlink()
    assert resolve(None, Endpoint()).hub == "demo"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("[p]\nanalyst = 'a'\n", ["p.hub: required"]),
        ("[p]\nhub = 'h:1'\ncolour = 'x'\n", ["p.colour: unknown key"]),
        ("[p]\nhub = 'h:1'\ntoken = 5\n", ["p.token: must be the API token"]),
        ("[p]\nhub = 'h:1'\nkey = ''\n", ["p.key: must be the path of your analyst.key"]),
        ("[p]\nhub = 'h:1'\nepsilon = -1\n", ["p.epsilon: must be a positive number"]),
        ("[p]\nhub = 'h:1'\ntimeout_s = 'soon'\n", ["p.timeout_s: must be a number"]),
        ("p = 3\n", ["p: a profile is a table"]),
        (
            "[a]\nanalyst = ''\n[b]\nhub = 'h:1'\nanalyst = ''\n",
            ["a.hub: required", "b.analyst: must be a non-empty string"],
        ),
        ("[p\nhub = 1", ["not valid TOML"]),
    ],
)
def test_bad_profile_files_list_every_problem(
    profiles: Path, text: str, problems: list[str]
) -> None:
    profiles.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_profiles()
    message = str(info.value)
    assert str(profiles) in message
    for problem in problems:
        assert problem in message


def test_an_unknown_profile_names_the_known_ones(profiles: Path) -> None:
    profiles.write_text("[one]\nhub = 'h:1'\n[two]\nhub = 'h:2'\n")
    with pytest.raises(ConfigError, match="no profile named 'three' \\(profiles: one, two\\)"):
        fedsql.connect(profile="three")


def test_url_parsing() -> None:
    assert parse_url("fedsql://127.0.0.1:9/") == Endpoint(hub="127.0.0.1:9")
    assert parse_url("fedsql://al%40x@h:9").analyst == "al@x"
    with pytest.raises(InterfaceError, match="not a fedsql:// URL"):
        parse_url("postgresql://h:1/db")


def test_connect_refuses_a_non_positive_epsilon() -> None:
    with pytest.raises(InterfaceError, match="positive"):
        fedsql.connect("127.0.0.1:9", epsilon=0)


def test_an_unreachable_hub(unused_port: int) -> None:
    with fedsql.connect(f"127.0.0.1:{unused_port}", timeout_s=5) as conn:
        with pytest.raises(HubUnreachable, match="hub unreachable"):
            conn.cursor().execute(BY_SEX)
        with pytest.raises(fedsql.OperationalError):
            conn.ping()


def test_catalog_lists_shared_tables(conn: fedsql.Connection) -> None:
    catalog = conn.catalog()
    assert catalog.fed_id == "fedsql-demo"
    assert [t.name for t in catalog.tables] == ["patients", "visits", "labs"]
    patients = conn.table("PATIENTS")
    assert patients is not None
    by_name = {c.name: c for c in patients.columns}
    assert "name" not in by_name and "zip" not in by_name
    assert by_name["age"].groupable and by_name["age"].aggregable
    assert by_name["sex"].groupable and not by_name["sex"].aggregable
    assert not by_name["bmi"].groupable and by_name["bmi"].aggregable
    assert conn.table("prescriptions") is None
