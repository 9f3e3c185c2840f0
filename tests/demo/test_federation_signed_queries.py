"""Enrolled analysts: only what they signed is charged, never replayed, never in another name."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import fedsql
import fedsql.hub.model_run
from fedsql.demo.federation import DemoFederation
from fedsql.errors import Error, ProtocolError
from fedsql.hub.analysts import AnalystTokens
from fedsql.hub.coordinator import Hub
from fedsql.privacy.accounting import epsilon_to_micro
from fedsql.privacy.ledger import Ledger
from fedsql.privacy.round_shares import round_epsilons
from fedsql.secagg.analyst_query import SignedQuery
from fedsql.secagg.identity import IdentityKey
from fedsql.sql.regression import round_sql
from fedsql.transport.client import AnalystClient
from fedsql.transport.messages import ExecuteRequest

SILOS = ("mumbai", "san-francisco", "seoul", "sydney")
SQL = "SELECT sex, COUNT(*) FROM patients GROUP BY sex"
MODEL = "SELECT LOGISTIC_REGRESSION(diabetic, age, bmi, max_iter => 8) AS m FROM patients"


@dataclass
class Signed:
    """A federation enrolling ana and bob, whose hub checks API tokens (or not)."""

    fed: DemoFederation
    keys: dict[str, Path]
    tokens: dict[str, str]

    def connect(self, analyst: str, *, key_of: str | None = None) -> fedsql.Connection:
        return fedsql.connect(
            self.fed.target,
            analyst=analyst,
            token=self.tokens[analyst],
            key=None if key_of is None else self.keys[key_of],
        )

    def spent(self, analyst: str) -> dict[str, int]:
        state = self.fed.state_dir
        return {s: Ledger(state / f"{s}.ledger.sqlite").spent(analyst) for s in SILOS}


def _federation(tmp_path: Path, *, check_tokens: bool) -> Signed:
    keys, public = {}, {}
    for name in ("ana", "bob"):
        key = IdentityKey.generate()
        keys[name] = tmp_path / f"{name}.key"
        key.save(keys[name])
        public[name] = key.public_bytes
    store = AnalystTokens(tmp_path / "analysts.json")
    tokens = {name: store.add(name) for name in ("ana", "bob")}
    fed = DemoFederation(
        state_dir=tmp_path / "state",
        noise=False,
        testing=True,
        analysts=public,
        analyst_for_token=store.analyst_for if check_tokens else None,
    )
    return Signed(fed, keys, tokens)


@pytest.fixture
def signed(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[Signed]:
    federation = _federation(tmp_path, check_tokens=True)
    with federation.fed:
        yield federation


@pytest.fixture
def open_hub(tmp_path: Path, demo_data: dict[str, Path]) -> Iterator[Signed]:
    """A hub that checks no token: it forwards whatever it is sent, as a compromised hub would."""
    federation = _federation(tmp_path, check_tokens=False)
    with federation.fed:
        yield federation


def test_a_signed_query_is_answered_and_charged(signed: Signed) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        cursor = conn.cursor().execute(SQL, epsilon=0.5)
        assert cursor.privacy is not None
        assert cursor.privacy.answered() == list(SILOS)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 500_000)


def test_an_unsigned_query_is_refused_by_every_clinic(signed: Signed) -> None:
    with signed.connect("ana") as conn, pytest.raises(Error) as caught:
        conn.cursor().execute(SQL, epsilon=0.5)
    assert "not signed by analyst ana" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)


def test_a_replayed_signed_query_is_refused_with_nothing_charged(signed: Signed) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        request = conn.sign(ExecuteRequest(sql=SQL, epsilon="0.5", analyst="ana"))
    with AnalystClient(signed.fed.target, token=signed.tokens["ana"]) as client:
        client.execute(request)
        assert signed.spent("ana") == dict.fromkeys(SILOS, 500_000)
        with pytest.raises(Error) as caught:
            client.execute(request)
    assert "seen before; a replay is refused" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 500_000)


def test_a_tampered_query_or_signature_is_refused(signed: Signed) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        request = conn.sign(ExecuteRequest(sql=SQL, epsilon="0.5", analyst="ana"))
    flipped = bytes([request.signature[0] ^ 1]) + request.signature[1:]
    with AnalystClient(signed.fed.target, token=signed.tokens["ana"]) as client:
        for forged in (
            dataclasses.replace(request, signature=flipped),
            dataclasses.replace(request, sql="SELECT diabetic, COUNT(*) FROM patients GROUP BY 1"),
            dataclasses.replace(request, epsilon="0.9"),
        ):
            with pytest.raises(Error) as caught:
                client.execute(forged)
            assert "does not verify against analyst ana's enrolled key" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)


def test_a_stale_signature_is_refused(signed: Signed) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        request = conn.sign(ExecuteRequest(sql=SQL, epsilon="0.5", analyst="ana"))
    # Signed with a clock ten minutes slow: a fresh signature over an old time.
    old = SignedQuery(
        "fedsql-demo", "ana", SQL, "", "0.5", request.nonce, request.issued_ms - 600_000
    ).sign(IdentityKey.load(signed.keys["ana"]))
    stale = dataclasses.replace(request, issued_ms=old.issued_ms, signature=old.signature)
    with (
        AnalystClient(signed.fed.target, token=signed.tokens["ana"]) as client,
        pytest.raises(Error, match="away from this silo's clock"),
    ):
        client.execute(stale)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)


def test_the_hub_refuses_a_token_used_in_another_name(signed: Signed) -> None:
    with (
        AnalystClient(signed.fed.target, token=signed.tokens["ana"]) as client,
        pytest.raises(ProtocolError, match="API token is for analyst ana; it cannot act as"),
    ):
        client.execute(ExecuteRequest(sql=SQL, epsilon="0.5", analyst="bob"))
    with (
        AnalystClient(signed.fed.target) as anonymous,
        pytest.raises(ProtocolError, match="serves analysts with an API token only"),
    ):
        anonymous.status()
    with (
        AnalystClient(signed.fed.target, token="not-a-token") as guessing,
        pytest.raises(ProtocolError, match="API token is not valid here"),
    ):
        guessing.status()
    assert signed.spent("bob") == dict.fromkeys(SILOS, 0)


def test_clinics_refuse_a_query_in_bobs_name_that_ana_signed(open_hub: Signed) -> None:
    # The hub lets it through (it checks no token); every clinic checks bob's enrolled key.
    with open_hub.connect("ana", key_of="ana") as conn:
        as_ana = conn.sign(ExecuteRequest(sql=SQL, epsilon="0.5", analyst="ana"))
    forged = SignedQuery(
        "fedsql-demo", "bob", SQL, "", "0.5", as_ana.nonce, int(time.time() * 1000)
    ).sign(IdentityKey.load(open_hub.keys["ana"]))
    request = ExecuteRequest(
        sql=SQL,
        epsilon="0.5",
        analyst="bob",
        nonce=forged.nonce,
        issued_ms=forged.issued_ms,
        signature=forged.signature,
    )
    with AnalystClient(open_hub.fed.target) as client, pytest.raises(Error) as caught:
        client.execute(request)
    assert "does not verify against analyst bob's enrolled key" in str(caught.value)
    assert open_hub.spent("bob") == dict.fromkeys(SILOS, 0)


def test_a_federation_without_enrolled_analysts_takes_unsigned_queries(
    oracle_federation: DemoFederation,
) -> None:
    with fedsql.connect(oracle_federation.target, analyst="anyone") as conn:
        assert conn.cursor().execute(SQL, epsilon=0.1).fetchall()


def _spent_by_rounds(rounds: int) -> int:
    """Micro-epsilon the first ``rounds`` rounds of MODEL at epsilon 0.8 cost at each clinic."""
    return sum(epsilon_to_micro(e) for e in round_epsilons("0.8", 8)[:rounds])


def test_a_signed_logistic_model_matches_the_unsigned_one(
    signed: Signed, oracle_federation: DemoFederation
) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        cursor = conn.cursor().execute(MODEL, epsilon=0.8)
        model = cursor.fetchone()[0]  # type: ignore[index]
        assert cursor.privacy is not None
        rounds = cursor.privacy.details["model"]["rounds"]
    with fedsql.connect(oracle_federation.target, analyst="anyone") as plain:
        unsigned = plain.cursor().execute(MODEL, epsilon=0.8).fetchone()[0]  # type: ignore[index]
    assert 1 < rounds < 8
    assert model["iterations"] == unsigned["iterations"] == rounds
    assert model["intercept"] == pytest.approx(unsigned["intercept"], abs=1e-9)
    for name in ("age", "bmi"):
        assert model["coefficients"][name] == pytest.approx(
            unsigned["coefficients"][name], abs=1e-9
        )
    # Every clinic charged each round its share of the signed total, nothing more.
    assert signed.spent("ana") == dict.fromkeys(SILOS, _spent_by_rounds(rounds))


def test_a_signed_linear_model_is_one_round_at_the_signed_epsilon(signed: Signed) -> None:
    with signed.connect("ana", key_of="ana") as conn:
        cursor = conn.cursor().execute(
            "SELECT LINEAR_REGRESSION(bmi, age) AS m FROM patients", epsilon=0.5
        )
        assert cursor.fetchone()[0]["coefficients"]["age"] != 0  # type: ignore[index]
    assert signed.spent("ana") == dict.fromkeys(SILOS, 500_000)


def test_an_unsigned_model_query_is_refused_with_nothing_charged(signed: Signed) -> None:
    with signed.connect("ana") as conn, pytest.raises(Error) as caught:
        conn.cursor().execute(MODEL, epsilon=0.8)
    assert "not signed by analyst ana" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)


def _record_rounds(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Keep the arguments of every round the hub aggregates (to replay one, as a hub could)."""
    calls: list[tuple[Any, ...]] = []
    original = hub.aggregate

    def recording(req: Any, prepared: Any, **kwargs: Any) -> Any:
        calls.append((req, prepared, kwargs))
        return original(req, prepared, **kwargs)

    monkeypatch.setattr(hub, "aggregate", recording)
    return calls


