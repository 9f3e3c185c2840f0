"""The silo agent: dials the hub, admits or refuses queries, computes, noises, masks its share."""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedsql.catalog import Contract, SiloPolicy
from fedsql.errors import BudgetExhausted, ConfigError, Error, ProtocolError
from fedsql.privacy.accounting import epsilon_to_micro, micro_to_epsilon
from fedsql.privacy.ledger import Ledger
from fedsql.privacy.noise import sample_discrete_gaussian
from fedsql.secagg.encoding import encode
from fedsql.secagg.keys import SiloKeyPair
from fedsql.secagg.protocol import (
    Roster,
    RosterEntry,
    SiloSession,
)
from fedsql.secagg.protocol import (
    UnmaskRequest as SecAggUnmaskRequest,
)
from fedsql.silo.engine import Engine
from fedsql.silo.guard import Admission, admit
from fedsql.silo.translate import descriptor_from_request, response_to_message, upload_to_message
from fedsql.silo.vector import dense_vector
from fedsql.sql.plan import SALT_PARAM
from fedsql.transport.client import HubConnection, connect_to_hub
from fedsql.transport.messages import (
    Abort,
    Accepted,
    Hello,
    HubToSilo,
    QueryRequest,
    Refusal,
    UnmaskRequest,
    Welcome,
)
from fedsql.version import __version__

log = logging.getLogger(__name__)


@dataclass
class SiloStats:
    """Counters an operator (and the tests) can read: what this silo did, never what it computed."""

    admitted: int = 0
    refused: int = 0
    executed: int = 0


def _salted(sql: str, salt: int) -> dict[str, object]:
    """The named parameters of a partial query: the keyed-order salt, when the query uses it."""
    return {SALT_PARAM: salt} if f"${SALT_PARAM}" in sql else {}


