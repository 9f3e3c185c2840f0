"""One demo build shared by the generator tests (it takes about a second)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fedsql
from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import ensure_demo_data

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "policies" / "demo"


@dataclass(frozen=True)
class DemoBuild:
    """A demo build in a private cache folder and how long it took."""

    cache_dir: Path
    paths: dict[str, Path]
    seconds: float


def hub_messages(fed: DemoFederation, monkeypatch: pytest.MonkeyPatch, sql: str) -> list[Any]:
    """Run ``sql`` on ``fed`` and return every message the hub received from silos meanwhile."""
    received: list[Any] = []
    original = fed.hub.on_message

    def record(silo_id: str, msg: Any) -> None:
        received.append(msg)
        original(silo_id, msg)

    monkeypatch.setattr(fed.hub, "on_message", record)
    with fedsql.connect(fed.target, analyst="tester") as conn:
        conn.cursor().execute(sql)
    return received


@pytest.fixture(scope="session")
def demo_contract() -> Contract:
    return load_contract(DEMO_DIR / "contract.toml")


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> DemoBuild:
    cache_dir = tmp_path_factory.mktemp("demo-cache")
    start = time.perf_counter()
    paths = ensure_demo_data(cache_dir)
    return DemoBuild(cache_dir, paths, time.perf_counter() - start)
