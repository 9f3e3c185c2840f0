"""FSA-1 secure aggregation: encoding, identities, signed roster, key schedule, state machines.

Everything here is pure computation (``cryptography`` and numpy) except two small, explicit
pieces of storage: raw key files (:mod:`fedsql.secagg.keyfiles`) and the durable query-id log
(:mod:`fedsql.secagg.qid_log`). The silo agent drives a :class:`SiloSession`, the hub a
:class:`CoordinatorSession`; the messages they exchange are the frozen dataclasses of
:mod:`fedsql.secagg.messages`. The specification is SECAGG.md.
"""

from __future__ import annotations

from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.encoding import CoordinateSpec, check_plan, decode, dimension, encode
from fedsql.secagg.epochs import EpochKey, EpochKeyStore, verify_epoch_key
from fedsql.secagg.identity import IdentityKey, sign_message, verify_message
from fedsql.secagg.keys import SiloKeyPair, mask_key, pair_key, share_key
from fedsql.secagg.messages import (
    PROTOCOL_VERSION,
    Abort,
    Descriptor,
    MaskedUpload,
    UnmaskRequest,
    UnmaskResponse,
)
from fedsql.secagg.qid_log import QidLog
from fedsql.secagg.roster import Authority, Roster, RosterEntry, verify_roster
from fedsql.secagg.silo_session import RoundState, SiloSession
from fedsql.secagg.validation import check_descriptor

__all__ = [
    "PROTOCOL_VERSION",
    "Abort",
    "Authority",
    "CoordinateSpec",
    "CoordinatorSession",
    "CoordinatorState",
    "Descriptor",
    "EpochKey",
    "EpochKeyStore",
    "IdentityKey",
    "MaskedUpload",
    "QidLog",
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
    "sign_message",
    "verify_epoch_key",
    "verify_message",
    "verify_roster",
]
