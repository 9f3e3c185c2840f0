"""Many concurrent queries against one clinic's small budget: it answers exactly what it affords."""

from __future__ import annotations

import dataclasses
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import fedsql
from fedsql.demo.federation import DemoFederation

#: 200 queries per run; 20 runs with FEDSQL_SLOW=1, 2 otherwise.
QUERIES = 200
RUNS = 20 if os.environ.get("FEDSQL_SLOW") == "1" else 2


@pytest.mark.slow
@pytest.mark.parametrize("run", range(RUNS))
def test_exactly_the_affordable_queries_are_charged(
    demo_data: dict[str, Path], tmp_path: Path, run: int
) -> None:
    rng = random.Random(run)
    with DemoFederation(
        noise=False,
        testing=True,
        state_dir=tmp_path,
        policy_overrides={"budget_epsilon": 100_000.0, "min_group_size": 1},
    ) as fed:
        seoul = fed.silos["seoul"]
        seoul.policy = dataclasses.replace(seoul.policy, budget_epsilon=1.0)
        statements = [
            rng.choice(
                [
                    "SELECT COUNT(*) FROM patients",
                    "SELECT sex, COUNT(*) FROM patients GROUP BY sex",
                    "SELECT AVG(bmi) FROM patients WHERE age > ?",
                ]
            )
            for _ in range(QUERIES)
        ]

        def ask(sql: str) -> str:
            with fedsql.connect(fed.target, analyst="racer", epsilon=0.1) as conn:
                cur = conn.cursor()
                cur.execute(sql, [rng.randint(20, 60)] if "?" in sql else None)
                assert cur.privacy is not None
                return {s.silo_id: s.status for s in cur.privacy.silos}["seoul"]

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(ask, statements))
        assert statuses.count("answered") == 10
        assert statuses.count("refused") == QUERIES - 10
        assert seoul.ledger.spent("racer") == 1_000_000
        assert len(seoul.ledger.entries("racer")) == 10
