"""A clinic with millions of visits in PostgreSQL: pushdown vs snapshot vs the query run directly.

Creates a database with one ``visits`` table of ``--rows`` rows (loaded with COPY through ADBC),
a read-only role, and a silo policy binding it. Then, for a grouped query (visits and mean cost by
day, 1,827 cells), it times:

* pushdown: the silo's pushdown engine (transpile, run in PostgreSQL as the read-only role,
  fetch the grouped rows);
* direct: the very same transpiled partial query run in PostgreSQL over a plain connection
  (pushdown and direct take turns, so a varying load on the machine weighs on both alike);
* snapshot: loading the table into the silo's DuckDB (reported separately), then the partial
  query there.

The target is pushdown within 1.3x of direct. The database and role are dropped at the end.

    python bench/connectors.py                 # 10 million rows
    python bench/connectors.py --rows 2000000
    python bench/connectors.py --smoke         # 20,000 rows, one repetition
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# This script's folder comes first on sys.path and this file is named like the connectors
# package the silo loads its sources from: take the folder off so that package is found.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import adbc_driver_postgresql.dbapi as adbc_pg  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from fedsql.config import load_contract, parse_policy  # noqa: E402
from fedsql.demo import databases as dbs  # noqa: E402
from fedsql.demo.generator import demo_files  # noqa: E402
from fedsql.silo.source_engines import PushdownEngine, SnapshotEngine, open_engine  # noqa: E402
from fedsql.sql.plan import SALT_PARAM  # noqa: E402
from fedsql.sql.planner import plan_query  # noqa: E402

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
QUERY = "SELECT visit_date, COUNT(*) AS n, AVG(cost) AS mean_cost FROM visits GROUP BY visit_date"
TARGET_RATIO = 1.3
POLICY = """
[silo]
id = "big-clinic"

[share]
visits = ["visit_id", "patient_id", "visit_date", "cost"]

[limits]
query_timeout_s = 600

[source]
connector = "postgres"
mode = "{mode}"
url = "{url}"
"""


def visits(rows: int, seed: int = 7) -> pa.Table:
    """Synthetic visits: 8 per patient, days of 2020..2024, log-normal costs (some above bounds)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2020-01-01")
    days = rng.integers(0, 1827, rows).astype("timedelta64[D]")
    return pa.table(
        {
            "visit_id": np.arange(rows, dtype=np.int64),
            "patient_id": np.arange(rows, dtype=np.int64) // 8,
            "visit_date": pa.array(start + days, type=pa.date32()),
            "cost": rng.lognormal(5.0, 1.0, rows),
        }
    )


def timed(fns: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median seconds of each function over ``repeat`` rounds, after one warm-up round.

    The functions take turns within each round (in alternating order), so a load on the machine
    that comes and goes weighs on all of them alike.
    """
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for round_ in range(repeat):
        order = list(range(len(fns)))
        if round_ % 2:
            order.reverse()
        for i in order:
            start = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main() -> None:
    """Set up, measure, print, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="visits in PostgreSQL")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds per mode")
    parser.add_argument("--smoke", action="store_true", help="20,000 rows, one repetition")
    args = parser.parse_args()
    rows, repeat = (20_000, 1) if args.smoke else (args.rows, args.repeat)

    contract = load_contract(demo_files() / "contract.toml")
    tag = secrets.token_hex(4)
    database, reader = f"fedsql_bench_{tag}", f"fedsql_bench_reader_{tag}"
    start = time.perf_counter()
    url = dbs.postgres_clinic(ADMIN, database, reader, iter([("visits", visits(rows))]))
    print(
        f"loaded {rows:,} visits into PostgreSQL with COPY in {time.perf_counter() - start:.1f} s"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="fedsql-bench-") as state:
            pushdown_policy = parse_policy(POLICY.format(mode="pushdown", url=url), contract)
            plan = plan_query(QUERY, None, contract, pushdown_policy.shared)
            params = {SALT_PARAM: secrets.randbits(63)}
            pushdown = open_engine(contract, pushdown_policy, "", state)
            assert isinstance(pushdown, PushdownEngine)
            compiled = pushdown.connector.compile_partial(  # type: ignore[attr-defined]
                plan.partial_sql, params[SALT_PARAM]
            )
            direct_conn = adbc_pg.connect(url, autocommit=True)

            def direct() -> object:
                with direct_conn.cursor() as cur:
                    cur.execute(compiled)
                    return cur.fetchall()

            t_pushdown, t_direct = timed(
                [lambda: pushdown.run(plan.partial_sql, params, 600), direct], repeat
            )
            groups = len(direct())
            direct_conn.close()
            pushdown.close()

            snapshot_policy = parse_policy(POLICY.format(mode="snapshot", url=url), contract)
            start = time.perf_counter()
            snapshot = open_engine(contract, snapshot_policy, "", state)
            t_load = time.perf_counter() - start
            assert isinstance(snapshot, SnapshotEngine)
            (t_snapshot,) = timed([lambda: snapshot.run(plan.partial_sql, params, 600)], repeat)
            snapshot.close()
    finally:
        dbs.drop_postgres_clinic(ADMIN, database, reader)

    ratio = t_pushdown / t_direct
    print(f"\nquery: {QUERY}  ({groups} groups of {plan.cells} cells come back)")
    print(f"{'mode':<34}{'seconds':>10}")
    print(f"{'PostgreSQL directly (same SQL)':<34}{t_direct:>10.3f}")
    print(f"{'pushdown (silo engine)':<34}{t_pushdown:>10.3f}")
    print(f"{'snapshot: load into DuckDB':<34}{t_load:>10.3f}")
    print(f"{'snapshot: query in DuckDB':<34}{t_snapshot:>10.3f}")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    print(f"\npushdown/direct ratio {ratio:.2f} (target <= {TARGET_RATIO}: {verdict})")


if __name__ == "__main__":
    main()
