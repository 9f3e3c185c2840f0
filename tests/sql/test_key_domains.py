"""Derived key domains: the values an expression takes over public domains, computed by DuckDB."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from fedsql.catalog import Column, Domain
from fedsql.errors import QueryRejected
from fedsql.sql import plan_query
from fedsql.sql.key_domains import MAX_EVALUATIONS, evaluate_key_domain

from .testbed import CONTRACT, VISIBLE

AGE = Column("age", "INTEGER", domain=Domain("int_range", lo=0, hi=99))
SEX = Column("sex", "VARCHAR", domain=Domain("enum", values=("F", "M")))
DAY = Column("d", "DATE", domain=Domain("date_range", lo="2023-12-30", hi="2024-02-02"))


def _domain(sql: str, *columns: Column) -> tuple[object, ...]:
    return evaluate_key_domain(sqlglot.parse_one(sql, read="duckdb"), list(columns), sql)


def test_bands_come_in_domain_order_with_null_where_the_expression_yields_it() -> None:
    band = "CASE WHEN \"age\" < 18 THEN 'minor' WHEN \"age\" < 65 THEN 'adult' ELSE 'senior' END"
    # a NULL age falls to ELSE, exactly as in the silo's DuckDB
    assert _domain(band, AGE) == ("minor", "adult", "senior")
    assert _domain('"age" >= 65', AGE) == (False, True, None)
    assert _domain('"age" // 25', AGE) == (0, 1, 2, 3, None)


def test_dates_and_several_columns() -> None:
    assert _domain('year("d")', DAY) == (2023, 2024, None)
    assert _domain("date_trunc('month', \"d\")", DAY) == (
        dt.datetime(2023, 12, 1),
        dt.datetime(2024, 1, 1),
        dt.datetime(2024, 2, 1),
        None,
    )
    assert _domain('"sex" || \'-\' || ("age" // 50)', SEX, AGE) == (
        "F-0",
        "F-1",
        None,
        "M-0",
        "M-1",
    )


def test_evaluation_is_bounded() -> None:
    wide = Column("w", "INTEGER", domain=Domain("int_range", lo=0, hi=MAX_EVALUATIONS))
    with pytest.raises(QueryRejected, match="value combinations"):
        _domain('"w" // 2', wide)


def test_planned_key_spaces_never_depend_on_data() -> None:
    plan = plan_query(
        "SELECT least(age, 90) // 30 AS b, COUNT(*) FROM patients GROUP BY b",
        None,
        CONTRACT,
        VISIBLE,
    )
    # DuckDB's LEAST skips NULLs: a NULL age gives 90 // 30 = 3, so NULL is not a key
    assert plan.keys[0].values == (0, 1, 2, 3)
    assert plan.keys[0].sql_type == "BIGINT"
    assert 'TRY(LEAST("age", 90) // 30) AS k0' in plan.partial_sql


def test_a_derived_key_reading_a_column_without_domain_names_the_column() -> None:
    with pytest.raises(QueryRejected, match=r"patients\.bmi \(read by bmi // 10\).*add `domain`"):
        plan_query("SELECT bmi // 10, COUNT(*) FROM patients GROUP BY 1", None, CONTRACT, VISIBLE)
    with pytest.raises(QueryRejected, match="privacy unit"):
        plan_query("SELECT COUNT(*) FROM patients GROUP BY patient_id % 2", None, CONTRACT, VISIBLE)
