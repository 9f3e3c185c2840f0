"""The embedded example federations: a hub and its silos in one process, real gRPC on loopback."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from fedsql.audit import AuditLog
from fedsql.config.contract import load_contract
from fedsql.config.policy import load_policy
from fedsql.demo.datasets import dataset as example_dataset
from fedsql.errors import ConfigError
from fedsql.hub.coordinator import Hub
from fedsql.secagg.analyst_query import AnalystKey
from fedsql.secagg.enrolment import SiloCredentials, build_roster
from fedsql.secagg.identity import IdentityKey, verify_signature
from fedsql.secagg.roster import Authority
from fedsql.silo.agent import SiloAgent
from fedsql.transport.server import RunningServer, start_hub_server

log = logging.getLogger(__name__)

DEMO_PREFIX = "demo:"


class DemoFederation:
    """Start an example federation's hub and its silos; stop them all on :meth:`close`.

    ``dataset`` picks the federation: ``"demo"`` (four clinics, ``policies/demo``) or ``"omop"``
    (five OMOP CDM clinics, ``examples/omop``). Budgets live in ``state_dir``; by default a fresh
    temporary folder, so every demo run starts with full budgets. Pass a folder to keep ledgers
    between runs.
    """

    def __init__(
        self,
        *,
        state_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        noise: bool = True,
        testing: bool = False,
        silos: tuple[str, ...] | None = None,
        policy_overrides: Mapping[str, Any] | None = None,
        silo_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        round_timeout_s: float = 60.0,
        hub_audit: bool = False,
        analysts: Mapping[str, bytes] | None = None,
        analyst_for_token: Callable[[str], str | None] | None = None,
        dataset: str = "demo",
    ) -> None:
        """Generate (or reuse) the demo data and start everything.

        Args:
            state_dir: Folder for the silos' ledgers; a temporary one when None.
            cache_dir: Folder for the generated clinic databases (default cache).
            noise: False only with ``testing``: noise-off answers for oracle tests.
            testing: Start the silos in test mode.
            silos: Start only these clinics (default: all of them).
            policy_overrides: Policy fields to replace in every clinic's policy (for tests, e.g.
                ``{"budget_epsilon": 1000.0}``).
            silo_overrides: Policy fields to replace in one clinic's policy, by silo id (e.g.
                ``{"mumbai": {"approval": "manual"}}``); applied after ``policy_overrides``.
            round_timeout_s: How long the hub waits in each secure-aggregation round (and so
                how long a clinic's operator has to decide a held query).
            hub_audit: Give the hub a signed audit log, ``hub.audit.log`` in ``state_dir``.
            analysts: Analysts to enrol in the signed roster (name -> Ed25519 public key); the
                clinics then take only queries those analysts signed.
            analyst_for_token: The hub's API-token check (see ``fedsql.hub.analysts``).
            dataset: The example federation to run: ``"demo"`` or ``"omop"``.
        """
        if not noise and not testing:
            raise ConfigError("noise can be switched off only in test mode")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="fedsql-demo-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        example = example_dataset(dataset)
        self.dataset = example.name
        files = example.files()
        self.contract = load_contract(files / "contract.toml")
        data = example.ensure_data(Path(cache_dir) if cache_dir else None)
        policies = []
        for policy_file in sorted(files.glob("*.toml")):
            if policy_file.name == "contract.toml":
                continue
            policy = load_policy(policy_file, self.contract)
            if policy_overrides:
                policy = dataclasses.replace(policy, **policy_overrides)
            if silo_overrides and policy.silo_id in silo_overrides:
                policy = dataclasses.replace(policy, **silo_overrides[policy.silo_id])
            policies.append(policy)
        # Enrolment, done in memory for the demo: every clinic makes its keys, the authority
        # (not the hub) signs the roster, and each silo pins the authority's key.
        self.authority = Authority.generate()
        coordinator = IdentityKey.generate()
        self.credentials = {p.silo_id: SiloCredentials.generate(p.silo_id) for p in policies}
        self.roster = self.authority.sign(
            build_roster(
                self.contract.federation_id,
                1,
                self.contract.fingerprint,
                coordinator.public_bytes,
                [c.request for c in self.credentials.values()],
                [AnalystKey(name, key) for name, key in (analysts or {}).items()],
            )
        )
        self.hub_audit: AuditLog | None = None
        if hub_audit:
            self.hub_audit = AuditLog(
                self.state_dir / "hub.audit.log", coordinator, verify_signature, log_id="hub"
            )
        self.hub = Hub(
            self.contract,
            noise=noise,
            roster=self.roster,
            coordinator=coordinator,
            round_timeout_s=round_timeout_s,
            audit=self.hub_audit,
        )
        self.server: RunningServer = start_hub_server(
            self.hub, "127.0.0.1:0", analyst_for_token=analyst_for_token
        )
        self.target = f"127.0.0.1:{self.server.port}"
        self.silos: dict[str, SiloAgent] = {}
        self._testing = testing
        self._data = data
        self._policies = {p.silo_id: p for p in policies}
        try:
            for policy in policies:
                if silos is None or policy.silo_id in silos:
                    self.start_silo(policy.silo_id)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _data_path(data: str, generated: dict[str, Path]) -> Path:
        if data.startswith(DEMO_PREFIX):
            clinic = data[len(DEMO_PREFIX) :]
            if clinic not in generated:
                raise ConfigError(f"unknown demo clinic {clinic!r}", key="silo.data")
            return generated[clinic]
        return Path(data)

    def start_silo(self, silo_id: str) -> SiloAgent:
        """Start (or restart) one clinic's agent and connect it to the hub."""
        policy = self._policies[silo_id]
        agent = SiloAgent(
            self.contract,
            policy,
            self._data_path(policy.data, self._data),
            self.state_dir,
            testing=self._testing,
            credentials=self.credentials[silo_id],
            authority_public=self.authority.public_bytes,
        )
        try:
            agent.connect(self.target)
        except BaseException:
            agent.close()
            raise
        self.silos[silo_id] = agent
        return agent

    def stop_silo(self, silo_id: str) -> None:
        """Disconnect one clinic (to exercise partial participation)."""
        agent = self.silos.pop(silo_id)
        agent.close()

    def close(self) -> None:
        """Stop the silos and the hub, and remove the temporary state."""
        for agent in list(self.silos.values()):
            agent.close()
        self.silos.clear()
        self.server.stop(0)
        if self.hub_audit is not None:
            self.hub_audit.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DemoFederation:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop everything."""
        self.close()
