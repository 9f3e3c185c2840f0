"""An analyst's budget at every clinic, as each clinic's own ledger says."""

from __future__ import annotations

from decimal import Decimal

import fedsql
from fedsql.dbapi import connect
from fedsql.demo.federation import DemoFederation


def test_each_clinic_reports_what_the_analyst_spent_and_has_left(
    oracle_federation: DemoFederation,
) -> None:
    before = {
        c.silo_id: c for c in connect(oracle_federation.target, analyst="viewer").budget().clinics
    }
    with connect(oracle_federation.target, analyst="viewer") as conn:
        for _ in range(3):
            conn.cursor().execute("SELECT COUNT(*) FROM patients", epsilon=0.1)
        reply = conn.budget()
    assert reply.analyst == "viewer" and reply.fed_id == "fedsql-demo"
    assert [c.silo_id for c in reply.clinics] == ["mumbai", "san-francisco", "seoul", "sydney"]
    for clinic in reply.clinics:
        was = before[clinic.silo_id]
        assert clinic.reported
        # Exact: three charges of 0.1 are 0.3, not 0.30000000000000004.
        assert Decimal(clinic.spent) == Decimal(was.spent) + Decimal("0.3")
        assert clinic.queries == was.queries + 3
        assert Decimal(clinic.left) == Decimal(clinic.budget) - Decimal(clinic.spent)
    # Another analyst's figures are their own.
    other = connect(oracle_federation.target, analyst="someone-else").budget()
    assert {c.spent for c in other.clinics} == {"0"}


def test_a_disconnected_clinic_is_not_asked(demo_data: object) -> None:
    with DemoFederation(noise=False, testing=True) as fed:
        fed.stop_silo("seoul")
        with fedsql.connect(fed.target, analyst="viewer") as conn:
            clinics = conn.budget().clinics
    assert [c.silo_id for c in clinics] == ["mumbai", "san-francisco", "sydney"]
