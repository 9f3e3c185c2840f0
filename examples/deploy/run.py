"""A real deployment on this machine: CA, enrolment, a hub and four clinic silos, queries, shutdown.

Run with ``python examples/deploy/run.py [FOLDER]``. It creates a federation certificate authority,
an enrolment authority, the hub's and each clinic's keys and certificates, an analyst's signing key
and API token, a signed roster, starts
the hub and four silo processes on 127.0.0.1 with mutual TLS, asks questions through the CLI and
the Python API, and stops everything it started. Everything it writes stays in FOLDER (a temporary
folder by default): read ``hub.toml``, ``roster.json``, ``*.toml`` and ``*.log`` there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import fedsql
from fedsql.demo.deployment import LoopbackDeployment


def main(folder: Path) -> None:
    """Deploy, query through the CLI and through Python, stop."""
    with LoopbackDeployment(folder, analysts=True) as deployment:
        print(f"hub listening on {deployment.target} (mTLS); 4 silos joined")
        print("analyst 'analyst' enrolled: signing key in the roster, API token at the hub")
        profiles = str(folder / "profiles.toml")
        print("\n$ fedsql status")
        subprocess.run(
            [sys.executable, "-m", "fedsql.cli.app", "status", "--hub", deployment.target,
             "--tls", str(folder / "tls-analyst"), "--hub-name", "hub"],
            check=True,
            env={**os.environ, "FEDSQL_TOKEN": deployment.token or ""},
        )  # fmt: skip
        print(
            '\n$ fedsql query --format csv "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex"'
        )
        subprocess.run(
            [sys.executable, "-m", "fedsql.cli.app", "query", "--format", "csv", "--epsilon",
             "0.5", "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex"],
            check=True,
            env={**os.environ, "FEDSQL_PROFILES": profiles},
        )  # fmt: skip
        print("\n>>> fedsql.connect(profile='default') ... AVG(bmi) by diabetic")
        os.environ["FEDSQL_PROFILES"] = profiles
        with fedsql.connect(profile="default", epsilon=0.5) as conn:
            cur = conn.cursor()
            cur.execute("SELECT diabetic, AVG(bmi) AS bmi FROM patients GROUP BY diabetic")
            for row in cur.fetchall():
                print("   ", row)
            assert cur.privacy is not None
            print("    budget left:", cur.privacy.budget_left())
    print("\nstopped the hub and the silos")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.mkdir(parents=True, exist_ok=True)
        main(target)
    else:
        with tempfile.TemporaryDirectory(prefix="fedsql-deploy-") as tmp:
            main(Path(tmp))
