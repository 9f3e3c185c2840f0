"""The messages hub, silos and analysts exchange, as frozen dataclasses free of protobuf.

Silo -> hub on the stream: :class:`Hello` first, then :class:`Held`, :class:`Accepted`,
:class:`Refusal`, :class:`MaskedUpload` (FSA-1 M1), :class:`UnmaskResponse` (M3) and
:class:`Heartbeat`.
Hub -> silo on the stream: :class:`Welcome` first, then :class:`QueryRequest` (M0),
:class:`UnmaskRequest` (M2), :class:`Abort` and later :class:`Welcome` s with a new roster.
Analyst -> hub as unary calls: :class:`ExecuteRequest` -> :class:`ExecuteReply`,
:class:`StatusRequest` -> :class:`StatusReply` and :class:`CatalogRequest` -> :class:`CatalogReply`;
and streamed: :class:`ExecuteRequest` -> :class:`ExecuteProgress` events, then the reply.

Byte fields carry what SECAGG.md section 6 says (qid 16 bytes, digests 32, keys 16 or 32). Privacy
amounts (epsilon, rho, budgets) travel as exact decimal strings. Pairs addressed to or from a silo
are ``(silo_id, data)`` tuples. :mod:`fedsql.transport.codec` maps every class here to its protobuf
message and back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Abort",
    "Accepted",
    "AnalystEntry",
    "AnalystMessage",
    "BudgetQuery",
    "BudgetReply",
    "BudgetReport",
    "BudgetRequest",
    "CatalogColumn",
    "CatalogReply",
    "CatalogRequest",
    "CatalogTable",
    "ClinicBudget",
    "ConnectedSilo",
    "EncodingEntry",
    "EpochKeyInfo",
    "ExecuteProgress",
    "ExecuteReply",
    "ExecuteRequest",
    "Heartbeat",
    "Held",
    "Hello",
    "HubToSilo",
    "MaskedUpload",
    "Message",
    "QueryRequest",
    "Refusal",
    "RosterEntry",
    "SiloBytes",
    "SiloStatus",
    "SiloToHub",
    "StatusReply",
    "StatusRequest",
    "UnmaskRequest",
    "UnmaskResponse",
    "Welcome",
]

#: ``(silo_id, data)``: bytes addressed to, from or about one silo.
SiloBytes = tuple[str, bytes]


# -- silo -> hub ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """First message of a silo's stream: who it is, what it shares and its X25519 public key.

    ``shared`` lists ``(table, columns)`` pairs; ``max_epsilon_per_query`` is a decimal string;
    ``allow_per_clinic`` says the clinic's policy allows per-clinic breakdowns (GROUP BY silo).
    """

    silo_id: str
    name: str
    version: str
    contract_fingerprint: str
    x25519_public: bytes
    min_group_size: int
    max_epsilon_per_query: str
    shared: tuple[tuple[str, tuple[str, ...]], ...]
    test_mode: bool = False
    epoch_key: EpochKeyInfo | None = None
    allow_per_clinic: bool = False


@dataclass(frozen=True)
class MaskedUpload:
    """FSA-1 M1: the masked vector ``y`` (8 bytes per coordinate), the commitment to the self-mask
    seed and the encrypted seed shares as ``(receiver_id, ciphertext)`` pairs."""

    qid: bytes
    silo_id: str
    hq: bytes
    y: bytes
    commit: bytes
    shares: tuple[SiloBytes, ...]
    signature: bytes = b""


@dataclass(frozen=True)
class UnmaskResponse:
    """FSA-1 M3: ``(owner_id, share)`` seed shares of survivors and ``(dropped_id, key)`` pairwise
    mask keys, bound to the request by ``request_digest`` (SHA-256 of the M2 it answers), and
    the masked extra noise vector ``extra`` (8d bytes, or empty)."""

    qid: bytes
    silo_id: str
    request_digest: bytes
    seed_shares: tuple[SiloBytes, ...]
    mask_keys: tuple[SiloBytes, ...]
    signature: bytes = b""
    extra: bytes = b""


@dataclass(frozen=True)
class Refusal:
    """The silo declined query ``qid``; ``code`` is machine-readable, ``reason`` is for people."""

    qid: bytes
    silo_id: str
    code: str
    reason: str
    budget_remaining: str = ""


@dataclass(frozen=True)
class Held:
    """The silo holds query ``qid`` for its operator's approval; ``reason`` is for people.

    An :class:`Accepted` (approved) or a :class:`Refusal` (denied) follows, or nothing when the
    operator does not decide before the query's deadline: then the silo does not take part.
    """

    qid: bytes
    silo_id: str
    reason: str


@dataclass(frozen=True)
class BudgetReport:
    """A silo's answer to :class:`BudgetQuery`: an analyst's figures from its own ledger."""

    request_id: bytes
    silo_id: str
    analyst: str
    spent: str
    budget: str
    left: str
    queries: int = 0


@dataclass(frozen=True)
class Accepted:
    """The silo admitted query ``qid`` and debited its ledger; the upload follows."""

    qid: bytes
    silo_id: str
    budget_remaining: str


@dataclass(frozen=True)
class Heartbeat:
    """The silo is alive at ``at_ms`` (milliseconds since the Unix epoch, silo clock)."""

    silo_id: str
    at_ms: int


# -- hub -> silo ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterEntry:
    """One silo of the roster: id, 1-based Shamir evaluation point, X25519 and Ed25519 keys."""

    silo_id: str
    index: int
    x25519_public: bytes
    ed25519_public: bytes = b""


@dataclass(frozen=True)
class EpochKeyInfo:
    """A silo's X25519 public key for one epoch and its Ed25519 signature over it."""

    fed_id: str
    silo_id: str
    epoch: int
    x25519_public: bytes
    signature: bytes = b""


