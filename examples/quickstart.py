"""A first analysis on the embedded demo federation: diabetes prevalence by sex, with its precision.

Run with ``python examples/quickstart.py``. It starts the demo hub and four clinic silos in this
process, asks two private questions, and prints each answer with its 95% interval and what it cost.
"""

from __future__ import annotations

import fedsql


def main() -> None:
    """Ask the demo federation two questions and print answers, intervals and costs."""
    with fedsql.connect("demo", analyst="quickstart") as conn:
        cur = conn.cursor()

        cur.execute(
            "SELECT sex, COUNT(*) AS patients FROM patients WHERE age >= ? GROUP BY sex",
            [50],
            epsilon=0.5,
        )
        population = {sex: n for sex, n in cur.fetchall()}
        cur.execute(
            "SELECT sex, COUNT(*) AS cases FROM patients WHERE age >= ? AND diabetic GROUP BY sex",
            [50],
            epsilon=0.5,
        )
        assert cur.privacy is not None
        stats = cur.privacy.stats.to_pylist()
        print("diabetes among patients aged 50 and over (noisy counts, 95% intervals)")
        for (sex, cases), st in zip(cur.fetchall(), stats, strict=True):
            share = cases / population[sex]
            print(
                f"  {sex}: {cases:,} cases [{st['cases__lo']:,.0f}, {st['cases__hi']:,.0f}] "
                f"of {population[sex]:,} patients ({share:.1%})"
            )
        print(f"epsilon spent per clinic: 0.5 + {cur.privacy.epsilon}")
        print("budget left:", cur.privacy.budget_left())


if __name__ == "__main__":
    main()
