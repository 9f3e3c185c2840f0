"""What the hub tells analysts about the federation: connected silos, and what they can query."""

from __future__ import annotations

from collections.abc import Sequence

from fedsql.catalog import Contract
from fedsql.hub.planning import visible_tables
from fedsql.hub.registry import ConnectedSilo
from fedsql.transport.messages import (
    CatalogColumn,
    CatalogReply,
    CatalogTable,
    StatusReply,
)
from fedsql.transport.messages import ConnectedSilo as ConnectedSiloInfo


def status_reply(contract: Contract, silos: Sequence[ConnectedSilo]) -> StatusReply:
    """The connected silos with version and last-seen time."""
    return StatusReply(
        fed_id=contract.federation_id,
        silos=tuple(
            ConnectedSiloInfo(
                silo_id=s.silo_id,
                name=s.hello.name,
                version=s.hello.version,
                connected_since_ms=s.connected_since_ms,
                last_seen_ms=s.last_seen_ms,
            )
            for s in silos
        ),
    )


def catalog_reply(contract: Contract, silos: Sequence[ConnectedSilo]) -> CatalogReply:
    """The tables and columns every connected silo shares, typed as the contract declares."""
    visible = visible_tables(list(silos))
    tables = []
    for table in contract.tables:
        shared = set(visible.get(table.name, ()))
        if not shared:
            continue
        columns = tuple(
            CatalogColumn(
                name=col.name,
                type=col.type,
                description=col.description,
                groupable=col.domain is not None,
                aggregable=col.bounds is not None,
            )
            for col in table.columns
            if col.name in shared
        )
        tables.append(CatalogTable(table.name, table.description, columns))
    return CatalogReply(
        fed_id=contract.federation_id,
        description=contract.description,
        tables=tuple(tables),
    )
