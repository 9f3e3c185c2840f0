"""A silo's check of a signed model's rounds: the signed SQL plus coefficients, its share."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.errors import ProtocolError, QueryRejected
from fedsql.secagg.analyst_query import AnalystKey, SignedQuery
from fedsql.secagg.identity import IdentityKey
from fedsql.secagg.qid_log import QidLog
from fedsql.secagg.roster import Roster, RosterEntry
from fedsql.silo.model_rounds import ModelRoundLog
from fedsql.silo.signed_models import MODEL_LIFETIME_MS
from fedsql.silo.signed_queries import check_analyst_signature
from fedsql.sql.regression import round_sql
from fedsql.transport.messages import QueryRequest

ANA = IdentityKey.generate()
NOW = int(time.time() * 1000)
MODEL = "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 4) AS m FROM patients"
#: round_epsilons("0.8", 4)
SHARES = ("0.1", "0.1", "0.2", "0.4")
ENROLLED = Roster(
    "fedsql-demo",
    1,
    (RosterEntry("a", 1, bytes(range(32))),),
    analysts=(AnalystKey("ana", ANA.public_bytes),),
)


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@dataclasses.dataclass
class Silo:
    """A silo's two durable logs, reopened as after a restart by :meth:`restart`."""

    path: Path
    nonces: QidLog
    models: ModelRoundLog

    def restart(self) -> None:
        self.nonces.close()
        self.models.close()
        self.nonces = QidLog(self.path / "nonces.sqlite")
        self.models = ModelRoundLog(self.path / "models.sqlite")


@pytest.fixture
def silo(tmp_path: Path) -> Iterator[Silo]:
    s = Silo(
        tmp_path, QidLog(tmp_path / "nonces.sqlite"), ModelRoundLog(tmp_path / "models.sqlite")
    )
    yield s
    s.nonces.close()
    s.models.close()


def sign(sql: str = MODEL, epsilon: str = "0.8", issued_ms: int = NOW) -> SignedQuery:
    return SignedQuery.create("fedsql-demo", "ana", sql, "[]", epsilon, issued_ms).sign(ANA)


def model_round(
    statement: SignedQuery, index: int, charged: str | None = None, *, sql: str | None = None
) -> QueryRequest:
    """Round ``index`` as an honest hub relays it (``sql``/``charged`` override, as a hub could)."""
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
        epsilon_charge=SHARES[index] if charged is None else charged,
        analyst="ana",
        plan_hash="p",
        sql=round_sql(statement.sql, [0.1 * index, -0.5, 1.0]) if sql is None else sql,
        params_json="[]",
        deadline_ms=NOW + 60_000,
        analyst_nonce=statement.nonce,
        analyst_issued_ms=statement.issued_ms,
        analyst_epsilon=statement.epsilon,
        analyst_signature=statement.signature,
        analyst_sql=statement.sql,
        analyst_round=index,
    )


def check(silo: Silo, contract: Contract, request: QueryRequest, now_ms: int = NOW) -> None:
    check_analyst_signature(request, ENROLLED, contract, silo.nonces, now_ms, silo.models)


def test_every_round_in_order_is_taken_once_and_charged_its_share(
    silo: Silo, contract: Contract
) -> None:
    statement = sign()
    for index in range(4):
        check(silo, contract, model_round(statement, index))
    assert silo.models.charged(statement.nonce) == 800_000
    assert statement.nonce in silo.nonces


def test_a_replayed_or_skipped_round_is_refused_also_after_a_restart(
    silo: Silo, contract: Contract
) -> None:
    statement = sign()
    check(silo, contract, model_round(statement, 0))
    check(silo, contract, model_round(statement, 1))
    silo.restart()
    for index in (0, 1):
        with pytest.raises(ProtocolError, match="a replay"):
            check(silo, contract, model_round(statement, index))
    with pytest.raises(ProtocolError, match="next round this silo takes is round 3"):
        check(silo, contract, model_round(statement, 3))
    check(silo, contract, model_round(statement, 2))
    assert silo.models.charged(statement.nonce) == 400_000


def test_no_round_past_max_iter_is_taken(silo: Silo, contract: Contract) -> None:
    statement = sign()
    for index in range(4):
        check(silo, contract, model_round(statement, index))
    with pytest.raises(ProtocolError, match="at most 4 rounds"):
        check(silo, contract, model_round(statement, 4, "0.4"))
    assert silo.models.charged(statement.nonce) == 800_000


