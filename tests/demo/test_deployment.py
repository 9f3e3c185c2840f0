"""A multi-process deployment under SIGKILL: a silo never releases what its ledger did not debit."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedsql.audit import AuditRecord, verify_log
from fedsql.demo.deployment import LoopbackDeployment
from fedsql.errors import Error
from fedsql.privacy.ledger import Ledger
from fedsql.secagg.identity import IdentityKey, verify_signature
from fedsql.transport.messages import ExecuteRequest

#: SIGKILLs of one silo per run: many with FEDSQL_SLOW=1, a few otherwise.
KILLS = 25 if os.environ.get("FEDSQL_SLOW") == "1" else 3
VICTIM = "seoul"
#: The analyst of the deployment's mTLS client certificate.
ANALYST = "analyst"
SQL = "SELECT sex, COUNT(*), AVG(bmi) FROM patients GROUP BY sex"


@pytest.fixture
def deployment(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[LoopbackDeployment]:
    deploy = LoopbackDeployment(tmp_path)
    try:
        yield deploy.start()
    finally:
        deploy.stop()


def records(path: Path, key: bytes | None = None) -> list[AuditRecord]:
    """The records of a verified log (a torn last line, cut by SIGKILL, is allowed)."""
    _, entries = verify_log(path, verify_signature, key=key, keep_entries=True)
    return [e.record for e in entries]


def answered(reason: str) -> list[str]:
    """The clinics a hub's release record names as in the release ("answered by a, b; c ...")."""
    match = re.match(r"answered by ([a-z0-9, -]+?)(;|$)", reason)
    assert match is not None, reason
    return match.group(1).split(", ")


@pytest.mark.slow
def test_sigkill_at_random_points_never_leaves_a_release_without_a_debit(
    deployment: LoopbackDeployment,
) -> None:
    stop = threading.Event()
    outcomes: list[str] = []

    def ask_forever() -> None:
        with deployment.client(timeout_s=60) as client:
            while not stop.is_set():
                try:
                    client.execute(ExecuteRequest(sql=SQL, analyst=ANALYST, epsilon="0.01"))
                    outcomes.append("ok")
                except Error as exc:  # too few silos while one restarts, say
                    outcomes.append(type(exc).__name__)
                    time.sleep(0.05)

    rng = random.Random(20261128)
    asker = threading.Thread(target=ask_forever)
    asker.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.05, 0.6))  # some point inside some query
            deployment.kill_silo(VICTIM)
            deployment.start_silo(VICTIM)
            deployment.wait_connected(4)
        time.sleep(0.5)
    finally:
        stop.set()
        asker.join(timeout=120)
    deployment.stop()

    root = deployment.root
    hub_key = IdentityKey.load(root / "hub" / "coordinator.key").public_bytes
    releases = [r for r in records(root / "hub.audit.log", hub_key) if r.event == "release"]
    with_victim = [r.qid for r in releases if VICTIM in answered(r.reason)]
    debited = {e.qid for e in Ledger(root / VICTIM / f"{VICTIM}.ledger.sqlite").entries(ANALYST)}
    assert outcomes.count("ok") == len(releases) > KILLS
    assert with_victim, "the victim answered no query at all"
    # Every release the victim took part in was debited in its ledger before it left.
    assert set(with_victim) <= debited
    # The victim's own log verifies, and records a release only for a debited query.
    released_here = {
        r.qid for r in records(root / VICTIM / f"{VICTIM}.audit.log") if r.event == "release"
    }
    assert released_here <= debited