class SiloAgent:
    """One clinic's agent. It opens an outbound stream to the hub and serves queries on it.

    Every request is re-planned under this clinic's policy (:mod:`fedsql.silo.guard`), charged to
    the analyst's ledger durably, run in the locked-down engine, clamped and encoded, noised with
    this silo's share of discrete Gaussian noise and masked (FSA-1) before it leaves.
    """

    def __init__(
        self,
        contract: Contract,
        policy: SiloPolicy,
        data_path: str | Path,
        state_dir: str | Path,
        *,
        testing: bool = False,
        on_executed: Callable[[str], None] | None = None,
    ) -> None:
        """Prepare the agent: open the engine, the ledger and the silo's keys.

        Args:
            contract: The federation contract.
            policy: This clinic's policy.
            data_path: The clinic's DuckDB file.
            state_dir: Folder for the ledger (created if missing).
            testing: Start in test mode (accepts noise-off queries). Never in production.
            on_executed: Called with the query id whenever partial SQL runs (for tests and audit).

        Raises:
            ConfigError: The data do not satisfy the contract's bounds on rows.
        """
        self.contract = contract
        self.policy = policy
        self.silo_id = policy.silo_id
        self.testing = testing
        self.engine = Engine(data_path)
        self._within_cap: dict[str, bool] = {}
        self._check_data()
        state = Path(state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(state / f"{self.silo_id}.ledger.sqlite")
        self.keys = SiloKeyPair.generate()
        self.stats = SiloStats()
        self._on_executed = on_executed
        self._roster: Roster | None = None
        self._session: SiloSession | None = None
        self._welcome = threading.Event()
        self._conn: HubConnection | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"silo-{self.silo_id}")
        self._lock = threading.Lock()

    def _check_data(self) -> None:
        tables = self.engine.tables()
        for name, columns in self.policy.shared.items():
            table = self.contract.table(name)
            if table is None or name not in tables:
                raise ConfigError(
                    f"shared table {name} is missing from the clinic's database",
                    key=f"share.{name}",
                )
            for col in columns:
                if col not in tables[name]:
                    raise ConfigError(
                        f"shared column {name}.{col} is missing from the clinic's database",
                        key=f"share.{name}",
                    )
            if self.engine.row_count(name) > self.contract.secagg.max_rows_per_silo:
                raise ConfigError(
                    f"table {name} has more rows than the contract's max_rows_per_silo",
                    key="secagg.max_rows_per_silo",
                )
            # The database is read-only, so a table in which no unit exceeds the row cap stays so:
            # single-table queries there may skip the per-query cap (it could drop no row).
            self._within_cap[name] = (
                self.engine.max_rows_per_unit(name, table.unit) <= table.max_rows_per_unit
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
        )

    def connect(self, target: str, *, timeout_s: float = 10.0) -> None:
        """Dial the hub and wait for its welcome.

        Raises:
            fedsql.errors.Error: The hub refused this silo or could not be reached.
        """
        self._conn = connect_to_hub(target, self.hello(), self._dispatch)
        welcome = self._conn.welcome(timeout_s)
        self._apply_welcome(welcome)

    def close(self) -> None:
        """Close the stream, the workers and the engine."""
        if self._conn is not None:
            self._conn.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    # -- messages from the hub -------------------------------------------------------------

    def _dispatch(self, msg: HubToSilo) -> None:
        if isinstance(msg, Welcome):
            self._apply_welcome(msg)
        elif isinstance(msg, QueryRequest):
            self._pool.submit(self._guarded, self._on_query, msg)
        elif isinstance(msg, UnmaskRequest):
            self._pool.submit(self._guarded, self._on_unmask, msg)
        elif isinstance(msg, Abort) and self._session is not None:
            self._session.abort(msg.qid)

    def _guarded(self, fn: Callable[[object], None], msg: object) -> None:
        try:
            fn(msg)
        except Exception:  # a worker must never die silently
            log.exception("silo %s failed handling %s", self.silo_id, type(msg).__name__)

    def _apply_welcome(self, welcome: Welcome) -> None:
        with self._lock:
            roster = Roster(
                fed_id=welcome.fed_id,
                version=welcome.roster_version,
                entries=tuple(
                    RosterEntry(silo_id=e.silo_id, index=e.index, x25519_public=e.x25519_public)
                    for e in welcome.roster
                ),
            )
            self._roster = roster
            if self._session is None:
                self._session = SiloSession(
                    self.silo_id, self.keys, roster, welcome.epoch, c_max=self.contract.secagg.c_max
                )
            else:
                self._session.update_roster(roster, welcome.epoch)
        self._welcome.set()

    def _send(self, msg: object) -> None:
        assert self._conn is not None
        self._conn.send(msg)  # type: ignore[arg-type]

    def _refuse(self, request: QueryRequest, code: str, reason: str) -> None:
        self.stats.refused += 1
        budget = self.policy.budget_for(request.analyst)
        left = self.ledger.remaining(request.analyst, epsilon_to_micro(repr(float(budget))))
        log.info("silo %s refused a query: %s", self.silo_id, code)
        self._send(
            Refusal(
                qid=request.qid,
                silo_id=self.silo_id,
                code=code,
                reason=reason,
                budget_remaining=micro_to_epsilon(left),
            )
        )

    def _on_query(self, request: object) -> None:
        assert isinstance(request, QueryRequest)
        roster, session = self._roster, self._session
        if roster is None or session is None or request.roster_version != roster.version:
            self._refuse(request, "roster", "the silo does not hold the roster the query names")
            return
        if self.silo_id not in request.cohort:
            return
        try:
            admission = admit(request, self.contract, self.policy, testing=self.testing)
        except Error as exc:
            self._refuse(request, type(exc).__name__, str(exc))
            return
        descriptor = descriptor_from_request(request)
        try:
            sql = self._partial_sql(admission)
            self.engine.bind(sql, _salted(sql, 0))
            session.accept(descriptor)
        except Error as exc:
            self._refuse(request, type(exc).__name__, str(exc))
            return
        budget = epsilon_to_micro(repr(float(self.policy.budget_for(request.analyst))))
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
            self._refuse(request, type(exc).__name__, str(exc))
            return
        self.stats.admitted += 1
        self._send(
            Accepted(qid=request.qid, silo_id=self.silo_id, budget_remaining=micro_to_epsilon(left))
        )
        try:
            vector = self._compute(admission, request)
            upload = session.upload(descriptor, vector)
        except Error as exc:
            # The charge stands: a query that failed after execution started costs its epsilon.
            session.abort(request.qid)
            self._refuse(request, type(exc).__name__, str(exc))
            return
        self._send(upload_to_message(upload))

    def _partial_sql(self, admission: Admission) -> str:
        plan = admission.plan
        if plan.partial_sql_uncapped and all(self._within_cap.get(t, False) for t in plan.tables):
            return plan.partial_sql_uncapped
        return plan.partial_sql

    def _compute(self, admission: Admission, request: QueryRequest) -> np.ndarray:
        plan = admission.plan
        sql = self._partial_sql(admission)
        names, rows = self.engine.run(
            sql, _salted(sql, secrets.randbits(63)), self.policy.query_timeout_s
        )
        self.stats.executed += 1
        if self._on_executed is not None:
            self._on_executed(request.qid.hex())
        values = dense_vector(plan, names, rows)
        encoded = encode(values, admission.encoding, plan.cells)
        if admission.noise is not None:
            n_measures = len(plan.measures)
            for j, mn in enumerate(admission.noise.measures):
                assert mn.sigma_local_encoded >= 2.0 - 1e-9 and math.isfinite(
                    mn.sigma_local_encoded
                )
                encoded[j::n_measures] += sample_discrete_gaussian(
                    mn.sigma_local_encoded, plan.cells
                )
        del values
        return encoded

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
