"""Transport between hub, silos and analysts: messages, their wire codec, gRPC server and clients.

Protobuf and gRPC types stay inside this package. Hub, silo and analyst code see the frozen
dataclasses of :mod:`fedsql.transport.messages` and the interfaces of
:mod:`fedsql.transport.interfaces`, served over gRPC by :func:`start_hub_server`,
:func:`connect_to_hub` and :class:`AnalystClient`, or in one process by :class:`MemoryHub`.
"""

from __future__ import annotations

from fedsql.transport.client import AnalystClient, GrpcHubConnection, connect_to_hub
from fedsql.transport.interfaces import AnalystConnection, HubConnection, HubHandler, SiloChannel
from fedsql.transport.memory import MemoryHub
from fedsql.transport.messages import (
    Abort,
    Accepted,
    BudgetQuery,
    BudgetReply,
    BudgetReport,
    BudgetRequest,
    ClinicBudget,
    ConnectedSilo,
    EncodingEntry,
    ExecuteReply,
    ExecuteRequest,
    Heartbeat,
    Held,
    Hello,
    HubToSilo,
    MaskedUpload,
    QueryRequest,
    Refusal,
    RosterEntry,
    SiloStatus,
    SiloToHub,
    StatusReply,
    StatusRequest,
    UnmaskRequest,
    UnmaskResponse,
    Welcome,
)
from fedsql.transport.server import RunningServer, start_hub_server

__all__ = [
    "Abort",
    "Accepted",
    "AnalystClient",
    "AnalystConnection",
    "BudgetQuery",
    "BudgetReply",
    "BudgetReport",
    "BudgetRequest",
    "ClinicBudget",
    "ConnectedSilo",
    "EncodingEntry",
    "ExecuteReply",
    "ExecuteRequest",
    "GrpcHubConnection",
    "Heartbeat",
    "Held",
    "Hello",
    "HubConnection",
    "HubHandler",
    "HubToSilo",
    "MaskedUpload",
    "MemoryHub",
    "QueryRequest",
    "Refusal",
    "RosterEntry",
    "RunningServer",
    "SiloChannel",
    "SiloStatus",
    "SiloToHub",
    "StatusReply",
    "StatusRequest",
    "UnmaskRequest",
    "UnmaskResponse",
    "Welcome",
    "connect_to_hub",
    "start_hub_server",
]
