"""The FSA-1 protocol surface in one place: messages, roster, keys, logs and the two sessions.

Hub and silo code import from here; the definitions live in :mod:`fedsql.secagg.messages`,
:mod:`fedsql.secagg.roster`, :mod:`fedsql.secagg.identity`, :mod:`fedsql.secagg.epochs`,
:mod:`fedsql.secagg.qid_log`, :mod:`fedsql.secagg.silo_session` and
:mod:`fedsql.secagg.coordinator_session`.
"""

from __future__ import annotations

from fedsql.secagg.coordinator_session import CoordinatorSession, CoordinatorState
from fedsql.secagg.epochs import EpochKey, EpochKeyStore, verify_epoch_key
from fedsql.secagg.identity import IdentityKey, sign_message, verify_message
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
    "SiloSession",
    "UnmaskRequest",
    "UnmaskResponse",
    "check_descriptor",
    "sign_message",
    "verify_epoch_key",
    "verify_message",
    "verify_roster",
]
