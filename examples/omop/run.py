"""Run every OMOP research query of ``examples/omop/queries`` on the embedded OMOP federation.

Run with ``python examples/omop/run.py [--epsilon 0.4] [--rows 8]``. It starts the OMOP example's
hub and five clinic silos in this process (fresh budgets each run), asks each question, and
prints the answer with each value's 95% margin, or why the federation cannot answer it yet.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import fedsql
from fedsql.demo.example_queries import ExampleQuery, load_queries
from fedsql.demo.omop import omop_files
from fedsql.privacy.accuracy import Z95


def _cell(value: object, sigma: object) -> str:
    """A key as it is; a released value with its 95% margin."""
    if not isinstance(sigma, float):
        return str(value)
    if isinstance(value, float) and abs(value) < 100:
        text = f"{value:,.4g}"
    elif isinstance(value, int | float):
        text = f"{value:,.0f}"
    else:
        text = str(value)
    return f"{text} ± {Z95 * sigma:,.3g}"


def render(cur: fedsql.Cursor, max_rows: int) -> list[str]:
    """The answer of the last query as text lines: a header and one line per released row."""
    assert cur.description is not None and cur.privacy is not None
    names = [d[0] for d in cur.description]
    stats = cur.privacy.stats.to_pylist()
    released = [
        (row, st) for row, st in zip(cur.fetchall(), stats, strict=True) if not st["__suppressed"]
    ]
    lines = ["  " + " | ".join(names)]
    for row, st in released[:max_rows]:
        cells = [_cell(v, st.get(f"{n}__sigma")) for n, v in zip(names, row, strict=True)]
        lines.append("  " + " | ".join(cells))
    more = len(released) - max_rows
    if more > 0:
        lines.append(f"  ... {more} more rows")
    if len(stats) > len(released):
        lines.append(f"  ({len(stats) - len(released)} cells suppressed: noisy count too small)")
    return lines


def run(queries: Sequence[ExampleQuery], epsilon: float, max_rows: int) -> tuple[int, int]:
    """Ask every query and print its answer; returns (answered, not yet supported)."""
    answered = rejected = 0
    with fedsql.connect("omop", analyst="omop-example", epsilon=epsilon) as conn:
        cur = conn.cursor()
        for query in queries:
            print(f"\n{query.name}: {query.question}")
            try:
                cur.execute(query.sql)
            except fedsql.ProgrammingError as exc:
                rejected += 1
                print(f"  not answerable yet: {exc}")
                continue
            answered += 1
            print("\n".join(render(cur, max_rows)))
        assert cur.privacy is not None or answered == 0
        if cur.privacy is not None:
            print("\nbudget left:", cur.privacy.budget_left())
    return answered, rejected


def main() -> None:
    """Parse the options and run every query."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilon", type=float, default=0.4, help="epsilon of each query")
    parser.add_argument("--rows", type=int, default=8, help="rows printed per answer")
    args = parser.parse_args()
    queries = load_queries(omop_files() / "queries")
    print(f"{len(queries)} research queries on the OMOP example (epsilon {args.epsilon:g} each)")
    answered, rejected = run(queries, args.epsilon, args.rows)
    print(f"\n{answered} answered, {rejected} not answerable yet")


if __name__ == "__main__":
    main()
