"""The hub answers the standard gRPC health service, and stops answering SERVING when it stops."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fedsql.transport.server import HEALTH_SERVICES, start_hub_server

from .toyhub import ToyHub


@pytest.mark.parametrize("service", ["", *HEALTH_SERVICES])
def test_health_reports_serving(service: str) -> None:
    server = start_hub_server(ToyHub(), "127.0.0.1:0")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(0)


def test_unknown_service_is_not_found() -> None:
    server = start_hub_server(ToyHub(), "127.0.0.1:0")
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.Check(health_pb2.HealthCheckRequest(service="nope.Nope"), timeout=5)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(0)


def test_stopped_hub_is_not_serving() -> None:
    server = start_hub_server(ToyHub(), "127.0.0.1:0")
    address = server.address
    server.stop(0)
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with pytest.raises(grpc.RpcError):
            stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
