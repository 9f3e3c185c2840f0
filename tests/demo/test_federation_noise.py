"""With noise on, released values scatter around the truth with the standard deviation shown."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pytest

import fedsql
from fedsql.demo.federation import DemoFederation
from fedsql.privacy.calibrate import plan_noise
from fedsql.query_terms import measure_specs
from fedsql.sql import plan_query
from tests.conftest import union_connection

REPEATS = 12


def _residuals(
    fed: DemoFederation,
    pooled: duckdb.DuckDBPyConnection,
    sql: str,
    truth_sql: str,
    epsilon: float,
    min_size: int = 200,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth = dict(pooled.execute(truth_sql).fetchall())
    # Only well-populated cells: a cell whose noisy count falls below zero is suppressed, which
    # would censor the residuals of empty cells.
    sizes = dict(pooled.execute("SELECT age, COUNT(*) FROM patients GROUP BY age").fetchall())
    return _released(fed, sql, truth, sizes, epsilon, min_size, REPEATS)


def _released(
    fed: DemoFederation,
    sql: str,
    truth: dict[object, object],
    sizes: dict[object, int],
    epsilon: float,
    min_size: int,
    repeats: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals, declared sigmas and interval coverage of column v over cells of min_size rows."""
    residuals, sigmas, covered = [], [], []
    with fedsql.connect(fed.target, analyst="noise-tester", epsilon=epsilon) as conn:
        cur = conn.cursor()
        for _ in range(repeats):
            cur.execute(sql)
            assert cur.privacy is not None and cur.privacy.noise
            stats = cur.privacy.stats.to_pylist()
            for (key, value), st in zip(cur.fetchall(), stats, strict=True):
                if sizes.get(key, 0) < min_size:
                    continue
                true = float(truth.get(key, 0))  # type: ignore[arg-type]
                residuals.append(float(value) - true)
                sigmas.append(st["v__sigma"])
                covered.append(st["v__lo"] <= true <= st["v__hi"])
    return np.array(residuals), np.array(sigmas), np.array(covered)


COUNT_BY_AGE = "SELECT age, COUNT(*) AS v FROM patients GROUP BY age"


def _count_sigma(fed: DemoFederation, epsilon: float, survivors: int, all_answered: bool) -> float:
    """The released sd of COUNT(*) by age, derived here from the contract for 4 clinics."""
    contract = fed.contract
    visible = {t.name: t.column_names for t in contract.tables}
    plan = plan_query(COUNT_BY_AGE, None, contract, visible)
    noise = plan_noise(
        epsilon,
        contract.delta,
        measure_specs(plan),
        contract.secagg.m_min(4),
        contract.secagg.m_all(4),
    )
    (m,) = noise.measures
    share = m.sigma_base_encoded if all_answered else m.sigma_local_encoded
    return math.sqrt(survivors) * share / 2**m.frac_bits


