"""Every class of rejected SQL fails clearly before any silo runs SQL or spends anything."""

from __future__ import annotations

import pytest

import fedsql
from fedsql import errors
from fedsql.demo.federation import DemoFederation

REJECTED: list[tuple[str, type[Exception], str]] = [
    ("SELEC COUNT(*) FROM patients", errors.SQLSyntaxError, ""),
    ("CREATE TABLE x (a INT)", errors.NotSupportedError, ""),
    ("DROP TABLE patients", errors.NotSupportedError, ""),
    ("INSERT INTO patients VALUES (1)", errors.NotSupportedError, ""),
    ("UPDATE patients SET age = 1", errors.NotSupportedError, ""),
    ("DELETE FROM patients", errors.NotSupportedError, ""),
    ("PRAGMA database_list", errors.NotSupportedError, ""),
    ("SET threads = 1", errors.NotSupportedError, ""),
    ("COPY patients TO 'x.csv'", errors.NotSupportedError, ""),
    ("ATTACH 'x.duckdb' AS x", errors.NotSupportedError, ""),
    ("INSTALL httpfs", errors.NotSupportedError, ""),
    ("LOAD httpfs", errors.NotSupportedError, ""),
    ("SELECT COUNT(*) FROM patients; SELECT COUNT(*) FROM visits", errors.QueryRejected, ""),
    ("SELECT * FROM patients", errors.QueryRejected, "*"),
    ("FROM patients", errors.QueryRejected, ""),
    ("FROM patients SELECT COUNT(*)", errors.QueryRejected, ""),
    ("SELECT age FROM patients", errors.QueryRejected, "age"),
    (
        "SELECT patient_id, COUNT(*) FROM patients GROUP BY patient_id",
        errors.QueryRejected,
        "patient_id",
    ),
    ("SELECT SUM(patient_id) FROM patients", errors.QueryRejected, "patient_id"),
    ("SELECT COUNT(*) FROM patients WHERE md5(sex) = 'x'", errors.QueryRejected, "md5"),
    ("SELECT COUNT(*) FROM read_csv('/etc/passwd')", errors.QueryRejected, ""),
    ("SELECT MIN(age) FROM patients", errors.QueryRejected, "quantile"),
    ("SELECT COUNT(*) FROM nosuchtable", errors.UnknownObject, "nosuchtable"),
    ("SELECT COUNT(name) FROM patients", errors.UnknownObject, "name"),
    ("SELECT COUNT(*) FROM patients WHERE zip = '94110'", errors.UnknownObject, "zip"),
    ('SELECT COUNT("Name") FROM patients', errors.UnknownObject, "name"),
    ("SELECT COUNT(ZIP) FROM patients", errors.UnknownObject, "zip"),
    ("SELECT COUNT(*) FROM main.patients", errors.UnknownObject, ""),
    ("SELECT COUNT(*) FROM staff_notes", errors.UnknownObject, "staff_notes"),
    ("SELECT bmi, COUNT(*) FROM patients GROUP BY bmi", errors.QueryRejected, "domain"),
    # aggregates: what cannot be bounded, or would describe one patient
    ("SELECT MAX(bmi) FROM patients", errors.QueryRejected, "QUANTILE_CONT(col, 0.95)"),
    ("SELECT MODE(age) FROM patients", errors.QueryRejected, "aggregate MODE is not supported"),
    ("SELECT QUANTILE_DISC(age, 0.5) FROM patients", errors.QueryRejected, "discrete quantile"),
    ("SELECT QUANTILE_CONT(age, 2) FROM patients", errors.QueryRejected, "outside [0, 1]"),
    ("SELECT MEDIAN(age) OVER () FROM patients", errors.QueryRejected, "window functions"),
    (
        "SELECT COUNT(DISTINCT sex) FROM patients",
        errors.QueryRejected,
        "only COUNT(DISTINCT patient_id)",
    ),
    ("SELECT SUM(DISTINCT age) FROM patients", errors.QueryRejected, "SUM(DISTINCT ...)"),
    (
        "SELECT COUNT(DISTINCT patient_id) FILTER (WHERE patient_id > 10) FROM patients",
        errors.QueryRejected,
        "cannot read patient_id",
    ),
    ("SELECT SUM(patient_id % 2) FROM patients", errors.QueryRejected, "privacy unit"),
    (
        "SELECT COUNT(*) FILTER (WHERE COUNT(*) > 1) FROM patients",
        errors.QueryRejected,
        "inside FILTER",
    ),
    ("SELECT AVG(age / bmi) FROM patients", errors.QueryRejected, "divides by a row value"),
    ("SELECT SUM(length(sex)) FROM patients", errors.QueryRejected, "cannot be bounded"),
    ("SELECT STDDEV(sex) FROM patients", errors.QueryRejected, "needs a numeric value"),
    # derived group keys: every column read needs a domain; the key space stays bounded
    (
        "SELECT bmi // 5 AS b, COUNT(*) FROM patients GROUP BY b",
        errors.QueryRejected,
        "patients.bmi (read by bmi // 5)",
    ),
    ("SELECT COUNT(*) FROM visits GROUP BY cost > 100", errors.QueryRejected, "visits.cost"),
    (
        "SELECT COUNT(*) FROM patients GROUP BY patient_id % 10",
        errors.QueryRejected,
        "privacy unit",
    ),
    (
        "SELECT COUNT(*) FROM visits GROUP BY visit_date, visit_date + 1",
        errors.QueryRejected,
        "cells",
    ),
    ("SELECT COUNT(*) FROM patients GROUP BY 1", errors.QueryRejected, "groups on an aggregate"),
    (
        "SELECT COUNT(*) FROM visits v JOIN labs l ON v.visit_date = l.taken_at",
        errors.QueryRejected,
        "joins must be on the privacy unit alone",
    ),
    ("SELECT COUNT(*) FROM visits CROSS JOIN labs", errors.QueryRejected, "CROSS JOIN"),
    ("SELECT COUNT(*) FROM visits, labs", errors.QueryRejected, "a join without ON"),
    (
        "SELECT COUNT(*) FROM patients p RIGHT JOIN labs l ON p.patient_id = l.patient_id",
        errors.QueryRejected,
        "RIGHT JOIN is not supported",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT patient_id, COUNT(*) AS n FROM visits GROUP BY patient_id) s",
        errors.QueryRejected,
        "aggregation (GROUP BY) inside subquery s",
    ),
    (
        "WITH top AS (SELECT patient_id FROM visits ORDER BY cost DESC LIMIT 10) "
        "SELECT COUNT(*) FROM top",
        errors.QueryRejected,
        "LIMIT inside CTE top",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM labs l WHERE l.value > v.cost)",
        errors.QueryRejected,
        "semi-join on the privacy unit",
    ),
    (
        "SELECT COUNT(*) FROM visits WHERE cost IN (SELECT value FROM labs)",
        errors.QueryRejected,
        "must test the privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM (SELECT DISTINCT test FROM labs) t",
        errors.QueryRejected,
        "must keep the privacy unit column",
    ),
    (
        "SELECT COUNT(*) FROM visits v WHERE EXISTS (SELECT 1 FROM staff_notes s "
        "WHERE s.patient_id = v.patient_id)",
        errors.UnknownObject,
        "staff_notes",
    ),
    (
        "WITH c AS (SELECT patient_id, zip FROM patients) SELECT COUNT(*) FROM c",
        errors.UnknownObject,
        "patients.zip is not shared",
    ),
    (
        "SELECT l.patient_id, COUNT(*) FROM patients p LEFT JOIN labs l "
        "ON l.patient_id = p.patient_id GROUP BY l.patient_id",
        errors.QueryRejected,
        "privacy unit column",
    ),
    # the per-clinic pseudo-column is only a grouping key
    ("SELECT COUNT(*) FROM patients WHERE silo = 'seoul'", errors.QueryRejected, "only a grouping"),
    (
        "SELECT SUM(CASE WHEN silo = 'seoul' THEN age END) FROM patients",
        errors.QueryRejected,
        "silo",
    ),
    ("SELECT silo, AVG(bmi) FROM patients", errors.QueryRejected, "add GROUP BY silo"),
]