def test_a_replayed_model_round_is_refused_with_nothing_charged(
    signed: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = signed.fed.hub
    calls = _record_rounds(hub, monkeypatch)
    with signed.connect("ana", key_of="ana") as conn:
        conn.cursor().execute(MODEL, epsilon=0.8)
    rounds = len(calls)
    spent = dict.fromkeys(SILOS, _spent_by_rounds(rounds))
    assert signed.spent("ana") == spent
    for req, prepared, kwargs in (calls[0], calls[1], calls[-1]):
        assert kwargs["signed"] is not None
        with pytest.raises(Error) as caught:
            hub.aggregate(req, prepared, **{**kwargs, "watch": None})
        assert "a replay" in str(caught.value)
    assert signed.spent("ana") == spent


def test_a_round_with_other_sql_than_signed_is_refused(
    signed: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tampered(sql: str, at: Sequence[float]) -> str:
        return round_sql(sql.replace("FROM patients", "FROM patients WHERE sex = 'F'"), at)

    monkeypatch.setattr(fedsql.hub.model_run, "round_sql", tampered)
    with signed.connect("ana", key_of="ana") as conn, pytest.raises(Error) as caught:
        conn.cursor().execute(MODEL, epsilon=0.8)
    assert "is not the model query analyst ana signed" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)


def test_a_hub_charging_more_than_the_signed_total_is_refused(
    signed: Signed, monkeypatch: pytest.MonkeyPatch
) -> None:
    def doubled(total: str, rounds: int) -> tuple[str, ...]:
        return round_epsilons(repr(2 * float(total)), rounds)

    monkeypatch.setattr(fedsql.hub.model_run, "round_epsilons", doubled)
    with signed.connect("ana", key_of="ana") as conn, pytest.raises(Error) as caught:
        conn.cursor().execute(MODEL, epsilon=0.8)
    assert "but its share of the signed total 0.8 over 8 rounds is" in str(caught.value)
    assert signed.spent("ana") == dict.fromkeys(SILOS, 0)
