"""The long-running hub process: load its files, serve until SIGTERM or SIGINT, stop cleanly."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from fedsql.audit import AuditLog
from fedsql.catalog import Contract
from fedsql.errors import ConfigError
from fedsql.hub.coordinator import Hub
from fedsql.secagg.identity import IdentityKey, verify_signature
from fedsql.secagg.roster import roster_from_json, verify_roster
from fedsql.transport.server import RunningServer, start_hub_server

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubFiles:
    """Everything a hub process reads at start-up."""

    contract: Contract
    roster_path: Path
    key_path: Path
    authority_public: bytes
    audit_path: Path | None = None
    round_timeout_s: float = 60.0


def load_signed_roster(hub_files: HubFiles) -> tuple[Hub, IdentityKey]:
    """Build the hub from its files, checking the roster against the authority first.

    Raises:
        ConfigError: A file is missing or does not verify.
    """
    try:
        text = hub_files.roster_path.read_text()
    except OSError:
        raise ConfigError("cannot read the roster file", file=str(hub_files.roster_path)) from None
    roster = roster_from_json(text)
    verify_roster(
        roster,
        hub_files.authority_public,
        min_version=0,
        contract_hash=hub_files.contract.fingerprint,
    )
    key = IdentityKey.load(hub_files.key_path)
    audit = None
    if hub_files.audit_path is not None:
        audit = AuditLog(hub_files.audit_path, key, verify_signature, log_id="hub")
    hub = Hub(
        hub_files.contract,
        roster=roster,
        coordinator=key,
        audit=audit,
        round_timeout_s=hub_files.round_timeout_s,
    )
    return hub, key


def serve_hub(
    hub: Hub,
    address: str,
    *,
    port_file: Path | None = None,
    stop: threading.Event | None = None,
    max_workers: int = 64,
    credentials: object | None = None,
) -> None:
    """Serve ``hub`` on ``address`` until SIGTERM/SIGINT (or ``stop`` is set), then stop cleanly.

    Queries in flight are given a grace period to finish; silos see their streams end and
    reconnect to the next hub process.

    Args:
        hub: The hub.
        address: ``host:port`` to listen on (port 0 picks one).
        port_file: Where to write the port actually bound, once listening.
        stop: An event that stops the server when set (signals set it too).
        max_workers: gRPC worker threads (each connected silo holds one).
        credentials: The hub's mTLS credentials (:func:`fedsql.transport.tls.server_credentials`);
            None serves plaintext, which the transport allows on loopback only.
    """
    server: RunningServer = start_hub_server(
        hub,
        address,
        max_workers=max_workers,
        credentials=credentials,
    )
    done = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("hub received signal %d; stopping", signum)
        done.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(f"{server.port}\n")
        tmp.replace(port_file)
    log.info("hub %s listening on %s", hub.contract.federation_id, server.address)
    try:
        done.wait()
    finally:
        server.stop(5.0)
        if hub.audit is not None:
            hub.audit.close()
        log.info("hub stopped")
