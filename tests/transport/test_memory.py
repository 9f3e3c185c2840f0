"""The in-memory transport: what only it does (the shared contract is in test_interfaces.py)."""

from __future__ import annotations

import pytest

from fedsql.errors import OperationalError
from fedsql.transport import ExecuteRequest, MemoryHub

from .toyhub import WAIT_S, Inbox, ToyHub, make_hello


def test_a_stopped_hub_is_unreachable_for_silos_and_analysts() -> None:
    hub = MemoryHub(ToyHub())
    hub.stop()

    conn = hub.connect(make_hello("a"), Inbox())
    with pytest.raises(OperationalError, match=r"^hub unreachable at memory$"):
        conn.welcome(WAIT_S)
    assert conn.wait_closed(WAIT_S)
    with pytest.raises(OperationalError, match=r"^hub unreachable at memory$"):
        hub.analyst().execute(ExecuteRequest(sql="SELECT 1"))


def test_open_streams_counts_connected_silos() -> None:
    toy = ToyHub()
    hub = MemoryHub(toy)
    conns = [hub.connect(make_hello(s), Inbox()) for s in ("a", "b")]
    for conn in conns:
        conn.welcome(WAIT_S)
    assert hub.open_streams == 2

    conns[0].close()
    toy.wait_for(lambda: ("disconnect", "a") in toy.events)
    hub.stop()

    assert hub.open_streams == 0
    assert toy.count("disconnect", "b") == 1
