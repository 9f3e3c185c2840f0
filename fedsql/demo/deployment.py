"""A throwaway multi-process deployment of the demo clinics on loopback: CA, enrolment, hub, silos.

Every step runs the real ``fedsql`` commands in subprocesses, exactly as operators would:
``fedsql ca init/issue``, ``fedsql authority init/sign-roster``, ``fedsql hub keygen/serve`` and
``fedsql silo enrol/serve``. Used by ``examples/deploy`` and ``bench/roundtrip.py``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from fedsql.demo.generator import demo_files, ensure_demo_data
from fedsql.errors import Error, OperationalError
from fedsql.transport.client import AnalystClient
from fedsql.transport.tls import channel_credentials

log = logging.getLogger(__name__)

CLINICS = ("mumbai", "san-francisco", "seoul", "sydney")


def fedsql_command(*args: str) -> None:
    """Run one ``fedsql`` command to completion.

    Raises:
        OperationalError: The command failed (its stderr is in the message).
    """
    proc = subprocess.run(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise OperationalError(f"`fedsql {' '.join(args[:2])}` failed: {proc.stderr.strip()}")


class LoopbackDeployment:
    """A hub and silo processes on 127.0.0.1 with mTLS, in ``root``; stop with :meth:`stop`.

    Args:
        root: An empty folder for every key, certificate, configuration and log.
        clinics: Which demo clinics run a silo.
        n_min: The contract's survivor minimum (2 allows a two-clinic federation).
        c_max: The contract's collusion bound.
    """

    def __init__(
        self,
        root: Path,
        clinics: tuple[str, ...] = CLINICS,
        *,
        n_min: int = 3,
        c_max: int = 1,
    ) -> None:
        self.root = root
        self.clinics = clinics
        self.n_min = n_min
        self.c_max = c_max
        self.procs: list[subprocess.Popen[bytes]] = []
        self.silos: dict[str, subprocess.Popen[bytes]] = {}
        self.target = ""
        self._contract_path: Path | None = None

    def _contract(self) -> Path:
        text = (demo_files() / "contract.toml").read_text()
        text = text.replace("n_min = 3 ", f"n_min = {self.n_min} ")
        text = text.replace("c_max = 1 ", f"c_max = {self.c_max} ")
        path = self.root / "contract.toml"
        path.write_text(text)
        return path

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fedsql.cli.app", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def start_silo(self, clinic: str) -> None:
        """Start (or restart) one clinic's silo process; it dials the hub by itself."""
        root, contract = self.root, self._contract_path
        assert contract is not None and self.target, "start the deployment first"
        self.silos[clinic] = self._spawn(
            clinic, "silo", "serve", "--policy", str(root / f"{clinic}.toml"),
            "--contract", str(contract), "--hub", self.target, "--state", str(root / clinic),
            "--authority", str(root / "authority" / "authority.pub"),
            "--tls", str(root / f"tls-{clinic}"), "--hub-name", "hub",
        )  # fmt: skip

    def kill_silo(self, clinic: str) -> None:
        """SIGKILL one clinic's silo process (no clean-up at all) and reap it."""
        proc = self.silos.pop(clinic)
        proc.kill()
        proc.wait(timeout=30)
        self.procs.remove(proc)

    def wait_connected(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until ``count`` silos are connected to the hub.

        Raises:
            OperationalError: They were not, in time.
        """
        deadline = time.monotonic() + timeout_s
        with self.client() as client:
            while True:
                try:
                    if len(client.status().silos) == count:
                        return
                except Error:
                    pass
                if time.monotonic() > deadline:
                    raise OperationalError(
                        f"{count} silos did not connect in time; see {self.root}/*.log"
                    )
                time.sleep(0.05)

    def start(self, timeout_s: float = 60.0) -> LoopbackDeployment:
        """Create the CA, enrol everyone, start the hub and the silos, wait until all joined.

        Raises:
            OperationalError: A step failed or the silos did not join in time.
        """
        root, data = self.root, ensure_demo_data()
        contract = self._contract_path = self._contract()
        fedsql_command("ca", "init", str(root / "ca"))
        fedsql_command("ca", "issue", "hub", "hub", "--ca", str(root / "ca"),
                       "--out", str(root / "tls-hub"))  # fmt: skip
        fedsql_command("ca", "issue", "analyst", "analyst", "--ca", str(root / "ca"),
                       "--out", str(root / "tls-analyst"))  # fmt: skip
        fedsql_command("authority", "init", str(root / "authority"))
        fedsql_command("hub", "keygen", str(root / "hub"))
        for clinic in self.clinics:
            fedsql_command("ca", "issue", "silo", clinic, "--ca", str(root / "ca"),
                           "--out", str(root / f"tls-{clinic}"))  # fmt: skip
            fedsql_command("silo", "enrol", "--id", clinic, "--state", str(root / clinic))
            policy = (demo_files() / f"{clinic}.toml").read_text()
            (root / f"{clinic}.toml").write_text(
                policy.replace(f'"demo:{clinic}"', f'"{data[clinic]}"')
            )
        fedsql_command(
            "authority", "sign-roster",
            *(str(root / c / "enrolment.json") for c in self.clinics),
            "--authority", str(root / "authority"), "--contract", str(contract),
            "--coordinator", str(root / "hub" / "coordinator.pub"),
            "--out", str(root / "roster.json"),
        )  # fmt: skip
        (root / "hub.toml").write_text(
            "[hub]\n"
            'listen = "127.0.0.1:0"\n'
            'contract = "contract.toml"\nroster = "roster.json"\nkey = "hub/coordinator.key"\n'
            'authority = "authority/authority.pub"\ntls = "tls-hub"\n'
        )
        port_file = root / "hub.port"
        self._spawn("hub", "hub", "serve", "--config", str(root / "hub.toml"),
                    "--port-file", str(port_file))  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not port_file.exists():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                raise OperationalError(f"the hub did not start; see {root / 'hub.log'}")
            time.sleep(0.05)
        self.target = f"127.0.0.1:{port_file.read_text().strip()}"
        for clinic in self.clinics:
            self.start_silo(clinic)
        self.wait_connected(len(self.clinics), max(deadline - time.monotonic(), 1.0))
        (root / "profiles.toml").write_text(
            f'[default]\nhub = "{self.target}"\ntls = "tls-analyst"\nserver_name = "hub"\n'
        )
        return self

    def client(self, timeout_s: float = 60.0) -> AnalystClient:
        """An mTLS analyst client for this deployment (identity ``analyst``)."""
        return AnalystClient(
            self.target,
            channel_credentials(self.root / "tls-analyst"),
            timeout_s=timeout_s,
            server_name="hub",
        )

    def stop(self) -> None:
        """Send SIGTERM to every process started and wait for them."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()
        self.silos.clear()

    def __enter__(self) -> LoopbackDeployment:
        """Start on entry."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()