@dataclass(frozen=True)
class AnalystEntry:
    """An enrolled analyst of the signed roster: name and Ed25519 public key."""

    name: str
    ed25519_public: bytes


@dataclass(frozen=True)
class Welcome:
    """The hub's answer to a Hello, and a new roster whenever it changes."""

    fed_id: str
    roster_version: int
    epoch: int
    roster: tuple[RosterEntry, ...]
    hub_version: str = ""
    contract_hash: str = ""
    coordinator_public: bytes = b""
    roster_signature: bytes = b""
    epoch_keys: tuple[EpochKeyInfo, ...] = ()
    analysts: tuple[AnalystEntry, ...] = ()


@dataclass(frozen=True)
class EncodingEntry:
    """Fixed-point encoding of one measure: clip ``bound`` (value units), ``frac_bits``, the
    standard deviation of the summed noise ``sigma_total`` (encoded units) and ``limbs``, the
    coordinates each cell gives the measure (1, or 2 for a value split into two limbs)."""

    bound: float
    frac_bits: int
    sigma_total: float
    limbs: int = 1


@dataclass(frozen=True)
class QueryRequest:
    """FSA-1 M0: the query descriptor Q sent to each cohort member.

    ``encoding`` and ``sigma_loc`` hold one entry per measure; ``cohort`` is sorted;
    ``rho_charge`` and ``epsilon_charge`` are decimal strings; ``deadline_ms`` (milliseconds
    since the Unix epoch) is when the hub stops waiting for uploads: a silo that holds the query
    for its operator's approval lets it expire then.
    """

    version: int
    fed_id: str
    roster_version: int
    epoch: int
    qid: bytes
    cohort: tuple[str, ...]
    threshold: int
    n_min: int
    dimension: int
    cells: int
    encoding: tuple[EncodingEntry, ...]
    sigma_loc: tuple[float, ...]
    rho_charge: str
    epsilon_charge: str
    analyst: str
    plan_hash: str
    sql: str
    params_json: str
    deadline_ms: int
    signature: bytes = b""
    #: The analyst's signed statement, relayed from :class:`ExecuteRequest` (empty: unsigned).
    analyst_nonce: bytes = b""
    analyst_issued_ms: int = 0
    analyst_epsilon: str = ""
    analyst_signature: bytes = b""
    #: For a round of a signed model query: the SQL the analyst signed (``sql`` is the round's,
    #: with its coefficients added) and the round's index, 0-based; empty and 0 otherwise.
    analyst_sql: str = ""
    analyst_round: int = 0


@dataclass(frozen=True)
class UnmaskRequest:
    """FSA-1 M2 for one survivor: the survivor and dropped sets and the seed-share ciphertexts
    addressed to it, as ``(sender_id, ciphertext)`` pairs."""

    qid: bytes
    hq: bytes
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    forwarded: tuple[SiloBytes, ...]
    signature: bytes = b""


@dataclass(frozen=True)
class Abort:
    """The hub gave up on query ``qid``."""

    qid: bytes
    reason: str
    signature: bytes = b""


