"""Partial participation: a query completes over the silos that answered and names the others."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import duckdb
import pytest

import fedsql
from fedsql import errors
from fedsql.demo.federation import DemoFederation
from fedsql.demo.omop import ensure_omop_data

SQL = "SELECT sex, COUNT(*), SUM(age) FROM patients GROUP BY sex"


def _pooled(
    files: dict[str, Path],
    clinics: list[str],
    table: str = "patients",
    sql: str = SQL + " ORDER BY 1",
) -> list[tuple[object, ...]]:
    """``sql`` over the UNION ALL of ``table`` at ``clinics``, rows as (key, count, int sum)."""
    conn = duckdb.connect()
    parts = []
    for i, clinic in enumerate(clinics):
        conn.execute(f"ATTACH '{files[clinic]}' AS c{i} (READ_ONLY)")
        parts.append(f"SELECT * FROM c{i}.{table}")
    conn.execute(f"CREATE VIEW {table} AS " + " UNION ALL ".join(parts))
    rows = conn.execute(sql).fetchall()
    conn.close()
    return [(key, n, int(s)) for key, n, s in rows]


def test_a_refusing_silo_is_left_out_and_named(demo_data: dict[str, Path]) -> None:
    with DemoFederation(noise=False, testing=True, policy_overrides={"min_group_size": 1}) as fed:
        # One clinic refuses everything: it never uploads, so it is in the dropped set and the
        # others reveal their pairwise mask keys with it (and nothing else).
        seoul = fed.silos["seoul"]
        seoul.policy = dataclasses.replace(seoul.policy, approval="deny")
        with fedsql.connect(fed.target, analyst="partial") as conn:
            cur = conn.cursor().execute(SQL)
            rows = [(sex, n, int(s)) for sex, n, s in cur.fetchall()]
            assert cur.privacy is not None
            status = {s.silo_id: s for s in cur.privacy.silos}
    assert rows == _pooled(demo_data, ["mumbai", "san-francisco", "sydney"])
    assert status["seoul"].status == "refused"
    assert "refuses all queries" in status["seoul"].reason
    assert {s for s, st in status.items() if st.status == "answered"} == {
        "mumbai",
        "san-francisco",
        "sydney",
    }


def test_a_disconnected_silo_is_not_in_the_cohort(demo_data: dict[str, Path]) -> None:
    with DemoFederation(noise=False, testing=True, policy_overrides={"min_group_size": 1}) as fed:
        fed.stop_silo("sydney")
        with fedsql.connect(fed.target, analyst="partial") as conn:
            cur = conn.cursor().execute(SQL)
            rows = [(sex, n, int(s)) for sex, n, s in cur.fetchall()]
            assert cur.privacy is not None
            answered = cur.privacy.answered()
    assert rows == _pooled(demo_data, ["mumbai", "san-francisco", "seoul"])
    assert sorted(answered) == ["mumbai", "san-francisco", "seoul"]


def test_too_few_silos_fail_clearly_and_release_nothing(demo_data: dict[str, Path]) -> None:
    with DemoFederation(noise=False, testing=True) as fed:
        fed.stop_silo("sydney")
        fed.stop_silo("seoul")
        with (
            fedsql.connect(fed.target, analyst="partial") as conn,
            pytest.raises(errors.QuorumNotMet, match="at least 3"),
        ):
            conn.cursor().execute(SQL)
        assert all(a.stats.executed == 0 for a in fed.silos.values())


def test_a_silo_gone_before_the_query_and_another_between_the_rounds_abort_cleanly(
    demo_data: dict[str, Path],
) -> None:
    # With four clinics, one gone leaves a cohort of three and a Shamir threshold of 2: each
    # survivor's seed then needs shares from both other survivors, so a second clinic leaving
    # between the rounds must end the query with nothing released (SECAGG.md section 8).
    with DemoFederation(noise=False, testing=True, policy_overrides={"min_group_size": 1}) as fed:
        fed.stop_silo("sydney")
        seoul = fed.silos["seoul"]

        def leave_instead_of_answering(msg: object) -> None:
            threading.Thread(target=fed.stop_silo, args=("seoul",)).start()

        seoul._on_unmask = leave_instead_of_answering  # type: ignore[method-assign]
        with (
            fedsql.connect(fed.target, analyst="partial") as conn,
            pytest.raises(errors.QuorumNotMet, match=r"shares of survivor \S+ seed arrived"),
        ):
            conn.cursor().execute(SQL)


def test_an_absent_silo_is_named_in_the_answer(demo_data: dict[str, Path]) -> None:
    with DemoFederation(noise=False, testing=True, policy_overrides={"min_group_size": 1}) as fed:
        fed.stop_silo("sydney")
        with fedsql.connect(fed.target, analyst="partial") as conn:
            cur = conn.cursor().execute(SQL)
            assert cur.privacy is not None
            assert cur.privacy.dropped() == {
                "sydney": "not connected to the hub when the query started"
            }


OMOP_SQL = (
    "SELECT gender_concept_id, COUNT(*) AS persons, SUM(year_of_birth) AS years "
    "FROM person GROUP BY gender_concept_id ORDER BY gender_concept_id"
)


def test_five_clinics_answer_with_one_gone_before_the_query_and_one_between_the_rounds() -> None:
    # The OMOP example federation has five clinics. With Lyon gone before the query, the cohort
    # is four with a Shamir threshold of 2; Kyoto uploads and then leaves before round 2. Every
    # survivor's seed still has two responding holders, so the hub unmasks the total of the four
    # uploads, Kyoto's included.
    with DemoFederation(
        dataset="omop", noise=False, testing=True, policy_overrides={"min_group_size": 1}
    ) as fed:
        fed.stop_silo("lyon")
        kyoto = fed.silos["kyoto"]

        def leave_instead_of_answering(msg: object) -> None:
            threading.Thread(target=fed.stop_silo, args=("kyoto",)).start()

        kyoto._on_unmask = leave_instead_of_answering  # type: ignore[method-assign]
        with fedsql.connect(fed.target, analyst="partial") as conn:
            cur = conn.cursor().execute(OMOP_SQL)
            rows = [(g, n, int(s)) for g, n, s in cur.fetchall()]
            assert cur.privacy is not None
            report = cur.privacy
    survivors = ["boston", "kyoto", "nairobi", "sao-paulo"]
    assert rows == _pooled(ensure_omop_data(), survivors, "person", OMOP_SQL)
    assert sorted(report.answered()) == ["boston", "kyoto", "nairobi", "sao-paulo"]
    assert report.dropped() == {"lyon": "not connected to the hub when the query started"}
    reasons = {s.silo_id: s.reason for s in report.silos}
    assert reasons["kyoto"].startswith("left after uploading")
    assert reasons["boston"] == ""
