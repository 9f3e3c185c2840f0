"""The silo's check of analysts' signatures: enrolled key, epsilon as signed, nonces kept."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.errors import ProtocolError
from fedsql.secagg.analyst_query import AnalystKey, SignedQuery
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.qid_log import QidLog
from fedsql.secagg.roster import Roster, RosterEntry
from fedsql.silo.signed_queries import check_analyst_signature
from fedsql.transport.messages import QueryRequest

ANA = IdentityKey.generate()
NOW = int(time.time() * 1000)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def roster(*analysts: AnalystKey) -> Roster:
    return Roster("fedsql-demo", 1, (RosterEntry("a", 1, bytes(range(32))),), analysts=analysts)


ENROLLED = roster(AnalystKey("ana", ANA.public_bytes))


def request(
    charged: str = "0.5", signed_epsilon: str = "0.5", analyst: str = "ana"
) -> QueryRequest:
    statement = SignedQuery.create("fedsql-demo", analyst, "SELECT 1", "[]", signed_epsilon, NOW)
    statement = statement.sign(ANA)
    return QueryRequest(
        version=1,
        fed_id="fedsql-demo",
        roster_version=1,
        epoch=0,
        qid=bytes(16),
        cohort=("a",),
        threshold=1,
        n_min=1,
        dimension=1,
        cells=1,
        encoding=(),
        sigma_loc=(),
        rho_charge="0",
        epsilon_charge=charged,
        analyst=analyst,
        plan_hash="p",
        sql="SELECT 1",
        params_json="[]",
        deadline_ms=NOW + 60_000,
        analyst_nonce=statement.nonce,
        analyst_issued_ms=statement.issued_ms,
        analyst_epsilon=signed_epsilon,
        analyst_signature=statement.signature,
    )


def test_a_well_signed_query_passes_once_even_across_restarts(
    tmp_path: Path, contract: Contract
) -> None:
    req = request()
    with QidLog(tmp_path / "nonces.sqlite") as nonces:
        check_analyst_signature(req, ENROLLED, contract, nonces, NOW)
    with (
        QidLog(tmp_path / "nonces.sqlite") as again,
        pytest.raises(ProtocolError, match="seen before"),
    ):
        check_analyst_signature(req, ENROLLED, contract, again, NOW)


def test_the_epsilon_charged_must_be_the_one_signed(tmp_path: Path, contract: Contract) -> None:
    with QidLog(tmp_path / "n.sqlite") as nonces:
        with pytest.raises(
            ProtocolError, match=r"charges epsilon 0\.9, but the analyst signed 0\.5"
        ):
            check_analyst_signature(request(charged="0.9"), ENROLLED, contract, nonces, NOW)
        # Asking for the default allows no more than the contract's default.
        check_analyst_signature(request("1", ""), ENROLLED, contract, nonces, NOW)
        check_analyst_signature(request("0.25", ""), ENROLLED, contract, nonces, NOW)
        with pytest.raises(ProtocolError, match="more than the contract's default"):
            check_analyst_signature(request("1.5", ""), ENROLLED, contract, nonces, NOW)


def test_an_analyst_not_enrolled_is_refused(tmp_path: Path, contract: Contract) -> None:
    with (
        QidLog(tmp_path / "n.sqlite") as nonces,
        pytest.raises(ProtocolError, match="analyst bob is not enrolled"),
    ):
        check_analyst_signature(request(analyst="bob"), ENROLLED, contract, nonces, NOW)


def test_a_roster_without_analysts_checks_nothing(tmp_path: Path, contract: Contract) -> None:
    unsigned = dataclasses.replace(request(), analyst_signature=b"", analyst_nonce=b"")
    with QidLog(tmp_path / "n.sqlite") as nonces:
        check_analyst_signature(unsigned, roster(), contract, nonces, NOW)
        assert len(nonces) == 0
