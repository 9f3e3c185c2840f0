"""FSA-1 secure aggregation: fixed-point encoding, key schedule, masks and the two state machines.

Everything here is pure computation (``cryptography`` and numpy, no I/O). The silo agent drives
a :class:`SiloSession`, the hub a :class:`CoordinatorSession`; the messages they exchange are
the frozen dataclasses of :mod:`fedsql.secagg.messages`. The specification is SECAGG.md.
"""

from __future__ import annotations

from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.encoding import CoordinateSpec, check_plan, decode, dimension, encode
from fedsql.secagg.keys import SiloKeyPair, mask_key, pair_key, share_key
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
    "CoordinateSpec",
    "CoordinatorSession",
    "CoordinatorState",
    "Descriptor",
    "MaskedUpload",
    "Roster",
    "RosterEntry",
    "RoundState",
    "SiloKeyPair",
    "SiloSession",
    "UnmaskRequest",
    "UnmaskResponse",
    "check_descriptor",
    "check_plan",
    "decode",
    "dimension",
    "encode",
    "mask_key",
    "pair_key",
    "share_key",
]
