"""A clinic served from PostgreSQL in pushdown mode, next to three clinics in DuckDB files.

Run with ``python examples/postgres-silo/run.py [ADMIN_URL]`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). It copies the Seoul demo clinic into a new
PostgreSQL database in the clinic's own layout (``public.patient`` with ``id``, ``age_years`` and
``gender`` spelled out), makes a login role that may only SELECT, writes the clinic's policy with
a ``[source]`` in pushdown mode and ``[bind]`` lines mapping that layout to the contract, starts
the demo federation with it, asks questions, shows the SQL PostgreSQL ran, and drops the database
and the role again.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import fedsql
from fedsql.config import load_contract, load_policy
from fedsql.demo import databases as dbs
from fedsql.demo.federation import DemoFederation
from fedsql.demo.generator import demo_files, ensure_demo_data
from fedsql.silo.source_engines import PushdownEngine

CLINIC = "seoul"
QUESTIONS = (
    "SELECT sex, COUNT(*) AS n, AVG(bmi) AS mean_bmi FROM patients GROUP BY sex",
    "SELECT test, AVG(value) AS mean FROM labs WHERE taken_at >= DATE '2024-01-01' GROUP BY test",
)


def main(admin_url: str) -> None:
    """Set up the PostgreSQL clinic, serve it in the federation, query, clean up."""
    tag = secrets.token_hex(4)
    database, reader, password = (
        f"fedsql_{CLINIC}_{tag}",
        f"fedsql_reader_{tag}",
        secrets.token_hex(12),
    )
    source = ensure_demo_data()[CLINIC]
    url = dbs.postgres_clinic(admin_url, database, reader, dbs.clinic_tables(source), password)
    print(
        f"copied the {CLINIC} clinic into PostgreSQL database {database}; read-only role {reader}"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="fedsql-postgres-silo-") as tmp:
            policy_file = Path(tmp) / f"{CLINIC}.toml"
            text = dbs.source_policy(CLINIC, "postgres", "pushdown", url)
            text = text.replace(
                'mode = "pushdown"', 'mode = "pushdown"\npassword_env = "SEOUL_DB_PASSWORD"'
            )
            policy_file.write_text(text)
            print(f"\nthe clinic's policy ({policy_file.name}), source part:")
            print(text[text.index("[source]") :].strip())
            os.environ["SEOUL_DB_PASSWORD"] = password  # from the environment, never the policy
            policy = load_policy(policy_file, load_contract(demo_files() / "contract.toml"))
            served = {CLINIC: {"source": policy.source, "data": policy.data}}
            with DemoFederation(silo_overrides=served) as federation:
                engine = federation.silos[CLINIC].engine
                assert isinstance(engine, PushdownEngine)
                print(
                    f"\n{CLINIC} serves from PostgreSQL in pushdown mode; "
                    "the others from DuckDB files"
                )
                with fedsql.connect(federation.target, analyst="analyst") as conn:
                    cur = conn.cursor()
                    for sql in QUESTIONS:
                        cur.execute(sql, epsilon=0.5)
                        assert cur.privacy is not None
                        print(f"\n{sql}\nanswered by: {sorted(cur.privacy.answered())}")
                        for row in cur.fetchall():
                            print("  ", row)
                sent = engine.connector.sent[-1]  # type: ignore[attr-defined]
                print(
                    "\nthe last partial query as PostgreSQL ran it (only grouped rows came back):"
                )
                print(sent)
    finally:
        dbs.drop_postgres_clinic(admin_url, database, reader)
        print(f"\ndropped database {database} and role {reader}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "postgresql://postgres@127.0.0.1:5432/postgres")
