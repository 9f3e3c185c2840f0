"""The silo agent under its operator's controls: live policy file, audit log of every decision."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedsql.audit import verify_log
from fedsql.config import PolicySource, load_contract
from fedsql.demo.generator import demo_files
from fedsql.hub.coordinator import Hub
from fedsql.secagg.identity import verify_signature
from fedsql.silo.agent import SiloAgent
from fedsql.transport.client import AnalystClient
from fedsql.transport.messages import ExecuteRequest
from fedsql.transport.server import RunningServer, start_hub_server

SILOS = ("mumbai", "san-francisco", "seoul", "sydney")
SQL = "SELECT sex, COUNT(*) FROM patients GROUP BY sex"


@dataclass
class Federation:
    root: Path
    server: RunningServer
    agents: dict[str, SiloAgent]
    client: AnalystClient

    def ask(self, sql: str = SQL) -> dict[str, tuple[str, str]]:
        reply = self.client.execute(ExecuteRequest(sql=sql, analyst="gov", epsilon="0.1"))
        return {s.silo_id: (s.status, s.reason) for s in reply.silos}


@pytest.fixture
def federation(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[Federation]:
    contract = load_contract(demo_files() / "contract.toml")
    hub = Hub(contract, noise=False)
    server = start_hub_server(hub, "127.0.0.1:0")
    agents = {}
    for silo in SILOS:
        text = (demo_files() / f"{silo}.toml").read_text()
        path = tmp_path / f"{silo}.toml"
        path.write_text(text.replace(f'"demo:{silo}"', f'"{demo_data[silo]}"'))
        agent = SiloAgent(contract, PolicySource(path, contract), demo_data[silo], tmp_path,
                          testing=True)  # fmt: skip
        agent.connect(f"127.0.0.1:{server.port}")
        agents[silo] = agent
    client = AnalystClient(f"127.0.0.1:{server.port}", timeout_s=30)
    yield Federation(tmp_path, server, agents, client)
    client.close()
    for agent in agents.values():
        agent.close()
    server.stop(0)


def _entries(root: Path, silo: str) -> list[tuple[str, str]]:
    report, entries = verify_log(
        root / f"{silo}.audit.log", verify_signature, log_id=f"silo:{silo}", keep_entries=True
    )
    assert report.entries == len(entries)
    return [(e.record.event, e.record.decision) for e in entries]


def test_every_decision_and_release_is_in_a_verifiable_log(federation: Federation) -> None:
    assert set(federation.ask().values()) == {("answered", "")}
    for silo in SILOS:
        assert _entries(federation.root, silo) == [("request", "admitted"), ("release", "")]


def test_an_invalid_policy_file_refuses_every_query_until_fixed(federation: Federation) -> None:
    path = federation.root / "seoul.toml"
    good = path.read_text()
    path.write_text(good.replace("min_group_size", "min_group_sise"))
    status = federation.ask()
    assert status["seoul"][0] == "refused"
    assert "policy" in status["seoul"][1]
    assert {s for s, (st, _) in status.items() if st == "answered"} == set(SILOS) - {"seoul"}
    assert federation.agents["seoul"].stats.executed == 0
    path.write_text(good)
    assert federation.ask()["seoul"] == ("answered", "")
    events = _entries(federation.root, "seoul")
    assert events == [("request", "refused"), ("request", "admitted"), ("release", "")]


def test_a_changed_policy_applies_from_the_next_query(federation: Federation) -> None:
    path = federation.root / "sydney.toml"
    text = path.read_text()
    assert "max_cells" not in text
    path.write_text(re.sub(r"^\[queries\].*$", "[queries]\nmax_cells = 1", text, flags=re.M))
    status = federation.ask()
    assert status["sydney"][0] == "refused"
    assert "cells" in status["sydney"][1]
    # A query with a single cell is still within the new limit.
    assert federation.ask("SELECT COUNT(*) FROM patients")["sydney"] == ("answered", "")
