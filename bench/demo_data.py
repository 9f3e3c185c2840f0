"""Generating the demo federation's four clinics from scratch, against copying the same rows.

Builds every clinic's DuckDB file of the embedded demo (250,000 patients with their visits and
labs, and each clinic's private table) in a fresh cache folder, and, in the same run, the time
DuckDB takes to write the very same tables into new files from memory: the floor for any
generator that ends in those files. Prints both, their ratio, and the target of 5 s.

    python bench/demo_data.py            # median of 3 builds
    python bench/demo_data.py --smoke    # one build
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from fedsql.demo.generator import CLINICS, ensure_demo_data

TARGET_SECONDS = 5.0


def build_once() -> float:
    """Seconds for ensure_demo_data in an empty cache folder."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        ensure_demo_data(Path(folder))
        return time.perf_counter() - start


def copy_once(tables: dict[str, dict[str, pa.Table]]) -> float:
    """Seconds for DuckDB to write the same tables, already in memory, into new files."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        for silo, by_name in tables.items():
            con = duckdb.connect(str(Path(folder) / f"{silo}.duckdb"))
            for name, table in by_name.items():
                con.register("__source", table)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM __source')
                con.unregister("__source")
            con.close()
        return time.perf_counter() - start


def read_back(paths: dict[str, Path]) -> dict[str, dict[str, pa.Table]]:
    """Every table of every built clinic file, as Arrow."""
    out: dict[str, dict[str, pa.Table]] = {}
    for silo, path in paths.items():
        con = duckdb.connect(str(path), read_only=True)
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        out[silo] = {n: con.sql(f'SELECT * FROM "{n}"').to_arrow_table() for n in names}
        con.close()
    return out


def main() -> None:
    """Build the demo data a few times and print the medians beside the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one build")
    args = parser.parse_args()
    reps = 1 if args.smoke else args.reps
    builds = [build_once() for _ in range(reps)]
    with tempfile.TemporaryDirectory() as folder:
        tables = read_back(ensure_demo_data(Path(folder)))
    rows = sum(t.num_rows for by_name in tables.values() for t in by_name.values())
    copies = [copy_once(tables) for _ in range(reps)]
    build, copy = statistics.median(builds), statistics.median(copies)
    print(f"clinics: {len(CLINICS)}, rows in all tables: {rows:,}")
    print(f"generate all clinics: {build:.2f} s (median of {reps}); target <= {TARGET_SECONDS:g} s")
    print(f"DuckDB writing the same rows from memory: {copy:.2f} s")
    print(f"generate/copy ratio: {build / copy:.1f}")
    status = "met" if build <= TARGET_SECONDS else "missed"
    print(f"target: generation <= {TARGET_SECONDS:g} s: {build:.2f} ({status})")


if __name__ == "__main__":
    main()
