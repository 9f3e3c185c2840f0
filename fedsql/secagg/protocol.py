"""The FSA-1 protocol surface in one place: the messages and the silo and coordinator sessions.

Hub and silo code import from here; the definitions live in :mod:`fedsql.secagg.messages`,
:mod:`fedsql.secagg.silo_session` and :mod:`fedsql.secagg.coordinator_session`.
"""

from __future__ import annotations

from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.messages import (
    PROTOCOL_VERSION,
    Descriptor,
    MaskedUpload,
    Roster,
    RosterEntry,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsql.secagg.silo_session import RoundState, SiloSession, check_descriptor

__all__ = [
    "PROTOCOL_VERSION",
    "CoordinatorSession",
    "CoordinatorState",
    "Descriptor",
    "MaskedUpload",
    "Roster",
    "RosterEntry",
    "RoundState",
    "SiloSession",
    "UnmaskRequest",
    "UnmaskResponse",
    "check_descriptor",
]
