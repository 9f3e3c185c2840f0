"""Measures too large for one coordinate travel in two limbs: exact without noise, else noisy."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

import fedsql
from fedsql import errors
from fedsql.demo import datasets
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import ensure_demo_data
from fedsql.transport.messages import MaskedUpload
from tests.conftest import TEST_BUDGETS, wide_bounds_files
from tests.demo.conftest import hub_messages

CLAMPED_COST = "LEAST(GREATEST(cost, 0), 5000)"
#: VAR_SAMP(cost) needs COUNT(*), SUM(cost^2), SUM(cost) and COUNT(cost): 1 + 2 + 2 + 1 words.
VAR_COST = "SELECT VAR_SAMP(cost) AS v, STDDEV_POP(cost) AS s, SUM(cost) AS total FROM visits"


def _close(got: Any, want: Any) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert math.isclose(float(a), float(b), rel_tol=1e-9), (a, b)


def test_a_two_limb_query_equals_duckdb_over_the_pooled_data(
    oracle_federation: DemoFederation,
    pooled: duckdb.DuckDBPyConnection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with fedsql.connect(oracle_federation.target, analyst="limbs") as conn:
        cur = conn.cursor()
        text = "\n".join(cur.explain(VAR_COST))
        cur.execute(VAR_COST)
        (row,) = cur.fetchall()
    assert "SUM(POWER(cost, 2)): sent in two limbs, X >> 32 and X mod 2^32" in text
    assert "SUM(cost): sent in two limbs" in text
    assert "4 measure(s) = 6 coordinates per cell, vector of 6" in text
    expected = pooled.execute(
        f"SELECT VAR_SAMP({CLAMPED_COST}), STDDEV_POP({CLAMPED_COST}), SUM({CLAMPED_COST}) "
        "FROM visits"
    ).fetchone()
    assert expected is not None
    _close(row, expected)
    received = hub_messages(oracle_federation, monkeypatch, VAR_COST)
    words = [len(m.y) // 8 for m in received if isinstance(m, MaskedUpload)]
    assert words == [6, 6, 6, 6]  # one cell of 6 words from each silo


@pytest.fixture(scope="module")
def wide_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return wide_bounds_files(tmp_path_factory.mktemp("wide-bounds"))


def _wide_federation(files: Path, *, noise: bool) -> Iterator[DemoFederation]:
    wide = datasets.Dataset("wide", "the demo with wide bounds", lambda: files, ensure_demo_data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(datasets.DATASETS, "wide", wide)
        with DemoFederation(
            dataset="wide",
            noise=noise,
            testing=not noise,
            policy_overrides={**TEST_BUDGETS, "min_group_size": 0, "max_epsilon_per_query": 2.0},
        ) as fed:
            yield fed


@pytest.fixture(scope="module")
def wide_oracle(wide_files: Path) -> Iterator[DemoFederation]:
    yield from _wide_federation(wide_files, noise=False)


@pytest.fixture(scope="module")
def wide_noisy(wide_files: Path) -> Iterator[DemoFederation]:
    yield from _wide_federation(wide_files, noise=True)


def test_a_sum_of_squares_beyond_one_coordinate_equals_duckdb_without_noise(
    wide_oracle: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    # cost <= 1e7 here: 4 silos x 1e8 rows x 1e14 = 2^75.4, more than one coordinate holds
    with fedsql.connect(wide_oracle.target, analyst="limbs") as conn:
        cur = conn.cursor()
        cur.execute("SELECT SUM(cost * cost) AS sq, VAR_SAMP(cost) AS v FROM visits")
        (row,) = cur.fetchall()
    expected = pooled.execute("SELECT SUM(cost * cost), VAR_SAMP(cost) FROM visits").fetchone()
    assert expected is not None
    _close(row, expected)


def test_a_measure_beyond_two_limbs_is_rejected_with_a_clear_error(
    wide_oracle: DemoFederation,
) -> None:
    with fedsql.connect(wide_oracle.target, analyst="limbs") as conn:
        cur = conn.cursor()
        with pytest.raises(errors.QueryRejected, match="even split into 2 limbs") as info:
            cur.execute("SELECT VAR_SAMP(value) FROM labs")
    assert "high limb" in str(info.value)


def test_a_noisy_two_limb_sum_is_released_within_its_noise(
    wide_noisy: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT SUM(cost * cost) AS sq FROM visits"
    with fedsql.connect(wide_noisy.target, analyst="limbs") as conn:
        cur = conn.cursor()
        text = "\n".join(cur.explain(sql, epsilon=1.0))
        cur.execute(sql, epsilon=1.0)
        ((noisy,),) = cur.fetchall()
        privacy = cur.privacy
    assert "SUM(cost * cost): sent in two limbs" in text
    assert privacy is not None and privacy.noise
    (sigma,) = privacy.sigma("sq")
    assert sigma is not None
    truth = pooled.execute("SELECT SUM(cost * cost) FROM visits").fetchone()
    assert truth is not None
    # one coordinate could not hold this sum; the noise, on the low limb, is what the plan says
    assert abs(noisy - truth[0]) < 6 * sigma
    assert sigma > 1e15
