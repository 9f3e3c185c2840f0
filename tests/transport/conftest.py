"""Fixtures for transport tests: a toy hub served over each transport, closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from fedsql.transport import HubConnection

from .toyhub import Federation, GrpcFederation, MemoryFederation, ToyHub

Serve = Callable[[ToyHub], Federation]


@pytest.fixture(params=["grpc", "memory"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Serve a toy hub over the transport under test; stops it after the test."""
    started: list[Federation] = []

    def start(hub: ToyHub) -> Federation:
        fed: Federation = GrpcFederation(hub) if request.param == "grpc" else MemoryFederation(hub)
        started.append(fed)
        return fed

    yield start
    for fed in started:
        fed.stop()


@pytest.fixture
def connections() -> Iterator[list[HubConnection]]:
    """Silo connections a test opened; closed after the test."""
    opened: list[HubConnection] = []
    yield opened
    for conn in opened:
        conn.close(grace=0.2)
