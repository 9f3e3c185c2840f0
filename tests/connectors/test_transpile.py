"""The partial query rewritten for a source keeps its bounding, clamping and error guards."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from connectors.binding_sql import bound_select
from connectors.transpile import mysql_hash, postgres_hash, transpile_partial, uses_row_cap
from fedsql.catalog import ColumnBinding, Contract, TableBinding
from fedsql.config import load_contract
from fedsql.demo.generator import demo_files
from fedsql.errors import QueryRejected
from fedsql.sql.planner import plan_query


@pytest.fixture(scope="module")
def contract() -> Contract:
    return load_contract(demo_files() / "contract.toml")


def _relations(contract: Contract, dialect: str, capped: bool) -> dict[str, exp.Expr]:
    table = contract.table("patients")
    assert table is not None
    binding = TableBinding(
        "patients",
        table="public.patient",
        columns=(ColumnBinding("patient_id", "id"), ColumnBinding("age", "age_years")),
    )
    row_id = exp.Window(this=exp.RowNumber()) if capped else None
    select = bound_select(
        table, binding, exp.to_table("public.patient"), table.column_names, {}, dialect, row_id
    )
    return {"patients": select}


def _partial(contract: Contract, sql: str, capped: bool = True) -> str:
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(sql, None, contract, visible)
    return plan.partial_sql if capped else plan.partial_sql_uncapped


@pytest.mark.parametrize(
    ("dialect", "salted"), [("postgres", postgres_hash), ("mysql", mysql_hash)]
)
def test_the_row_cap_and_clamps_survive_and_the_salt_is_inlined(
    contract: Contract, dialect: str, salted: object
) -> None:
    partial = _partial(contract, "SELECT sex, SUM(age) FROM patients GROUP BY sex")
    assert uses_row_cap(partial)
    out = transpile_partial(partial, _relations(contract, dialect, True), dialect, salted, 77)  # type: ignore[arg-type]
    tree = sqlglot.parse_one(out, read=dialect)
    assert "QUALIFY" not in out and "$fedsql_salt" not in out and "rowid" not in out.lower()
    assert "_w <= 1" in out and "77" in out
    assert "LEAST(GREATEST(" in out
    assert tree.find(exp.Window) is not None
    # The outer sum is returned as a double, the bound table read under the federated name.
    assert "CAST(SUM(a0) AS DOUBLE" in out
    assert "public.patient" in out


def test_uncapped_queries_read_no_row_identity(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients", capped=False)
    assert not uses_row_cap(partial)
    out = transpile_partial(
        partial, _relations(contract, "postgres", False), "postgres", postgres_hash, 1
    )
    assert "__rid" not in out and "__fedsql_rid" not in out


def test_modulo_and_integer_division_are_guarded_with_nullif(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM patients WHERE age % 10 = 0")
    assert "TRY(" in partial
    out = transpile_partial(
        partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
    )
    assert "TRY" not in out and "NULLIF(10, 0)" in out


@pytest.mark.parametrize("where", ["age + 1 > 40", "CAST(sex AS INTEGER) = 1", "age * 2 > 100"])
def test_other_guarded_operations_are_refused(contract: Contract, where: str) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    with pytest.raises(QueryRejected, match="cannot guard"):
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )


def test_a_table_without_binding_is_refused(contract: Contract) -> None:
    partial = _partial(contract, "SELECT COUNT(*) FROM visits")
    with pytest.raises(QueryRejected, match="table visits has no binding"):
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ("bmi / age > 1", "DIV"),
        ("sqrt(bmi) > 5", "SQRT"),
        ("dayofweek(CAST('2020-01-01' AS DATE)) = 1 AND age > 3", "DAYOFWEEK"),
        ("sex LIKE 'F\\%'", "LIKE with a backslash"),
    ],
)
def test_operations_that_could_fail_or_differ_elsewhere_are_refused(
    contract: Contract, where: str, named: str
) -> None:
    partial = _partial(contract, f"SELECT COUNT(*) FROM patients WHERE {where}")
    with pytest.raises(QueryRejected, match="cannot guard") as caught:
        transpile_partial(
            partial, _relations(contract, "postgres", True), "postgres", postgres_hash, 1
        )
    assert named in str(caught.value)
