"""Random queries: generated WHERE conditions and result expressions agree with DuckDB.

Whenever DuckDB answers the original query, the noise-off federated answer must be the same
(values and declared types). The default size is small; ``FEDSQL_SLOW=1`` runs thousands.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from typing import Any

import duckdb
import pytest

from fedsql.errors import QueryRejected
from fedsql.sql import plan_query

from .testbed import CONTRACT, VISIBLE, federated_answer

SIZE = 3000 if os.environ.get("FEDSQL_SLOW") == "1" else 60

_NUMBERS = [
    "age",
    "bmi",
    "income",
    "1",
    "2.5",
    "-3",
    "year(birth_date)",
    "length(name)",
    "date_part('month', birth_date)",
]
_TEXTS = ["sex", "region", "name", "'F'", "lower(name)", "substring(name, 1, 2)", "sex || region"]
_AGGREGATES = ["COUNT(*)", "COUNT(bmi)", "SUM(age)", "SUM(bmi)", "AVG(bmi)", "AVG(age)"]
_KEY_TERMS = ["length(sex)", "CAST(smoker AS INTEGER)", "length(region)"]


_ROW_OPERATORS = ["+", "-", "*", "/", "//", "%"]
# sums are added up in another order than DuckDB's, so // and % over them could jump
_RESULT_OPERATORS = ["+", "-", "*", "/"]


def _number(rng: random.Random, leaves: list[str], ops: list[str], depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.35:
        return rng.choice(leaves)
    a, b = (_number(rng, leaves, ops, depth + 1) for _ in range(2))
    if roll < 0.6:
        return f"({a} {rng.choice(ops)} {b})"
    if roll < 0.75:
        function = rng.choice(["abs", "round", "floor", "ceil", "sign", "sqrt", "ln"])
        return f"{function}({a})"
    if roll < 0.85:
        return f"coalesce({a}, {b})"
    return f"greatest({a}, {b})"


def _condition(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.45:
        kind = rng.random()
        if kind < 0.45:
            op = rng.choice(["=", "<>", "<", ">=", ">"])
            a, b = (_number(rng, _NUMBERS, _ROW_OPERATORS) for _ in range(2))
            return f"{a} {op} {b}"
        if kind < 0.65:
            op = rng.choice(["=", "<>", "LIKE", "ILIKE"])
            return f"{rng.choice(_TEXTS)} {op} {rng.choice(_TEXTS)}"
        if kind < 0.75:
            a, b, c = (_number(rng, _NUMBERS, _ROW_OPERATORS) for _ in range(3))
            return f"{a} BETWEEN {b} AND {c}"
        if kind < 0.85:
            return f"{rng.choice(_NUMBERS + _TEXTS)} IS {rng.choice(['', 'NOT '])}NULL"
        return rng.choice(["smoker", "NOT smoker", "region IN ('north', 'west')"])
    if roll < 0.7:
        op = rng.choice(["AND", "OR"])
        return f"({_condition(rng, depth + 1)} {op} {_condition(rng, depth + 1)})"
    if roll < 0.8:
        return f"NOT ({_condition(rng, depth + 1)})"
    a, b, c = (_condition(rng, depth + 1) for _ in range(3))
    return f"CASE WHEN {a} THEN {b} ELSE {c} END"


def _where_query(rng: random.Random) -> str:
    group = rng.choice(["", "sex", "region, smoker"])
    keys = f"{group}, " if group else ""
    tail = f" GROUP BY {group}" if group else ""
    return f"SELECT {keys}COUNT(*), SUM(age), AVG(bmi) FROM patients WHERE {_condition(rng)}{tail}"


def _expression_query(rng: random.Random) -> str:
    leaves = _AGGREGATES + _KEY_TERMS + ["1", "0.5", "3", "-2", "100.0"]
    expression = _number(rng, leaves, _RESULT_OPERATORS)
    return (
        f"SELECT sex, smoker, region, {expression} AS v FROM patients GROUP BY sex, smoker, region"
    )


def _same(ours: Any, theirs: Any) -> bool:
    if ours is None or theirs is None:
        return ours is None and theirs is None
    if isinstance(ours, float) or isinstance(theirs, float):
        ours, theirs = float(ours), float(theirs)
        if math.isnan(ours) or math.isnan(theirs):
            return math.isnan(ours) and math.isnan(theirs)
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    return bool(ours == theirs)


def _key(row: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(v) for v in row)


@pytest.mark.slow
@pytest.mark.parametrize("make", [_where_query, _expression_query], ids=["where", "expressions"])
def test_random_queries_agree_with_duckdb(
    clinic: duckdb.DuckDBPyConnection, make: Callable[[random.Random], str]
) -> None:
    rng = random.Random(2024)
    compared = 0
    for _ in range(SIZE):
        sql = make(rng)
        try:
            direct = clinic.execute(sql).fetchall()
        except duckdb.Error:
            continue  # DuckDB refuses it too (type error, division by zero, ...)
        try:
            plan = plan_query(sql, None, CONTRACT, VISIBLE)
        except QueryRejected:
            continue
        answer = federated_answer(clinic, plan)
        assert answer.types[:-1] == [o.sql_type for o in plan.outputs], sql
        ours = [r[:-1] for r in answer.rows if not plan.keys or answer.cell_counts[r[-1]] != 0]
        # ties broken by value: rows of a group are unique by their keys
        n_keys = len(plan.keys)
        ours.sort(key=lambda r: _key(r[:n_keys]))
        direct.sort(key=lambda r: _key(r[:n_keys]))
        assert len(ours) == len(direct), sql
        for mine, expected in zip(ours, direct, strict=True):
            assert all(_same(a, b) for a, b in zip(mine, expected, strict=True)), (sql, mine)
        compared += 1
    assert compared >= SIZE // 2
