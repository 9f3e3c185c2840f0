"""Round trip of a trivial query through a real deployment: hub, 2 silo processes, mTLS, loopback.

Sets up a throwaway federation (CA, enrolment authority, signed roster, two clinics' processes),
then times ``SELECT COUNT(*) FROM patients`` end to end from an mTLS analyst client. The target is
a median of at most 50 ms; for scale, a trivial two-node round in Flower 1.42's deployment
runtime takes about 9 s on this class of machine (quoted, not measured here).

    python bench/roundtrip.py            # 50 repetitions
    python bench/roundtrip.py --smoke    # 3 repetitions, for CI
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fedsql.demo.generator import demo_files, ensure_demo_data
from fedsql.errors import Error
from fedsql.transport.client import AnalystClient
from fedsql.transport.messages import ExecuteRequest
from fedsql.transport.tls import channel_credentials

TARGET_MS = 50.0
FLOWER_S = 9.0
SILOS = ("mumbai", "seoul")


def cli(*args: str) -> None:
    """Run one fedsql command, failing loudly."""
    subprocess.run([sys.executable, "-m", "fedsql.cli.app", *args], check=True,
                   capture_output=True)  # fmt: skip


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start a long-running fedsql command."""
    return subprocess.Popen(
        [sys.executable, "-m", "fedsql.cli.app", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def two_silo_contract(root: Path) -> Path:
    """The demo contract with secure-aggregation parameters that allow a 2-silo cohort."""
    text = (demo_files() / "contract.toml").read_text()
    text = text.replace("n_min = 3 ", "n_min = 2 ").replace("c_max = 1 ", "c_max = 0 ")
    path = root / "contract.toml"
    path.write_text(text)
    return path


def main() -> None:
    """Set up, measure, print, tear down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="3 repetitions, for CI")
    args = parser.parse_args()
    reps = 3 if args.smoke else args.reps
    data = ensure_demo_data()
    with tempfile.TemporaryDirectory(prefix="fedsql-roundtrip-") as tmp:
        root = Path(tmp)
        contract = two_silo_contract(root)
        cli("ca", "init", str(root / "ca"))
        cli("ca", "issue", "hub", "hub", "--ca", str(root / "ca"), "--out", str(root / "tls-hub"))
        cli("ca", "issue", "analyst", "bench", "--ca", str(root / "ca"), "--out",
            str(root / "tls-bench"))  # fmt: skip
        cli("authority", "init", str(root / "authority"))
        cli("hub", "keygen", str(root / "hub"))
        for s in SILOS:
            cli("ca", "issue", "silo", s, "--ca", str(root / "ca"), "--out", str(root / f"tls-{s}"))
            cli("silo", "enrol", "--id", s, "--state", str(root / s))
            policy = (demo_files() / f"{s}.toml").read_text()
            (root / f"{s}.toml").write_text(policy.replace(f'"demo:{s}"', f'"{data[s]}"'))
        cli("authority", "sign-roster", *(str(root / s / "enrolment.json") for s in SILOS),
            "--authority", str(root / "authority"), "--contract", str(contract),
            "--coordinator", str(root / "hub" / "coordinator.pub"),
            "--out", str(root / "roster.json"))  # fmt: skip
        (root / "hub.toml").write_text(
            "[hub]\n"
            'listen = "127.0.0.1:0"\n'
            f'contract = "{contract}"\n'
            'roster = "roster.json"\nkey = "hub/coordinator.key"\n'
            'authority = "authority/authority.pub"\ntls = "tls-hub"\n'
        )
        procs = [spawn("hub", "serve", "--config", str(root / "hub.toml"), "--port-file",
                       str(root / "port"), log=root / "hub.log")]  # fmt: skip
        try:
            while not (root / "port").exists():
                time.sleep(0.05)
            target = f"127.0.0.1:{(root / 'port').read_text().strip()}"
            for s in SILOS:
                procs.append(spawn(
                    "silo", "serve", "--policy", str(root / f"{s}.toml"),
                    "--contract", str(contract), "--hub", target, "--state", str(root / s),
                    "--authority", str(root / "authority" / "authority.pub"),
                    "--tls", str(root / f"tls-{s}"), "--hub-name", "hub",
                    log=root / f"{s}.log"))  # fmt: skip
            client = AnalystClient(
                target, channel_credentials(root / "tls-bench"), timeout_s=30, server_name="hub"
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if len(client.status().silos) == len(SILOS):
                        break
                except Error:
                    pass
                time.sleep(0.1)
            request = ExecuteRequest(
                sql="SELECT COUNT(*) FROM patients", analyst="bench", epsilon="0.01"
            )
            client.execute(request)
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                client.execute(request)
                times.append((time.perf_counter() - t0) * 1e3)
            client.close()
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
    median = statistics.median(times)
    print("trivial 2-silo COUNT(*), separate processes, mTLS on loopback")
    print(f"  median   {median:8.1f} ms   (target <= {TARGET_MS:g} ms: "
          f"{'met' if median <= TARGET_MS else 'NOT met'})")  # fmt: skip
    print(
        f"  p90      {statistics.quantiles(times, n=10)[-1] if len(times) >= 2 else median:8.1f} ms"
    )
    print(f"  Flower 1.42 deployment runtime, trivial 2-node round (quoted): {FLOWER_S:g} s "
          f"= {FLOWER_S * 1e3 / median:,.0f}x this median")  # fmt: skip


if __name__ == "__main__":
    main()
