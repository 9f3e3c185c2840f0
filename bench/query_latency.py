"""End-to-end latency of the demo queries: fedsql (hub + 4 silos on loopback) vs plain DuckDB.

DuckDB runs the same SQL in one process over the UNION ALL of the four clinics' tables; fedsql
plans, charges, computes, noises, masks, securely aggregates and finalizes. Prints the median of
each and their ratio; the target at demo scale is a ratio of at most 10.

    python bench/query_latency.py            # full run
    python bench/query_latency.py --smoke    # a couple of repetitions
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

import fedsql
from fedsql.demo.generator import ensure_demo_data

QUERIES = {
    "count": "SELECT COUNT(*) FROM patients",
    "avg_bmi_by_sex": "SELECT sex, AVG(bmi) AS bmi FROM patients WHERE age >= 40 GROUP BY sex",
    "diabetics_by_age": "SELECT age, COUNT(*) FROM patients WHERE diabetic GROUP BY age",
    "visit_cost": "SELECT SUM(cost), AVG(cost) FROM visits WHERE visit_date >= DATE '2023-01-01'",
    "labs_by_test": "SELECT test, AVG(value), COUNT(*) FROM labs GROUP BY test ORDER BY 1",
}
TARGET_RATIO = 10.0


def union_connection(files: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB with views over the UNION ALL of every clinic's shared tables."""
    conn = duckdb.connect()
    for i, path in enumerate(files.values()):
        conn.execute(f"ATTACH '{path}' AS c{i} (READ_ONLY)")
    for table in ("patients", "visits", "labs"):
        parts = " UNION ALL ".join(f"SELECT * FROM c{i}.{table}" for i in range(len(files)))
        conn.execute(f"CREATE VIEW {table} AS {parts}")
    return conn


def median_time(fn: object, reps: int) -> float:
    """Median wall time of ``reps`` calls after one warm-up call."""
    assert callable(fn)
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="two repetitions, for CI")
    args = parser.parse_args()
    reps = 2 if args.smoke else args.reps

    files = ensure_demo_data()
    plain = union_connection(files)
    with tempfile.TemporaryDirectory() as state:
        conn = fedsql.connect("demo", state_dir=state, epsilon=0.01)
        cur = conn.cursor()
        print(f"{'query':<20} {'duckdb ms':>10} {'fedsql ms':>10} {'ratio':>7} {'target':>7}")
        worst = 0.0
        for name, sql in QUERIES.items():
            t_duck = median_time(lambda sql=sql: plain.execute(sql).fetchall(), reps)
            t_fed = median_time(lambda sql=sql: cur.execute(sql).fetchall(), reps)
            ratio = t_fed / t_duck
            worst = max(worst, ratio)
            print(
                f"{name:<20} {t_duck * 1e3:>10.2f} {t_fed * 1e3:>10.2f} {ratio:>7.1f} "
                f"{'<= ' + format(TARGET_RATIO, 'g'):>7}"
            )
        conn.close()
    print(f"worst ratio {worst:.1f} (target <= {TARGET_RATIO:g})")


if __name__ == "__main__":
    main()
