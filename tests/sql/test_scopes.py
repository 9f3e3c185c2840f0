"""Virtual names of joined rows: one unit column, plain names when unique, qualified otherwise."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from fedsql.errors import QueryRejected, UnknownObject
from fedsql.sql.row_source import build_row_source
from fedsql.sql.scopes import Scope

from .testbed import CONTRACT, VISIBLE


def scope_of(sql: str) -> Scope:
    select = sqlglot.parse_one(sql, read="duckdb")
    assert isinstance(select, exp.Select)
    visible = {t: frozenset(c) for t, c in VISIBLE.items()}
    return build_row_source(select, CONTRACT, visible).scope


def names(scope: Scope) -> set[str]:
    return {name for name, _ in scope.virtual_columns()}


def test_inner_joined_units_are_one_column_and_collisions_are_qualified() -> None:
    scope = scope_of(
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.patient_id = l.patient_id "
        "JOIN visits w ON w.patient_id = v.patient_id"
    )
    found = names(scope)
    assert "patient_id" in found and "v.patient_id" not in found
    assert {"test", "delta", "v.cost", "w.cost", "v.dept", "w.dept"} <= found
    assert "cost" not in found
    assert scope.k == 4 * 6 * 4
    assert scope.table().max_rows_per_unit == 96


def test_the_unit_of_a_left_joined_table_is_its_own_column() -> None:
    scope = scope_of(
        "SELECT COUNT(*) FROM visits v LEFT JOIN labs l ON v.patient_id = l.patient_id"
    )
    assert {"patient_id", "l.patient_id"} <= names(scope)
    resolved = scope.resolve(exp.column("patient_id", table="l"))
    assert resolved.name == "l.patient_id" and resolved.source.unit


def test_names_do_not_depend_on_what_is_shared() -> None:
    # visits.note is not shared, yet it still makes nothing else ambiguous or renamed
    scope = scope_of("SELECT COUNT(*) FROM visits v JOIN labs l ON v.patient_id = l.patient_id")
    assert "note" in names(scope)
    with pytest.raises(UnknownObject, match=r"column visits\.note is not shared"):
        scope.resolve(exp.column("note"))


def test_unqualified_names_in_several_tables_are_ambiguous() -> None:
    scope = scope_of("SELECT COUNT(*) FROM visits a JOIN visits b ON a.patient_id = b.patient_id")
    with pytest.raises(QueryRejected, match=r"'dept' is ambiguous.*a\.dept or b\.dept"):
        scope.resolve(exp.column("dept"))
    assert scope.resolve(exp.column("dept", table="b")).name == "b.dept"


def test_each_relation_gets_its_own_sql_alias() -> None:
    scope = scope_of(
        "SELECT COUNT(*) FROM labs l JOIN (SELECT patient_id FROM labs) s "
        "ON s.patient_id = l.patient_id"
    )
    aliases = [r.unit.sql("duckdb") for r in scope.relations]
    assert aliases == ['__s0."patient_id"', "__s2.__unit"]