# -- analyst <-> hub --------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecuteRequest:
    """One analyst query: SQL, parameters as JSON, epsilon as a decimal string (empty: the
    federation's default), the analyst's name, and whether to explain only."""

    sql: str
    params_json: str = ""
    epsilon: str = ""
    analyst: str = ""
    explain_only: bool = False
    #: The analyst's signature (with ``nonce`` and ``issued_ms``) over the statement of
    #: :class:`fedsql.secagg.analyst_query.SignedQuery`; empty when unsigned.
    nonce: bytes = b""
    issued_ms: int = 0
    signature: bytes = b""


@dataclass(frozen=True)
class SiloStatus:
    """What one silo did with a query (for example answered, refused or dropped) and why."""

    silo_id: str
    status: str
    reason: str = ""
    budget_remaining: str = ""


@dataclass(frozen=True)
class ExecuteReply:
    """The released answer: Arrow IPC streams of rows and per-cell statistics (opaque here), the
    privacy report as JSON, the explanation lines, the epsilon spent and each silo's status."""

    result_ipc: bytes = b""
    stats_ipc: bytes = b""
    report_json: str = ""
    explain: tuple[str, ...] = ()
    epsilon_spent: str = ""
    silos: tuple[SiloStatus, ...] = ()


@dataclass(frozen=True)
class ExecuteProgress:
    """Where a running query stands at each cohort member (``SiloStatus.status`` is waiting,
    running, uploaded, answered, refused or dropped); streamed before the :class:`ExecuteReply`."""

    silos: tuple[SiloStatus, ...] = ()


@dataclass(frozen=True)
class StatusRequest:
    """Ask the hub which silos are connected."""


@dataclass(frozen=True)
class ConnectedSilo:
    """One silo with an open stream; times are milliseconds since the Unix epoch (hub clock)."""

    silo_id: str
    name: str
    version: str
    connected_since_ms: int
    last_seen_ms: int


@dataclass(frozen=True)
class StatusReply:
    """The federation's id and its connected silos."""

    silos: tuple[ConnectedSilo, ...]
    fed_id: str


@dataclass(frozen=True)
class CatalogRequest:
    """Ask the hub which tables and columns an analyst can query."""


@dataclass(frozen=True)
class CatalogColumn:
    """One queryable column, typed as the contract declares it; ``groupable`` when it has a public
    domain (GROUP BY may use it), ``aggregable`` when it has bounds (SUM and AVG may use it)."""

    name: str
    type: str
    description: str = ""
    groupable: bool = False
    aggregable: bool = False


@dataclass(frozen=True)
class CatalogTable:
    """One queryable table with the columns of it that every connected silo shares."""

    name: str
    description: str = ""
    columns: tuple[CatalogColumn, ...] = ()


@dataclass(frozen=True)
class CatalogReply:
    """The federation's id and description, and what an analyst can query now."""

    fed_id: str
    description: str = ""
    tables: tuple[CatalogTable, ...] = ()


@dataclass(frozen=True)
class BudgetQuery:
    """The hub asks a silo for ``analyst``'s budget figures (``request_id``: 16 random bytes)."""

    request_id: bytes
    analyst: str


@dataclass(frozen=True)
class BudgetRequest:
    """An analyst asks what they have spent and have left at each clinic."""

    analyst: str = ""


@dataclass(frozen=True)
class ClinicBudget:
    """One clinic's figures for an analyst (decimal epsilon); empty when it did not report."""

    silo_id: str
    reported: bool = False
    spent: str = ""
    budget: str = ""
    left: str = ""
    queries: int = 0


@dataclass(frozen=True)
class BudgetReply:
    """What an analyst has spent and has left at each connected clinic."""

    fed_id: str
    analyst: str
    clinics: tuple[ClinicBudget, ...] = ()


#: Everything a silo sends on its stream.
SiloToHub = (
    Hello | MaskedUpload | UnmaskResponse | Refusal | Held | Accepted | Heartbeat | BudgetReport
)
#: Everything the hub sends on a silo's stream.
HubToSilo = Welcome | QueryRequest | UnmaskRequest | Abort | BudgetQuery
#: The requests and replies of the analyst's calls.
AnalystMessage = (
    ExecuteRequest
    | ExecuteReply
    | ExecuteProgress
    | StatusRequest
    | StatusReply
    | CatalogRequest
    | CatalogReply
    | BudgetRequest
    | BudgetReply
)
#: Every top-level message the transport carries.
Message = SiloToHub | HubToSilo | AnalystMessage
