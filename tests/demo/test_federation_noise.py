"""With noise on, released values scatter around the truth with the standard deviation shown."""

from __future__ import annotations

import duckdb
import numpy as np

import fedsql
from fedsql.demo.federation import DemoFederation

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
    residuals, sigmas, covered = [], [], []
    with fedsql.connect(fed.target, analyst="noise-tester", epsilon=epsilon) as conn:
        cur = conn.cursor()
        for _ in range(REPEATS):
            cur.execute(sql)
            assert cur.privacy is not None and cur.privacy.noise
            stats = cur.privacy.stats.to_pylist()
            for (key, value), st in zip(cur.fetchall(), stats, strict=True):
                if sizes.get(key, 0) < min_size:
                    continue
                true = float(truth.get(key, 0))
                residuals.append(float(value) - true)
                sigmas.append(st["v__sigma"])
                covered.append(st["v__lo"] <= true <= st["v__hi"])
    return np.array(residuals), np.array(sigmas), np.array(covered)


def test_count_noise_matches_advertised_sigma(
    noisy_federation: DemoFederation, pooled: duckdb.DuckDBPyConnection
) -> None:
    # ~90 populated ages x 12 repetitions: the estimate of sigma is within a few percent.
    res, sig, covered = _residuals(
        noisy_federation,
        pooled,
        "SELECT age, COUNT(*) AS v FROM patients GROUP BY age",
        "SELECT age, COUNT(*) FROM patients GROUP BY age",
        epsilon=0.5,
    )
    assert np.allclose(sig, sig[0])
    ratio = res.std() / sig[0]
    assert 0.85 < ratio < 1.15, ratio
    assert abs(res.mean()) < 4 * sig[0] / np.sqrt(len(res))
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
