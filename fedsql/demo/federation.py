"""The embedded example federations: a hub and its silos in one process, real gRPC on loopback."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from fedsql.config.contract import load_contract
from fedsql.config.policy import load_policy
from fedsql.demo.datasets import dataset as example_dataset
from fedsql.errors import ConfigError
from fedsql.hub.coordinator import Hub
from fedsql.secagg.enrolment import SiloCredentials, build_roster
from fedsql.secagg.identity import IdentityKey
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
            )
        )
        self.hub = Hub(self.contract, noise=noise, roster=self.roster, coordinator=coordinator)
        self.server: RunningServer = start_hub_server(self.hub, "127.0.0.1:0")
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
