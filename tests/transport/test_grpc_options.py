"""Keepalive and size options agree between the hub and its clients."""

from __future__ import annotations

from fedsql.transport.grpc_options import (
    CLIENT_KEEPALIVE_MS,
    KEEPALIVE_TIMEOUT_MS,
    MAX_MESSAGE_BYTES,
    SERVER_KEEPALIVE_MS,
    SERVER_MIN_PING_INTERVAL_MS,
    client_options,
    server_options,
)


def test_the_hub_tolerates_the_clients_ping_rate() -> None:
    server = dict(server_options())
    client = dict(client_options())

    assert server["grpc.http2.min_ping_interval_without_data_ms"] < client["grpc.keepalive_time_ms"]
    assert SERVER_MIN_PING_INTERVAL_MS < CLIENT_KEEPALIVE_MS


def test_a_ping_times_out_before_the_next_is_due() -> None:
    assert KEEPALIVE_TIMEOUT_MS < CLIENT_KEEPALIVE_MS
    assert KEEPALIVE_TIMEOUT_MS < SERVER_KEEPALIVE_MS


def test_both_sides_send_and_accept_the_same_message_sizes() -> None:
    server = dict(server_options())
    client = dict(client_options())

    for key in ("grpc.max_send_message_length", "grpc.max_receive_message_length"):
        assert server[key] == client[key] == MAX_MESSAGE_BYTES
    assert MAX_MESSAGE_BYTES == 64 * 1024 * 1024


def test_quiet_streams_keep_being_pinged() -> None:
    assert dict(client_options())["grpc.http2.max_pings_without_data"] == 0
    assert dict(server_options())["grpc.keepalive_permit_without_calls"] == 1
