"""The silo agent: dials the hub, admits or refuses queries, computes, noises, masks its share."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fedsql.audit import AuditLog, AuditRecord, release_digest
from fedsql.catalog import Contract, SiloPolicy
from fedsql.config.policy_watch import PolicySource
from fedsql.errors import BudgetExhausted, ConfigError, Error, ProtocolError, QueryRejected
from fedsql.privacy.accounting import micro_to_epsilon
from fedsql.privacy.ledger import Ledger
from fedsql.secagg.enrolment import SiloCredentials
from fedsql.secagg.epochs import EpochKey, EpochKeyStore
from fedsql.secagg.identity import verify_signature
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.protocol import Descriptor, Roster, SiloSession
from fedsql.secagg.protocol import UnmaskRequest as SecAggUnmaskRequest
from fedsql.secagg.qid_log import QidLog
from fedsql.silo.approvals import ApprovalQueue
from fedsql.silo.compute import noised_vector, partial_sql
from fedsql.silo.data_checks import check_clinic_data
from fedsql.silo.guard import Admission, admit
from fedsql.silo.holding import Decision, Holding
from fedsql.silo.model_rounds import ModelRoundLog
from fedsql.silo.policy_checks import (
    budget_limit_micro,
    budget_report,
    check_policy,
    policy_for_query,
)
from fedsql.silo.rate_limit import RateLimiter
from fedsql.silo.signed_queries import check_analyst_signature
from fedsql.silo.source_engines import QueryEngine, open_engine
from fedsql.silo.state_files import RosterPin, audit_signer
from fedsql.silo.translate import (
    abort_from_message,
    descriptor_from_request,
    epoch_key_from_message,
    epoch_key_to_message,
    response_to_message,
    roster_from_welcome,
    upload_to_message,
)
from fedsql.transport.client import HubConnection, connect_to_hub
from fedsql.transport.messages import (
    Abort,
    Accepted,
    BudgetQuery,
    Held,
    Hello,
    HubToSilo,
    QueryRequest,
    Refusal,
    UnmaskRequest,
    Welcome,
)
from fedsql.version import __version__

log = logging.getLogger(__name__)

#: What the hub shows for a clinic holding a query for its operator.
WAITING_FOR_OPERATOR = "waiting for the clinic's operator to approve the query"


@dataclass
class SiloStats:
    """Counters an operator (and the tests) can read: what this silo did, never what it computed."""

    admitted: int = 0
    refused: int = 0
    executed: int = 0


def _now_ms() -> int:
    return int(time.time() * 1000)


class SiloAgent:
    """One clinic's agent. It opens an outbound stream to the hub and serves queries on it.

    Every request is re-planned under this clinic's policy (:mod:`fedsql.silo.guard`), charged to
    the analyst's ledger durably, run in the locked-down engine, clamped and encoded, noised with
    this silo's share of discrete Gaussian noise and masked (FSA-1) before it leaves.
    """

    def __init__(
        self,
        contract: Contract,
        policy: SiloPolicy | PolicySource,
        data_path: str | Path,
        state_dir: str | Path,
        *,
        testing: bool = False,
        on_executed: Callable[[str], None] | None = None,
        credentials: SiloCredentials | None = None,
        authority_public: bytes | None = None,
    ) -> None:
        """Prepare the agent: open the engine, the ledger and the silo's keys.

        Args:
            contract: The federation contract.
            policy: This clinic's policy, or its file through a :class:`PolicySource`: then a
                changed policy applies from the next query, and while the file is invalid every
                query is refused (never run under the stale policy).
            data_path: The clinic's DuckDB file (unused when the policy has a ``[source]``).
            state_dir: Folder for the ledger (created if missing).
            testing: Start in test mode (accepts noise-off queries). Never in production.
            on_executed: Called with the query id whenever partial SQL runs (for tests and audit).
            credentials: This silo's enrolled keys. With ``authority_public`` the silo runs
                signed: it verifies the roster against the pinned enrolment authority, signs
                its messages, derives masks from signed per-epoch keys and refuses unsigned
                requests. Without them it makes throwaway keys and trusts the hub's roster
                (tests and local experiments only).
            authority_public: The pinned Ed25519 key of the enrolment authority.

        Raises:
            ConfigError: The data do not satisfy the contract's bounds on rows.
        """
        self.contract = contract
        self._source: PolicySource | None = None
        if isinstance(policy, PolicySource):
            self._source = policy
            policy = policy.current()
        self.policy = policy
        self.silo_id = policy.silo_id
        self.testing = testing
        self.engine: QueryEngine = open_engine(contract, policy, data_path, state_dir)
        self._within_cap = check_clinic_data(self.engine, contract, policy)
        state = Path(state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(state / f"{self.silo_id}.ledger.sqlite")
        if (credentials is None) != (authority_public is None):
            raise ConfigError("a silo's enrolled keys and the pinned authority key go together")
        if credentials is not None and credentials.silo_id != self.silo_id:
            raise ConfigError("the enrolled keys belong to another silo", key="silo.id")
        self._credentials = credentials
        self._authority_public = authority_public
        self._roster_pin = RosterPin(state / f"{self.silo_id}.roster-version")
        self._epoch_keys: EpochKeyStore | None = None
        self._epoch_key: EpochKey | None = None
        if credentials is not None:
            self.keys = credentials.x25519
            self._epoch_keys = EpochKeyStore(
                contract.federation_id, self.silo_id, credentials.identity
            )
            self._epoch_key = self._epoch_keys.open_epoch(0)
        else:
            self.keys = SiloKeyPair.generate()
        self.rates = RateLimiter(state / f"{self.silo_id}.rates.sqlite")
        self.audit = AuditLog(
            state / f"{self.silo_id}.audit.log",
            audit_signer(
                state, self.silo_id, None if credentials is None else credentials.identity
            ),
            verify_signature,
            log_id=f"silo:{self.silo_id}",
        )
        self.nonces = QidLog(state / f"{self.silo_id}.nonces.sqlite")
        self.model_rounds = ModelRoundLog(state / f"{self.silo_id}.model-rounds.sqlite")
        self.approvals = ApprovalQueue(state / f"{self.silo_id}.approvals.sqlite")
        self.approvals.abandon(_now_ms(), "the silo restarted before the query ran")
        self.holding = Holding(self.approvals, self._on_decision)
        self.stats = SiloStats()
        self._on_executed = on_executed
        self._roster: Roster | None = None
        self._session: SiloSession | None = None
        self._welcome = threading.Event()
        self._conn: HubConnection | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"silo-{self.silo_id}")
        self._lock = threading.Lock()

    def current_policy(self) -> SiloPolicy:
        """The policy the next query runs under.

        Raises:
            QueryRejected: The policy file is invalid now; every query is refused until fixed.
        """
        if self._source is None:
            return self.policy
        self.policy = policy_for_query(self._source)
        return self.policy

    def _record(self, request: QueryRequest, event: str, **fields: object) -> None:
        self.audit.append(
            AuditRecord(
                event=event,
                actor=f"silo:{self.silo_id}",
                analyst=request.analyst,
                qid=request.qid.hex(),
                plan_hash=request.plan_hash,
                sql=request.sql,
                params_json=request.params_json,
                **fields,  # type: ignore[arg-type]
            )
        )

    def hello(self) -> Hello:
        """The first message on the stream: who this silo is and what it shares."""
        return Hello(
            silo_id=self.silo_id,
            name=self.policy.name or self.silo_id,
            version=__version__,
            contract_fingerprint=self.contract.fingerprint,
            x25519_public=self.keys.public_bytes,
            min_group_size=self.policy.min_group_size,
            max_epsilon_per_query=repr(float(self.policy.max_epsilon_per_query)),
            shared=tuple(sorted((t, tuple(c)) for t, c in self.policy.shared.items())),
            test_mode=self.testing,
            allow_per_clinic=self.policy.allow_per_clinic,
            epoch_key=None if self._epoch_key is None else epoch_key_to_message(self._epoch_key),
        )

    def connect(
        self,
        target: str,
        *,
        timeout_s: float = 10.0,
        credentials: object | None = None,
        server_name: str | None = None,
    ) -> None:
        """Dial the hub and wait for its welcome.

        Raises:
            fedsql.errors.Error: The hub refused this silo or could not be reached.
        """
        if self._conn is not None:
            self._conn.close()
        self._conn = connect_to_hub(
            target,
            self.hello(),
            self._dispatch,
            credentials=credentials,
            server_name=server_name,
        )
        welcome = self._conn.welcome(timeout_s)
        self._apply_welcome(welcome)

    def wait_disconnected(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the stream to the hub to end; True once it has."""
        conn = self._conn
        return conn is None or conn.wait_closed(timeout_s)

    def close(self) -> None:
        """Close the stream, the workers, the engine and the silo's stores."""
        if self._conn is not None:
            self._conn.close()
        self.holding.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.engine.close()
        self.ledger.close()
        self.nonces.close()
        self.model_rounds.close()
        self.rates.close()
        self.audit.close()

    # -- messages from the hub -------------------------------------------------------------

    def _dispatch(self, msg: HubToSilo) -> None:
        if isinstance(msg, Welcome):
            self._apply_welcome(msg)
        elif isinstance(msg, QueryRequest):
            self._pool.submit(self._guarded, self._on_query, msg)
        elif isinstance(msg, UnmaskRequest):
            # Round 2 is a few hundred microseconds of cryptography and no I/O: answering it on
            # the stream's reader spares a hand-off to a worker thread.
            self._guarded(self._on_unmask, msg)
        elif isinstance(msg, BudgetQuery):
            self._pool.submit(self._guarded, self._on_budget_query, msg)
        elif isinstance(msg, Abort) and self._session is not None:
            if self.holding.drop(msg.qid, "the hub aborted the query"):
                log.info("silo %s: the hub aborted a held query", self.silo_id)
            try:
                self._session.receive_abort(abort_from_message(msg))
            except ProtocolError as exc:
                log.warning("silo %s ignored an abort: %s", self.silo_id, exc)

    def _guarded(self, fn: Callable[[object], None], msg: object) -> None:
        try:
            fn(msg)
        except Exception:  # a worker must never die silently
            log.exception("silo %s failed handling %s", self.silo_id, type(msg).__name__)

    def _claim_qid(self, qid: bytes) -> bool:
        # The ledger records every admitted query id durably (its charge refuses a repeat,
        # atomically); a query id it already holds is a replay, also after a restart.
        return not self.ledger.seen(qid.hex())

    def _apply_welcome(self, welcome: Welcome) -> None:
        roster = roster_from_welcome(welcome)
        with self._lock:
            if self._session is None:
                signed = self._credentials is not None
                self._session = SiloSession(
                    self.silo_id,
                    self.keys,
                    roster,
                    welcome.epoch,
                    c_max=self.contract.secagg.c_max,
                    claim_qid=self._claim_qid,
                    identity=self._credentials.identity if self._credentials else None,
                    authority_public=self._authority_public,
                    contract_hash=self.contract.fingerprint if signed else None,
                    min_roster_version=self._roster_pin.version() if signed else 0,
                    epoch_keys=self._epoch_keys,
                )
            else:
                self._session.update_roster(roster, welcome.epoch)
            if self._epoch_keys is not None and welcome.epoch_keys:
                self._session.add_epoch_keys(epoch_key_from_message(k) for k in welcome.epoch_keys)
            if self._credentials is not None and roster.version > self._roster_pin.version():
                self._roster_pin.pin(roster.version)
            self._roster = roster
        self._welcome.set()

    def _send(self, msg: object) -> None:
        assert self._conn is not None
        self._conn.send(msg)  # type: ignore[arg-type]

    def _refuse(
        self, request: QueryRequest, code: str, reason: str, policy: SiloPolicy | None
    ) -> None:
        self.stats.refused += 1
        remaining = ""
        if policy is not None:
            limit = budget_limit_micro(policy, request.analyst, self.ledger, _now_ms())
            remaining = micro_to_epsilon(self.ledger.remaining(request.analyst, limit))
        log.info("silo %s refused a query: %s", self.silo_id, code)
        self._record(request, "request", decision="refused", reason=f"{code}: {reason}")
        self._send(
            Refusal(
                qid=request.qid,
                silo_id=self.silo_id,
                code=code,
                reason=reason,
                budget_remaining=remaining,
            )
        )

    def _on_query(self, request: object) -> None:
        assert isinstance(request, QueryRequest)
        roster, session = self._roster, self._session
        if roster is None or session is None or request.roster_version != roster.version:
            self._refuse(
                request, "roster", "the silo does not hold the roster the query names", None
            )
            return
        if self.silo_id not in request.cohort:
            return
        policy: SiloPolicy | None = None
        try:
            check_analyst_signature(
                request, roster, self.contract, self.nonces, _now_ms(), self.model_rounds
            )
            policy = self.current_policy()
            admission = self._admit(request, policy)
            self.rates.check_and_record(request.analyst, time.time(), policy.rate_limit)
            descriptor = descriptor_from_request(request)
            session.accept(descriptor)
            if policy.approval == "manual":
                self.holding.hold(request, admission.plan.plan_hash, admission.epsilon_micro)
        except Error as exc:
            self._refuse(request, type(exc).__name__, str(exc), policy)
            return
        if policy.approval == "manual":
            self._record(request, "request", decision="held", epsilon_micro=admission.epsilon_micro)
            self._send(Held(qid=request.qid, silo_id=self.silo_id, reason=WAITING_FOR_OPERATOR))
            return
        self._charge_and_release(request, admission, policy, descriptor)

    def _admit(self, request: QueryRequest, policy: SiloPolicy) -> Admission:
        """Every check of a query under ``policy``, before any data is touched."""
        admission = admit(request, self.contract, policy, testing=self.testing)
        check_policy(admission.plan, policy, admission.epsilon_micro, self.contract)
        sql = partial_sql(admission, self._within_cap, self.silo_id)
        self.engine.bind(sql, admission.plan.run_params(sql, 0))
        return admission

    def _on_decision(self, decision: Decision) -> None:
        """The operator decided a held query, or its deadline passed (watcher thread)."""
        request, held = decision.request, decision.held
        session = self._session
        if decision.outcome == "approved":
            self._record(request, "request", decision="approved", reason=held.operator)
            self._pool.submit(self._guarded, self._run_approved, request)
            return
        if session is not None:
            session.abort(request.qid)
        if decision.outcome == "denied":
            self._record(request, "request", decision="denied", reason=held.reason)
            self._send(
                Refusal(
                    qid=request.qid,
                    silo_id=self.silo_id,
                    code="Denied",
                    reason=f"the clinic's operator denied the query: {held.reason}",
                )
            )
        elif decision.outcome == "expired":
            self._record(request, "request", decision="expired", reason=held.reason)

    def _run_approved(self, request: object) -> None:
        """Run an approved query, checked again under the policy in force now."""
        assert isinstance(request, QueryRequest)
        session = self._session
        policy: SiloPolicy | None = None
        try:
            policy = self.current_policy()
            if policy.approval == "deny":
                raise QueryRejected(
                    "this clinic currently refuses all queries (approval mode deny)"
                )
            admission = self._admit(request, policy)
        except Error as exc:
            if session is not None:
                session.abort(request.qid)
            self._refuse(request, type(exc).__name__, str(exc), policy)
            return
        self._charge_and_release(request, admission, policy)

    def _charge_and_release(
        self,
        request: QueryRequest,
        admission: Admission,
        policy: SiloPolicy,
        descriptor: Descriptor | None = None,
    ) -> None:
        """Debit the ledger durably, then compute, noise, mask and upload.

        ``descriptor`` is the request's descriptor when the caller already decoded it.
        """
        session = self._session
        assert session is not None
        budget = budget_limit_micro(policy, request.analyst, self.ledger, _now_ms())
        try:
            left = self.ledger.charge(
                request.analyst,
                request.qid.hex(),
                admission.epsilon_micro,
                budget,
                note=admission.plan.plan_hash,
            )
        except (BudgetExhausted, ProtocolError) as exc:
            session.abort(request.qid)
            self._refuse(request, type(exc).__name__, str(exc), policy)
            return
        self.stats.admitted += 1
        self._record(request, "request", decision="admitted", epsilon_micro=admission.epsilon_micro)
        self._send(
            Accepted(qid=request.qid, silo_id=self.silo_id, budget_remaining=micro_to_epsilon(left))
        )
        if descriptor is None:
            descriptor = descriptor_from_request(request)
        try:
            vector, extra = noised_vector(
                self.engine,
                admission,
                self._within_cap,
                policy.query_timeout_s,
                self.silo_id,
                on_run=lambda: self._executed(request),
            )
            upload = session.upload(descriptor, vector, extra)
        except Error as exc:
            # The charge stands: a query that failed after execution started costs its epsilon.
            session.abort(request.qid)
            self._record(
                request, "failure", reason=f"{type(exc).__name__}: {exc}",
                epsilon_micro=admission.epsilon_micro,
            )  # fmt: skip
            self._refuse(request, type(exc).__name__, str(exc), policy)
            return
        self._record(request, "release", release_digest=release_digest(upload.canonical()))
        self._send(upload_to_message(upload))

    def _executed(self, request: QueryRequest) -> None:
        """The partial query of ``request`` ran (counted, and reported to the test hook)."""
        self.stats.executed += 1
        if self._on_executed is not None:
            self._on_executed(request.qid.hex())

    def _on_budget_query(self, msg: object) -> None:
        """Tell the hub an analyst's figures from this clinic's ledger (nothing if the policy is
        invalid: the clinic answers nothing then)."""
        assert isinstance(msg, BudgetQuery)
        try:
            policy = self.current_policy()
        except Error as exc:
            log.warning("silo %s did not answer a budget inquiry: %s", self.silo_id, exc)
            return
        self._send(budget_report(msg, self.silo_id, policy, self.ledger, _now_ms()))

    def _on_unmask(self, msg: object) -> None:
        assert isinstance(msg, UnmaskRequest)
        assert self._session is not None
        request = SecAggUnmaskRequest(
            qid=msg.qid,
            hq=msg.hq,
            survivors=msg.survivors,
            dropped=msg.dropped,
            forwarded=msg.forwarded,
            signature=msg.signature,
        )
        try:
            response = self._session.unmask(request)
        except ProtocolError as exc:
            log.warning("silo %s refused an unmask request: %s", self.silo_id, exc)
            return
        self._send(response_to_message(response))
