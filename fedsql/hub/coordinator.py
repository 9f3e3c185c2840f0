"""The hub: admits silos, plans each query, runs FSA-1 over the cohort, finalizes the answer."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np

from fedsql.audit import AuditLog, AuditRecord, release_digest
from fedsql.catalog import Contract
from fedsql.errors import (
    ConfigError,
    Error,
    ProtocolError,
    QuorumNotMet,
)
from fedsql.hub.budget_inquiry import BudgetInquiries
from fedsql.hub.directory import catalog_reply, status_reply
from fedsql.hub.finalize import finalize_engine
from fedsql.hub.model_run import explain_model, run_model
from fedsql.hub.planning import (
    Prepared,
    check_per_clinic,
    choose_epsilon,
    descriptor_for,
    explain_lines,
    visible_tables,
)
from fedsql.hub.query_run import QueryRun, progress_of
from fedsql.hub.registry import Registry
from fedsql.hub.reply import build_reply, quorum_error
from fedsql.hub.translate import (
    epoch_key_from_message,
    message_from_unmask_request,
    request_from_descriptor,
    response_from_message,
    roster_from_welcome,
    upload_from_message,
    welcome_from_roster,
)
from fedsql.privacy.accounting import epsilon_to_micro
from fedsql.privacy.calibrate import NoisePlan, plan_noise
from fedsql.query_terms import encoding_for, measure_specs
from fedsql.secagg.encoding import check_plan, decode
from fedsql.secagg.epochs import verify_epoch_key
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.protocol import CoordinatorSession, Roster
from fedsql.sql.plan_cache import plan_cached
from fedsql.transport.messages import (
    Abort,
    Accepted,
    BudgetReply,
    BudgetReport,
    BudgetRequest,
    CatalogReply,
    ExecuteProgress,
    ExecuteReply,
    ExecuteRequest,
    Heartbeat,
    Held,
    Hello,
    MaskedUpload,
    Refusal,
    SiloToHub,
    StatusReply,
    UnmaskResponse,
    Welcome,
)
from fedsql.transport.server import SiloChannel

log = logging.getLogger(__name__)


class Hub:
    """Coordinator of one federation. Implements the transport's hub handler.

    The hub never sees a silo's vector in the clear: it receives masked uploads, asks survivors
    for what FSA-1 lets it learn, and recovers only the noisy total.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        noise: bool = True,
        round_timeout_s: float = 60.0,
        roster: Roster | None = None,
        coordinator: IdentityKey | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """Create a hub for ``contract``.

        Args:
            contract: The federation contract.
            noise: False only in tests: asks silos for noise-off answers (silos not started for
                testing refuse such queries).
            round_timeout_s: How long each secure-aggregation round waits for silos.
            roster: The roster signed by the enrolment authority. With it, only enrolled silos
                may connect, every protocol message is signed and silos verify the roster against
                the authority they pin. Without it the hub builds an unsigned roster from the
                silos that connect (tests and local experiments only).
            coordinator: The hub's Ed25519 key, the one the signed roster names.
            audit: The hub's audit log: every request, its decision and a digest of every
                answer released are appended to it.

        Raises:
            ConfigError: The roster is for another federation or contract, or names another
                coordinator key.
        """
        if (roster is None) != (coordinator is None):
            raise ConfigError("a signed roster and the coordinator's key go together")
        if roster is not None and coordinator is not None:
            if roster.fed_id != contract.federation_id:
                raise ConfigError("the roster is for another federation", key="roster.fed_id")
            if roster.contract_hash != contract.fingerprint:
                raise ConfigError(
                    "the roster was signed for another version of the contract; enrol again",
                    key="roster.contract_hash",
                )
            if roster.coordinator_public != coordinator.public_bytes:
                raise ConfigError(
                    "the roster names another coordinator key", key="roster.coordinator_public"
                )
        self._signed_roster = roster
        self._coordinator = coordinator
        self.audit = audit
        self.contract = contract
        self.noise = noise
        self.round_timeout_s = round_timeout_s
        self._budgets = BudgetInquiries()
        self.registry = Registry(contract.federation_id, contract.fingerprint)
        self._roster_lock = threading.Lock()
        self._runs: dict[bytes, QueryRun] = {}
        self._runs_lock = threading.Lock()
        self._finalize_engine = finalize_engine()

    # -- transport handler ---------------------------------------------------------------

    def on_connect(self, hello: Hello, channel: SiloChannel) -> Welcome:
        """Register a silo and tell every other silo about the new roster."""
        if self._signed_roster is not None:
            self._check_enrolled(hello, self._signed_roster)
        with self._roster_lock:
            self.registry.add(hello, channel)
            welcome = self._welcome()
            _, silos = self.registry.snapshot()
            for silo in silos:
                if silo.silo_id != hello.silo_id:
                    silo.channel.send(welcome)
        log.info("silo %s connected (roster version %d)", hello.silo_id, welcome.roster_version)
        return welcome

    def on_disconnect(self, silo_id: str) -> None:
        """Forget a silo; queries waiting on it see it as dropped."""
        with self._roster_lock:
            self.registry.remove(silo_id)
            welcome = self._welcome()
            _, silos = self.registry.snapshot()
            for silo in silos:
                silo.channel.send(welcome)
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.disconnected(silo_id)
        log.info("silo %s disconnected", silo_id)

    @staticmethod
    def _check_enrolled(hello: Hello, roster: Roster) -> None:
        entry = roster.get(hello.silo_id)
        if entry is None:
            raise ProtocolError(f"silo {hello.silo_id} is not enrolled in this federation's roster")
        if entry.x25519_public != hello.x25519_public:
            raise ProtocolError(f"silo {hello.silo_id} presents a key the roster does not list")
        if hello.epoch_key is None:
            raise ProtocolError(f"silo {hello.silo_id} sent no signed epoch key")
        verify_epoch_key(epoch_key_from_message(hello.epoch_key), roster)

    def _welcome(self) -> Welcome:
        """The roster every silo holds: signed and fixed, or built from the connected silos."""
        roster = self._signed_roster
        if roster is None:
            return self.registry.welcome()
        _, silos = self.registry.snapshot()
        return welcome_from_roster(
            roster,
            self.registry.epoch,
            tuple(s.hello.epoch_key for s in silos if s.hello.epoch_key is not None),
        )

    def on_message(self, silo_id: str, msg: SiloToHub) -> None:
        """Route a silo's message to the query it belongs to."""
        self.registry.touch(silo_id)
        if isinstance(msg, Heartbeat):
            return
        if isinstance(msg, BudgetReport):
            self._budgets.report(silo_id, msg)
            return
        qid = getattr(msg, "qid", None)
        if getattr(msg, "silo_id", silo_id) != silo_id:
            log.warning("silo %s sent a message in another silo's name; dropped", silo_id)
            return
        with self._runs_lock:
            run = self._runs.get(qid) if isinstance(qid, bytes) else None
        if run is None:
            return
        if isinstance(msg, Accepted):
            run.accepted(msg)
        elif isinstance(msg, Held):
            run.held(msg)
        elif isinstance(msg, Refusal):
            run.refused(msg)
        elif isinstance(msg, MaskedUpload):
            run.uploaded(msg)
        elif isinstance(msg, UnmaskResponse):
            run.answered(msg)

    def status(self) -> StatusReply:
        """Connected silos with version and last-seen time."""
        _, silos = self.registry.snapshot()
        return status_reply(self.contract, silos)

    # -- queries -------------------------------------------------------------------------

    def _audit_record(self, req: ExecuteRequest, event: str, **fields: object) -> None:
        if self.audit is None:
            return
        self.audit.append(
            AuditRecord(
                event=event,
                actor="hub",
                analyst=req.analyst,
                sql=req.sql,
                params_json=req.params_json,
                **fields,  # type: ignore[arg-type]
            )
        )

    def prepare(self, req: ExecuteRequest) -> Prepared:
        """Plan a query against the connected silos without sending anything (audited).

        Raises:
            QueryRejected: The SQL is not allowed, or epsilon is above a clinic's cap.
            QuorumNotMet: Too few silos are connected.
        """
        try:
            prepared = self._prepare(req)
        except Error as exc:
            self._audit_record(req, "request", decision="rejected", reason=str(exc))
            raise
        self._audit_record(
            req,
            "request",
            decision="explained" if req.explain_only else "planned",
            plan_hash=prepared.plan.plan_hash,
        )
        return prepared

    def _prepare(self, req: ExecuteRequest) -> Prepared:
        with self._roster_lock:
            version, silos = self.registry.snapshot()
            welcome = self._welcome()
        n = len(silos)
        needed = self.contract.secagg.n_min
        if n < needed:
            raise QuorumNotMet(
                f"{n} silo(s) connected; this federation needs at least {needed} to release "
                "anything"
            )
        visible = visible_tables(silos)
        plan = plan_cached(req.sql, req.params_json, self.contract, visible)
        check_per_clinic(self.contract, plan, silos)
        epsilon = choose_epsilon(self.contract, req.epsilon, silos)
        noise: NoisePlan | None = None
        if self.noise:
            noise = plan_noise(
                float(epsilon),
                self.contract.delta,
                measure_specs(plan),
                self.contract.secagg.m_min(n),
                self.contract.secagg.m_all(n),
            )
        encoding = encoding_for(self.contract, plan, noise, n)
        check_plan(encoding, n)
        if self._signed_roster is not None:
            roster, version = self._signed_roster, self._signed_roster.version
        else:
            roster = roster_from_welcome(welcome)
        return Prepared(plan, epsilon, noise, encoding, tuple(silos), version, roster)

    def explain(self, prepared: Prepared) -> list[str]:
        """Human-readable plan: partial SQL, key space, sensitivities, noise and cost."""
        return explain_lines(self.contract, prepared) + explain_model(prepared)

    def execute(self, req: ExecuteRequest) -> ExecuteReply:
        """Run (or explain) one analyst query end to end."""
        prepared = self.prepare(req)
        if req.explain_only:
            return ExecuteReply(
                result_ipc=b"",
                stats_ipc=b"",
                report_json="",
                explain=tuple(self.explain(prepared)),
                epsilon_spent="0",
                silos=(),
            )
        return self._run(req, prepared)

    def execute_stream(self, req: ExecuteRequest) -> Iterator[ExecuteProgress | ExecuteReply]:
        """Run one query like :meth:`execute`, yielding each cohort member's status as it changes.

        Planning errors raise before anything is yielded. The query itself runs on a worker
        thread; this generator follows its :class:`QueryRun` and yields an
        :class:`ExecuteProgress` at once and whenever a status changes (the last one shows the
        final states), then the reply (or raises the error).
        A consumer that stops early does not stop the query.
        """
        prepared = self.prepare(req)
        if req.explain_only:
            yield self.execute(req)
            return
        started: queue.SimpleQueue[QueryRun | None] = queue.SimpleQueue()
        outcome: list[ExecuteReply | Exception] = []
        done = threading.Event()
        watched: list[QueryRun] = []

        def watch(run: QueryRun) -> None:
            watched.append(run)
            started.put(run)

        def work() -> None:
            try:
                outcome.append(self._run(req, prepared, watch=watch))
            except Exception as exc:
                outcome.append(exc)
            finally:
                done.set()
                if watched:
                    with watched[0].cond:
                        watched[0].cond.notify_all()
                else:
                    started.put(None)

        worker = threading.Thread(target=work, name="fedsql-hub-query", daemon=True)
        worker.start()
        run = started.get()
        last: ExecuteProgress | None = None
        while run is not None:
            with run.cond:
                finished = done.is_set()
                now = progress_of(run)
                if now == last and not finished:
                    run.cond.wait()
                    continue
            if now != last:
                last = now
                yield now
            if finished:
                break
        worker.join()
        result = outcome[0]
        if isinstance(result, Exception):
            raise result
        yield result

    def budget(self, req: BudgetRequest) -> BudgetReply:
        """What an analyst has spent and has left at each connected clinic, from its ledger."""
        with self._roster_lock:
            _, silos = self.registry.snapshot()
        clinics = self._budgets.ask(req.analyst, ((s.silo_id, s.channel) for s in silos))
        return BudgetReply(
            fed_id=self.contract.federation_id, analyst=req.analyst, clinics=tuple(clinics)
        )

    def catalog(self) -> CatalogReply:
        """The tables and columns every connected silo shares, typed as the contract declares."""
        with self._roster_lock:
            _, silos = self.registry.snapshot()
        return catalog_reply(self.contract, silos)

    def _run(
        self,
        req: ExecuteRequest,
        prepared: Prepared,
        *,
        watch: Callable[[QueryRun], None] | None = None,
    ) -> ExecuteReply:
        if prepared.plan.model is not None:
            reply, qid = run_model(self, req, prepared, watch=watch)
        else:
            started = time.monotonic()
            run, survivors, values, all_answered = self.aggregate(req, prepared, watch=watch)
            reply = build_reply(
                self.contract,
                self._finalize_engine,
                req,
                prepared,
                run,
                (survivors, values, all_answered),
                started,
            )
            qid = run.qid
        # Who is in the release, and why each other enrolled silo is not.
        answered = ", ".join(s.silo_id for s in reply.silos if s.status == "answered")
        absent = "".join(
            f"; {s.silo_id} {s.status}: {s.reason}" if s.reason else f"; {s.silo_id} {s.status}"
            for s in reply.silos
            if s.status != "answered"
        )
        self._audit_record(
            req,
            "release",
            qid=qid.hex(),
            plan_hash=prepared.plan.plan_hash,
            epsilon_micro=epsilon_to_micro(reply.epsilon_spent),
            release_digest=release_digest(reply.result_ipc),
            reason=f"answered by {answered}{absent}",
        )
        return reply

    def aggregate(
        self,
        req: ExecuteRequest,
        prepared: Prepared,
        *,
        watch: Callable[[QueryRun], None] | None = None,
        signed: ExecuteRequest | None = None,
        model_round: int = 0,
    ) -> tuple[QueryRun, tuple[str, ...], np.ndarray, bool]:
        """Run one secure aggregation of a prepared query over its cohort.

        Args:
            req: The request (SQL, parameters, analyst).
            prepared: Its plan, noise and encoding.
            watch: Called with the query's run as soon as it exists.
            signed: For a round of a model query, the analyst's own request, whose signed
                statement (original SQL, total epsilon) is relayed with the round.
            model_round: The round's index, 0-based (with ``signed``).

        Returns:
            The run (each silo's outcome), the survivors, the decoded noisy totals, and whether
            every cohort member answered so the extra parts of the noise were removed (the
            totals then carry ``sqrt(n)·sigma_base``, else ``sqrt(|S|)·sigma_local``).

        Raises:
            QuorumNotMet: Too few silos uploaded or answered.
            BudgetExhausted: Too few silos had budget left.
        """
        desc = descriptor_for(
            self.contract, req, prepared, self.registry.epoch, self.round_timeout_s
        )
        run = QueryRun(desc.qid, desc.cohort)
        with self._runs_lock:
            self._runs[desc.qid] = run
        if watch is not None:
            watch(run)
        channels = {s.silo_id: s.channel for s in prepared.silos}
        try:
            session = CoordinatorSession(
                desc, prepared.roster, c_max=self.contract.secagg.c_max, signer=self._coordinator
            )
            request = dataclasses.replace(
                request_from_descriptor(session.desc),
                analyst_nonce=req.nonce,
                analyst_issued_ms=req.issued_ms,
                analyst_epsilon=req.epsilon if signed is None else signed.epsilon,
                analyst_signature=req.signature,
                analyst_sql="" if signed is None else signed.sql,
                analyst_round=model_round,
            )
            for channel in channels.values():
                channel.send(request)
            run.wait_round1(time.monotonic() + self.round_timeout_s)
            for silo_id, upload in sorted(run.uploads.items()):
                try:
                    session.add_upload(upload_from_message(upload))
                except ProtocolError as exc:
                    log.warning("dropping an invalid upload from %s: %s", silo_id, exc)
            try:
                unmask = session.close_round1()
            except QuorumNotMet:
                self._abort(session, channels, "too few uploads")
                run.mark_timeouts()
                raise quorum_error(self.contract, run) from None
            for silo_id, r2 in unmask.items():
                channels[silo_id].send(message_from_unmask_request(r2))
            survivors = tuple(sorted(unmask))
            run.wait_round2(survivors, time.monotonic() + self.round_timeout_s)
            for silo_id, resp in sorted(run.responses.items()):
                try:
                    session.add_response(response_from_message(resp))
                except ProtocolError as exc:
                    log.warning("ignoring an invalid unmask response from %s: %s", silo_id, exc)
            try:
                total = session.finish()
            except Error:
                self._abort(session, channels, "unmasking failed")
                run.mark_timeouts()
                raise
            values = decode(total, desc.encoding, desc.cells, len(desc.cohort))
        finally:
            with self._runs_lock:
                self._runs.pop(desc.qid, None)
        run.mark_timeouts()
        return run, survivors, values, session.extras_removed

    def _abort(
        self, session: CoordinatorSession, channels: dict[str, SiloChannel], reason: str
    ) -> None:
        notice = session.abort(reason)
        message = Abort(qid=notice.qid, reason=notice.reason, signature=notice.signature)
        for channel in channels.values():
            channel.send(message)
