"""The silo trusts nothing the hub sends: each tampered request is refused by the guard."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from fedsql.catalog import Contract, SiloPolicy
from fedsql.config import load_contract, load_policy
from fedsql.demo.generator import demo_files
from fedsql.errors import Error, ProtocolError, QueryRejected, UnknownObject
from fedsql.privacy.calibrate import plan_noise
from fedsql.query_terms import encoding_for, measure_specs
from fedsql.secagg.encoding import dimension
from fedsql.silo.guard import admit
from fedsql.sql import plan_query
from fedsql.transport.messages import EncodingEntry, QueryRequest

SQL = "SELECT sex, AVG(bmi) FROM patients WHERE age >= ? GROUP BY sex"
# VAR_SAMP's sum of squares of cost needs two limbs without noise (see fedsql.query_terms)
SPLIT_SQL = "SELECT VAR_SAMP(cost) FROM visits"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


@pytest.fixture(scope="module")
def policy(contract: Contract) -> SiloPolicy:
    return load_policy(demo_files() / "mumbai.toml", contract)


def honest_request(
    contract: Contract,
    policy: SiloPolicy,
    *,
    noise: bool = True,
    sql: str = SQL,
    params: tuple[object, ...] = (40,),
) -> QueryRequest:
    """A request exactly as an honest hub would build it for a 4-silo cohort."""
    plan = plan_query(sql, list(params), contract, policy.shared)
    n = 4
    nplan = (
        plan_noise(
            0.5,
            contract.delta,
            measure_specs(plan),
            contract.secagg.m_min(n),
            contract.secagg.m_all(n),
        )
        if noise
        else None
    )
    enc = encoding_for(contract, plan, nplan, n)
    return QueryRequest(
        version=1,
        fed_id=contract.federation_id,
        roster_version=1,
        epoch=0,
        qid=b"q" * 16,
        cohort=("mumbai", "san-francisco", "seoul", "sydney"),
        threshold=contract.secagg.threshold_for(n),
        n_min=contract.secagg.n_min,
        dimension=dimension(enc, plan.cells),
        cells=plan.cells,
        encoding=tuple(EncodingEntry(e.bound, e.frac_bits, e.sigma_total, e.limbs) for e in enc),
        sigma_loc=tuple(0.0 for _ in plan.measures)
        if nplan is None
        else tuple(m.sigma_local_encoded for m in nplan.measures),
        rho_charge="0" if nplan is None else repr(nplan.rho),
        epsilon_charge="0.5",
        analyst="alice",
        plan_hash=plan.plan_hash,
        sql=sql,
        params_json=json.dumps(list(params)),
        deadline_ms=0,
    )


def test_honest_request_is_admitted(contract: Contract, policy: SiloPolicy) -> None:
    admission = admit(honest_request(contract, policy), contract, policy, testing=False)
    assert admission.epsilon_micro == 500_000
    assert admission.noise is not None


def test_the_silo_splits_its_noise_share_itself(contract: Contract, policy: SiloPolicy) -> None:
    # 4 clinics, c_max 1: sized for m_min = 2 honest shares, m_all = 3 when all answer
    req = honest_request(contract, policy)
    noise = admit(req, contract, policy, testing=False).noise
    assert noise is not None and (noise.m_min, noise.m_all) == (2, 3)
    for asked, m in zip(req.sigma_loc, noise.measures, strict=True):
        sigma_j = asked * math.sqrt(2)
        assert m.sigma_base_encoded == pytest.approx(sigma_j / math.sqrt(3))
        assert m.sigma_extra_encoded == pytest.approx(math.sqrt(sigma_j**2 / 2 - sigma_j**2 / 3))
        assert m.sigma_base_encoded >= 2.0


def _tampered(req: QueryRequest, field: str) -> QueryRequest:
    changes: dict[str, object] = {
        "fed_id": {"fed_id": "another-federation"},
        "plan_hash": {"plan_hash": "0" * 64},
        "sql": {"sql": SQL.replace("AVG(bmi)", "COUNT(zip)")},
        "sql_same_hash_other_table": {"sql": SQL.replace("patients", "staff_notes")},
        "params": {"params_json": "[41]"},
        "epsilon_over_cap": {"epsilon_charge": "1.5"},
        "halved_sigma": {"sigma_loc": tuple(s / 2 for s in req.sigma_loc)},
        "frac_bits": {
            "encoding": tuple(
                dataclasses.replace(e, frac_bits=e.frac_bits + 1) for e in req.encoding
            )
        },
        "threshold": {"threshold": req.threshold + 1},
        "layout": {"dimension": req.dimension + 1},
    }[field]
    return dataclasses.replace(req, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "error"),
    [
        ("fed_id", ProtocolError),
        ("plan_hash", ProtocolError),
        ("sql", UnknownObject),
        ("sql_same_hash_other_table", UnknownObject),
        ("params", ProtocolError),
        ("epsilon_over_cap", QueryRejected),
        ("halved_sigma", ProtocolError),
        ("frac_bits", ProtocolError),
        ("threshold", ProtocolError),
        ("layout", ProtocolError),
    ],
)
def test_tampered_request_is_refused(
    contract: Contract, policy: SiloPolicy, field: str, error: type[Error]
) -> None:
    req = _tampered(honest_request(contract, policy), field)
    with pytest.raises(error):
        admit(req, contract, policy, testing=False)


def test_a_measure_in_two_limbs_is_admitted_only_with_the_silos_own_limbs(
    contract: Contract, policy: SiloPolicy
) -> None:
    req = honest_request(contract, policy, noise=False, sql=SPLIT_SQL, params=())
    assert [e.limbs for e in req.encoding] == [1, 2, 2, 1]
    admission = admit(req, contract, policy, testing=True)
    assert [e.limbs for e in admission.encoding] == [1, 2, 2, 1]
    one_limb = (req.encoding[0], dataclasses.replace(req.encoding[1], limbs=1), *req.encoding[2:])
    for tampered in (
        dataclasses.replace(req, encoding=one_limb),
        dataclasses.replace(req, encoding=one_limb, dimension=req.dimension - req.cells),
        dataclasses.replace(req, dimension=req.dimension - 1),
    ):
        with pytest.raises(ProtocolError, match="differs"):
            admit(tampered, contract, policy, testing=True)


def test_noise_off_only_in_test_mode(contract: Contract, policy: SiloPolicy) -> None:
    req = honest_request(contract, policy, noise=False)
    with pytest.raises(QueryRejected, match="not started for testing"):
        admit(req, contract, policy, testing=False)
    assert admit(req, contract, policy, testing=True).noise is None


def test_deny_mode_refuses(contract: Contract, policy: SiloPolicy) -> None:
    strict = dataclasses.replace(policy, approval="deny")
    with pytest.raises(QueryRejected, match="refuses all"):
        admit(honest_request(contract, policy), contract, strict, testing=False)


def test_manual_mode_admits_for_the_approval_queue(contract: Contract, policy: SiloPolicy) -> None:
    # The guard's checks still apply; holding the query is the agent's job.
    manual = dataclasses.replace(policy, approval="manual")
    admission = admit(honest_request(contract, policy), contract, manual, testing=False)
    assert admission.plan.plan_hash == honest_request(contract, policy).plan_hash
