"""The silo pseudo-column: a per-clinic group key over the contract's silos list."""

from __future__ import annotations

from dataclasses import replace

import pytest

from fedsql.catalog import Column, Contract, Domain, Table
from fedsql.errors import QueryRejected
from fedsql.sql import SALT_PARAM, plan_query
from fedsql.sql.silo_key import bind_silo

from .testbed import CONTRACT, SILOS, VISIBLE, clinic_database

BY_SILO = "SELECT silo, sex, COUNT(*) AS n, SUM(age) AS ages FROM patients GROUP BY silo, sex"


def test_silo_is_a_key_over_the_contracts_silos_list() -> None:
    plan = plan_query(BY_SILO, None, CONTRACT, VISIBLE)
    assert plan.per_silo
    first = plan.keys[0]
    assert (first.source, first.sql_type, first.values) == ("silo", "VARCHAR", SILOS)
    assert plan.cells == len(SILOS) * 3
    # silo is no column of the clinics' tables: no silo checks it is shared
    assert plan.columns == (("patients", "age"), ("patients", "sex"))
    assert "$fedsql_silo AS k0" in plan.partial_sql
    assert any("contract's silos list" in line for line in plan.explanation)


def test_queries_without_silo_are_not_per_silo() -> None:
    plan = plan_query("SELECT sex, COUNT(*) FROM patients GROUP BY sex", None, CONTRACT, VISIBLE)
    assert not plan.per_silo
    assert "fedsql_silo" not in plan.partial_sql


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT silo, COUNT(*) FROM patients GROUP BY silo",
        'SELECT "SILO", COUNT(*) FROM patients GROUP BY "SILO"',
        "SELECT Silo AS clinic, COUNT(*) FROM patients GROUP BY clinic",
        "SELECT silo, COUNT(*) FROM patients GROUP BY 1",
        "SELECT silo, COUNT(*) FROM patients GROUP BY silo HAVING silo <> 'clinic-b' ORDER BY 1",
    ],
)
def test_silo_may_be_named_as_any_group_key(sql: str) -> None:
    plan = plan_query(sql, None, CONTRACT, VISIBLE)
    assert plan.per_silo
    assert [k.values for k in plan.keys] == [SILOS]


def test_a_band_over_silo_is_evaluated_over_the_silos_list() -> None:
    plan = plan_query(
        "SELECT CASE WHEN silo IN ('clinic-a', 'clinic-c') THEN 'ac' ELSE 'b' END AS g, "
        "COUNT(*) FROM patients GROUP BY g",
        None,
        CONTRACT,
        VISIBLE,
    )
    assert plan.per_silo
    assert plan.keys[0].values == ("ac", "b")


def test_the_plan_hash_does_not_depend_on_which_silo_plans() -> None:
    # Each silo plans with its own shares; none of them, nor its id, enters the plan.
    hub = plan_query(BY_SILO, None, CONTRACT, VISIBLE)
    silo = plan_query(BY_SILO, None, CONTRACT, {"patients": ("patient_id", "sex", "age")})
    assert hub.plan_hash == silo.plan_hash


def test_a_contract_without_silos_refuses_the_key_and_says_what_to_add() -> None:
    with pytest.raises(QueryRejected, match=r"add silos = \[.*\] to its \[federation\] section"):
        plan_query(BY_SILO, None, replace(CONTRACT, silos=()), VISIBLE)


def test_a_real_column_named_silo_is_an_ordinary_column_without_a_silos_list() -> None:
    table = Table(
        "t",
        "u",
        1,
        (Column("u", "BIGINT"), Column("silo", "VARCHAR", domain=Domain("enum", ("x", "y")))),
    )
    contract = Contract("f", (table,))
    plan = plan_query(
        "SELECT silo, COUNT(*) FROM t GROUP BY silo", None, contract, {"t": ("u", "silo")}
    )
    assert not plan.per_silo
    assert plan.keys[0].values == ("x", "y")
    assert plan.columns == (("t", "silo"),)


def test_a_cte_column_named_silo_shadows_the_pseudo_column() -> None:
    plan = plan_query(
        "WITH c AS (SELECT patient_id, sex AS silo FROM patients) "
        "SELECT silo, COUNT(*) FROM c GROUP BY silo",
        None,
        CONTRACT,
        VISIBLE,
    )
    assert not plan.per_silo
    assert plan.keys[0].values == ("F", "M", "X")


def test_a_bound_partial_query_puts_every_row_in_the_silos_own_cells() -> None:
    plan = plan_query(BY_SILO, None, CONTRACT, VISIBLE)
    con = clinic_database()
    rows = con.execute(bind_silo(plan.partial_sql, "clinic-b"), {SALT_PARAM: 1}).fetchall()
    truth = con.execute(
        "SELECT sex, COUNT(*), SUM(age) FROM patients GROUP BY sex ORDER BY sex"
    ).fetchall()
    assert sorted(rows) == [("clinic-b", *row) for row in truth]
    with pytest.raises(Exception, match="fedsql_silo"):
        con.execute(plan.partial_sql, {SALT_PARAM: 1})  # an unbound id never defaults


def test_binding_touches_only_the_placeholder() -> None:
    plan = plan_query(
        "SELECT silo, COUNT(*) FROM patients WHERE name = '$fedsql_silo' GROUP BY silo",
        None,
        CONTRACT,
        VISIBLE,
    )
    bound = bind_silo(plan.partial_sql, "clinic-a")
    assert "'clinic-a' AS k0" in bound
    assert "\"name\" = '$fedsql_silo'" in bound
    assert bind_silo("SELECT 1", "clinic-a") == "SELECT 1"
