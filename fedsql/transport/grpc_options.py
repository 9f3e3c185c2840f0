"""gRPC channel and server options: message size limits and keepalive, compatible on both sides.

Silo streams live for days and cross clinic firewalls and NAT, which drop idle connections, so the
client pings. A gRPC server treats pings more frequent than it allows as abuse and closes the
connection ("too_many_pings"), so the server's minimum ping interval is kept below the client's
ping period; ``tests/transport/test_grpc_options.py`` holds that invariant.
"""

from __future__ import annotations

__all__ = [
    "CLIENT_KEEPALIVE_MS",
    "KEEPALIVE_TIMEOUT_MS",
    "MAX_MESSAGE_BYTES",
    "SERVER_KEEPALIVE_MS",
    "SERVER_MIN_PING_INTERVAL_MS",
    "client_options",
    "server_options",
]

#: Largest message either side sends or accepts (a masked vector of d coordinates is 8d bytes).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: A client pings after this long without traffic.
CLIENT_KEEPALIVE_MS = 30_000
#: The hub pings each silo after this long without traffic.
SERVER_KEEPALIVE_MS = 60_000
#: A ping unanswered for this long closes the connection (both sides).
KEEPALIVE_TIMEOUT_MS = 20_000
#: The hub accepts client pings this often; must stay below :data:`CLIENT_KEEPALIVE_MS`.
SERVER_MIN_PING_INTERVAL_MS = 10_000

Option = tuple[str, int]


def client_options() -> list[Option]:
    """Channel options for silos and analysts dialling the hub.

    Returns:
        ``(name, value)`` pairs for ``grpc.insecure_channel`` / ``grpc.secure_channel``.

    >>> dict(client_options())["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES
    True
    """
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        # Keep pinging on a quiet stream: without this, gRPC stops after two pings without data.
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.keepalive_permit_without_calls", 1),
    ]


def server_options() -> list[Option]:
    """Server options for the hub.

    Returns:
        ``(name, value)`` pairs for ``grpc.server``.

    >>> dict(server_options())["grpc.so_reuseport"]
    0
    """
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_pings_without_data", 0),
        # Refuse to share a fixed port with another process instead of splitting its traffic.
        ("grpc.so_reuseport", 0),
    ]