def _executed(fed: DemoFederation) -> int:
    return sum(agent.stats.executed for agent in fed.silos.values())


def test_the_rejection_table_covers_at_least_forty_queries() -> None:
    assert len(REJECTED) >= 40
    assert len({sql for sql, _, _ in REJECTED}) == len(REJECTED)


@pytest.mark.parametrize(("sql", "error", "fragment"), REJECTED, ids=[r[0][:50] for r in REJECTED])
def test_rejected_before_any_silo_runs_sql(
    oracle_federation: DemoFederation, sql: str, error: type[Exception], fragment: str
) -> None:
    before = _executed(oracle_federation)
    spent = {s: a.ledger.spent("rejections") for s, a in oracle_federation.silos.items()}
    with (
        fedsql.connect(oracle_federation.target, analyst="rejections") as conn,
        pytest.raises(error) as info,
    ):
        conn.cursor().execute(sql)
    assert fragment.lower() in str(info.value).lower()
    assert _executed(oracle_federation) == before
    assert {s: a.ledger.spent("rejections") for s, a in oracle_federation.silos.items()} == spent


def test_epsilon_above_a_clinics_cap_is_refused_up_front(
    oracle_federation: DemoFederation,
) -> None:
    before = _executed(oracle_federation)
    with (
        fedsql.connect(oracle_federation.target, analyst="rejections") as conn,
        pytest.raises(errors.QueryRejected, match="cap"),
    ):
        conn.cursor().execute("SELECT COUNT(*) FROM patients", epsilon=5.0)
    assert _executed(oracle_federation) == before


def test_silos_not_in_test_mode_refuse_noise_off_queries(demo_data: object) -> None:
    with DemoFederation(noise=False, testing=True) as fed:
        for agent in fed.silos.values():
            agent.testing = False
        with (
            fedsql.connect(fed.target) as conn,
            pytest.raises(errors.QuorumNotMet, match="noise-off"),
        ):
            conn.cursor().execute("SELECT COUNT(*) FROM patients")
        assert _executed(fed) == 0