def test_a_round_must_be_charged_its_share_of_the_signed_total(
    silo: Silo, contract: Contract
) -> None:
    statement = sign()
    for wrong in ("0.2", "0.05", "0.8"):
        with pytest.raises(ProtocolError, match=r"share of the signed total 0\.8 over 4 rounds"):
            check(silo, contract, model_round(statement, 0, wrong))
    assert statement.nonce not in silo.nonces
    check(silo, contract, model_round(statement, 0))


def test_a_default_epsilon_model_is_capped_by_the_defaults_schedule(
    silo: Silo, contract: Contract
) -> None:
    # Signed "" (the default, 1.0 here): a hub may lower the total to the clinics' caps, so
    # each round may cost at most its share of the default's schedule (0.125 for round 1).
    statement = sign(epsilon="")
    with pytest.raises(ProtocolError, match=r"share of the signed total 1\.0 over 4 rounds"):
        check(silo, contract, model_round(statement, 0, "0.2"))
    check(silo, contract, model_round(statement, 0, "0.1"))
    check(silo, contract, model_round(statement, 1, "0.125"))
    assert silo.models.charged(statement.nonce) == 225_000


@pytest.mark.parametrize(
    "sql",
    [
        round_sql(MODEL.replace("FROM patients", "FROM patients WHERE sex = 'F'"), [0.0] * 3),
        round_sql(MODEL.replace("max_iter => 4", "max_iter => 4, l2 => 5"), [0.0] * 3),
        round_sql(MODEL.replace("diabetic, age", "diabetic, bmi"), [0.0] * 3),
        round_sql(MODEL, [0.0] * 3) + " UNION ALL " + round_sql(MODEL, [0.0] * 3),
        round_sql(MODEL, [0.0] * 3).replace("at => [", "at  =>  ["),
    ],
)
def test_a_round_whose_sql_is_not_the_signed_one_with_coefficients_is_refused(
    silo: Silo, contract: Contract, sql: str
) -> None:
    statement = sign()
    with pytest.raises((ProtocolError, QueryRejected)):
        check(silo, contract, model_round(statement, 0, sql=sql))
    assert statement.nonce not in silo.nonces


def test_a_round_naming_no_coefficients_is_refused(silo: Silo, contract: Contract) -> None:
    statement = sign()
    with pytest.raises(QueryRejected, match="names no `at` coefficients"):
        check(silo, contract, model_round(statement, 0, "0.8", sql=MODEL))


def test_a_round_with_the_signed_sql_but_another_total_is_refused(
    silo: Silo, contract: Contract
) -> None:
    statement = sign()
    raised = dataclasses.replace(model_round(statement, 0), analyst_epsilon="1.6")
    with pytest.raises(ProtocolError, match="does not verify"):
        check(silo, contract, raised)


def test_a_second_statement_under_one_nonce_cannot_continue_the_first(
    silo: Silo, contract: Contract
) -> None:
    first = sign()
    check(silo, contract, model_round(first, 0))
    other = dataclasses.replace(first, sql=MODEL.replace("bmi", "age"), signature=b"").sign(ANA)
    with pytest.raises(ProtocolError, match="another statement under the same nonce"):
        check(silo, contract, model_round(other, 1))


def test_rounds_run_within_the_models_lifetime_and_no_later(silo: Silo, contract: Contract) -> None:
    statement = sign()
    with pytest.raises(ProtocolError, match="at most 300 s"):
        check(silo, contract, model_round(statement, 0), NOW + 301_000)
    check(silo, contract, model_round(statement, 0), NOW + 299_000)
    check(silo, contract, model_round(statement, 1), NOW + 40 * 60_000)
    with pytest.raises(ProtocolError, match=f"at most {MODEL_LIFETIME_MS // 1000} s"):
        check(silo, contract, model_round(statement, 2), NOW + MODEL_LIFETIME_MS + 1)
    assert silo.models.charged(statement.nonce) == 200_000


def test_a_later_round_of_a_model_this_silo_never_opened_is_refused(
    silo: Silo, contract: Contract
) -> None:
    with pytest.raises(ProtocolError, match="did not take is refused"):
        check(silo, contract, model_round(sign(), 1))


def test_an_ordinary_query_cannot_be_relayed_as_a_model_round(
    silo: Silo, contract: Contract
) -> None:
    statement = sign("SELECT COUNT(*) FROM patients", "0.5")
    relayed = model_round(statement, 0, "0.5", sql="SELECT COUNT(*) FROM patients WHERE age > 50")
    with pytest.raises(ProtocolError, match="did not sign a model query"):
        check(silo, contract, relayed)


def test_without_a_model_round_log_signed_models_are_refused(
    silo: Silo, contract: Contract
) -> None:
    with pytest.raises(ProtocolError, match="keeps no model-round log"):
        check_analyst_signature(model_round(sign(), 0), ENROLLED, contract, silo.nonces, NOW)