def test_count_noise_matches_advertised_sigma(
    noisy_federation: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    # ~90 populated ages x 12 repetitions: the estimate of sigma is within a few percent.
    res, sig, covered = _residuals(
        noisy_federation,
        pooled,
        COUNT_BY_AGE,
        "SELECT age, COUNT(*) FROM patients GROUP BY age",
        epsilon=0.5,
    )
    assert np.allclose(sig, sig[0])
    # All four clinics answered: the extra parts were removed, leaving 4 base shares, each
    # sized for m_all = 3 honest clinics (sd sqrt(4/3) times the query's, not sqrt(4/2)).
    assert sig[0] == pytest.approx(_count_sigma(noisy_federation, 0.5, 4, all_answered=True))
    ratio = res.std() / sig[0]
    assert 0.85 < ratio < 1.15, ratio
    assert abs(res.mean()) < 4 * sig[0] / np.sqrt(len(res))
    assert 0.92 < covered.mean() < 0.98


@contextmanager
def _refusing(fed: DemoFederation, silo_id: str) -> Iterator[None]:
    """One clinic refuses every query for the duration."""
    agent = fed.silos[silo_id]
    saved = agent.policy
    agent.policy = dataclasses.replace(saved, approval="deny")
    try:
        yield
    finally:
        agent.policy = saved


def test_with_a_clinic_refusing_the_whole_noise_stays_and_is_reported(
    noisy_federation: DemoFederation, demo_data: dict[str, Path]
) -> None:
    others = {k: v for k, v in demo_data.items() if k != "seoul"}
    three = union_connection(others)
    try:
        truth = dict(three.execute("SELECT age, COUNT(*) FROM patients GROUP BY age").fetchall())
        sizes = {k: int(v) for k, v in truth.items()}
    finally:
        three.close()
    with _refusing(noisy_federation, "seoul"):
        res, sig, covered = _released(
            noisy_federation, COUNT_BY_AGE, truth, sizes, 0.5, 150, REPEATS
        )
        with fedsql.connect(noisy_federation.target, analyst="noise-tester") as conn:
            cur = conn.cursor().execute(COUNT_BY_AGE, epsilon=0.5)
            assert cur.privacy is not None
            assert cur.privacy.details["noise_level"] == "survivors"
            assert sorted(cur.privacy.answered()) == ["mumbai", "san-francisco", "sydney"]
    full = _count_sigma(noisy_federation, 0.5, 3, all_answered=False)
    assert np.allclose(sig, full)
    assert full > _count_sigma(noisy_federation, 0.5, 3, all_answered=True) * 1.2
    ratio = res.std() / full
    assert 0.85 < ratio < 1.15, ratio
    assert 0.92 < covered.mean() < 0.98


def test_sum_noise_matches_advertised_sigma(
    noisy_federation: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    res, sig, covered = _residuals(
        noisy_federation,
        pooled,
        "SELECT age, SUM(bmi) AS v FROM patients GROUP BY age",
        "SELECT age, SUM(bmi) FROM patients GROUP BY age",
        epsilon=1.0,
    )
    ratio = res.std() / sig[0]
    assert 0.85 < ratio < 1.15, ratio
    assert 0.92 < covered.mean() < 0.98


def test_noisy_answers_differ_from_the_truth(
    noisy_federation: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    truth = pooled.execute("SELECT COUNT(*) FROM patients").fetchone()
    assert truth is not None
    with fedsql.connect(noisy_federation.target, analyst="noise-tester") as conn:
        values = {
            conn.cursor().execute("SELECT COUNT(*) FROM patients").fetchall()[0][0]
            for _ in range(4)
        }
        cur = conn.cursor().execute("SELECT COUNT(*) FROM patients")
        assert cur.privacy is not None
        assert cur.privacy.details["noise_level"] == "all answered"
    assert values != {truth[0]}
    assert len(values) > 1


def test_average_intervals_cover_the_truth(
    noisy_federation: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    # AVG's sigma comes from the delta method over its SUM and COUNT; at small epsilon the noise is
    # large enough to be measured against the noise-free mean of each age.
    res, sig, covered = _residuals(
        noisy_federation,
        pooled,
        "SELECT age, AVG(bmi) AS v FROM patients GROUP BY age",
        "SELECT age, AVG(bmi) FROM patients GROUP BY age",
        epsilon=0.1,
        min_size=2000,
    )
    ratio = np.std(res / sig)
    assert 0.85 < ratio < 1.15, ratio
    assert 0.92 < covered.mean() < 0.98


#: Repetitions of each aggregate's statistical test (FEDSQL_SLOW=1 runs the full size).
AGGREGATE_REPEATS = 40 if os.environ.get("FEDSQL_SLOW") == "1" else 8

#: (group key over patients, released value, epsilon, smallest cell size used). The values
#: have a spread comparable to their bounds, so that noise at epsilon <= 1 is small next to them.
AGGREGATE_CASES: list[tuple[str, str, float, int]] = [
    ("age", "COUNT(DISTINCT patient_id)", 0.5, 200),
    ("age", "COUNT(*) FILTER (WHERE diabetic)", 0.5, 200),
    ("age", "SUM(CASE WHEN bmi > 30 THEN bmi END)", 1.0, 200),
    ("age", "SUM(CASE WHEN diabetic THEN 1 ELSE 0 END) / COUNT(*)", 0.2, 1000),
    ("age", "VAR_SAMP(CAST(bmi AS INTEGER) % 7)", 0.5, 1000),
    ("age", "VAR_POP(CAST(bmi AS INTEGER) % 7)", 0.5, 1000),
    ("age", "STDDEV_SAMP(CAST(bmi AS INTEGER) % 7)", 0.5, 1000),
    ("age", "STDDEV_POP(CAST(bmi AS INTEGER) % 7)", 0.5, 1000),
    ("age", "MEDIAN(bmi)", 0.5, 1000),
    ("age", "QUANTILE_CONT(bmi, 0.9)", 0.5, 1000),
    ("age // 2", "AVG(bmi)", 0.5, 200),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "value", "epsilon", "min_size"),
    AGGREGATE_CASES,
    ids=[f"{c[1]} by {c[0]}" for c in AGGREGATE_CASES],
)
def test_each_aggregate_has_its_declared_noise_and_covering_intervals(
    noisy_federation: DemoFederation,
    oracle_federation: DemoFederation,
    pooled: duckdb.DuckDBPyConnection,
    key: str,
    value: str,
    epsilon: float,
    min_size: int,
) -> None:
    sql = f"SELECT {key} AS k, {value} AS v FROM patients GROUP BY 1"
    sizes = dict(pooled.execute(f"SELECT {key}, COUNT(*) FROM patients GROUP BY 1").fetchall())
    with fedsql.connect(oracle_federation.target, analyst="noise-tester") as conn:
        truth = dict(conn.cursor().execute(sql).fetchall())
    residuals, sigmas, covered = _released(
        noisy_federation, sql, truth, sizes, epsilon, min_size, AGGREGATE_REPEATS
    )
    assert np.all(sigmas > 0)
    scaled = residuals / sigmas
    n = len(scaled)
    assert n >= 250, n
    # the released noise has the declared standard deviation (a factor of 2 either way fails)
    assert 0.85 < float(np.std(scaled)) < 1.15, float(np.std(scaled))
    # 95% intervals cover the noise-off truth: 93-97% at full size, +-4 binomial sd otherwise
    rate = float(np.mean(covered))
    if AGGREGATE_REPEATS >= 40:
        assert 0.93 <= rate <= 0.97, rate
    else:
        slack = 4 * math.sqrt(0.95 * 0.05 / n)
        assert 0.95 - slack <= rate <= 0.95 + slack, rate


def test_explain_shows_the_budget_split_and_each_outputs_margin(
    noisy_federation: DemoFederation,
) -> None:
    sql = (
        "SELECT sex, COUNT(*) AS n, AVG(bmi) AS mean_bmi, MEDIAN(age) AS median_age "
        "FROM patients GROUP BY sex"
    )
    with fedsql.connect(noisy_federation.target, analyst="noise-tester", epsilon=0.5) as conn:
        lines = conn.cursor().explain(sql)
    text = "\n".join(lines)
    assert "budget split: rho_j proportional to sqrt(w_j) * sensitivity_j" in text
    assert "noise sized for m_min=2 honest silos, reduced to m_all=3 when every clinic" in text
    assert "assume every one of the 4 clinics answers" in text
    assert "histogram of age: 32 bins" in text
    shares = [float(x) for x in re.findall(r"rho [0-9.e-]+ \(([0-9.]+)%\)", text)]
    assert len(shares) == 3 + 32  # COUNT(*), SUM(bmi), COUNT(bmi) and the histogram's bins
    assert sum(shares) == pytest.approx(100.0, abs=35 * 0.05)  # each is rounded to 0.1%
    for name, where in (("n", "any cell"), ("mean_bmi", "typical cell"), ("median_age", "typical")):
        (line,) = [x for x in lines if x.strip().startswith(f"output {name}:")]
        assert "expected 95% margin ±" in line and where in line
