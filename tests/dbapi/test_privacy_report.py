"""cursor.privacy: epsilon spent and left, per-cell sigma and interval, who answered; progress."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pyarrow as pa
import pytest

import fedsql
from fedsql.dbapi.privacy import PrivacyReport
from fedsql.demo.federation import DemoFederation
from fedsql.transport.messages import SiloStatus
from tests.dbapi.conftest import BY_SEX

ORDER = {"waiting": 0, "running": 1, "uploaded": 2, "answered": 3}


@pytest.fixture(scope="module")
def seoul_denies(demo_data: object) -> Iterator[DemoFederation]:
    """A noise-off federation in which Seoul refuses every query."""
    with DemoFederation(noise=False, testing=True, policy_overrides={"min_group_size": 1}) as fed:
        seoul = fed.silos["seoul"]
        seoul.policy = dataclasses.replace(seoul.policy, approval="deny")
        yield fed


def test_noisy_answer_reports_cost_sigma_and_intervals(noisy_federation: DemoFederation) -> None:
    with fedsql.connect(noisy_federation.target, analyst="report") as conn:
        cur = conn.cursor()
        cur.execute(BY_SEX, epsilon=0.5)
        first = cur.privacy
        rows = cur.fetchall()
        cur.execute(BY_SEX, epsilon=0.25)
        second = cur.privacy
    assert first is not None and second is not None
    assert first.noise and first.epsilon == "0.5" and first.epsilon_spent == 0.5
    assert first.delta == 1e-6 and first.rho is not None and first.rho > 0
    for silo, left in first.budget_left().items():
        assert Decimal(left) - Decimal(second.budget_left()[silo]) == Decimal("0.25")
    assert first.noisy_columns == ["n", "bmi"]
    assert sorted(first.answered()) == ["mumbai", "san-francisco", "seoul", "sydney"]
    assert first.refused() == {} and first.dropped() == {}
    assert first.suppressed() == [False, False]
    n_sigma = first.sigma("n")
    assert n_sigma[0] == n_sigma[1] and n_sigma[0] is not None and n_sigma[0] > 1
    for (_, n, bmi), n_int, bmi_int, bmi_sigma in zip(
        rows, first.interval("n"), first.interval("bmi"), first.sigma("bmi"), strict=True
    ):
        assert n_int is not None and bmi_int is not None and bmi_sigma is not None
        assert n_int[0] < n < n_int[1]
        assert n_int[1] - n_int[0] == pytest.approx(2 * 1.959964 * n_sigma[0], rel=1e-4)
        assert bmi_int[0] < bmi < bmi_int[1]
        assert 0 < bmi_sigma < 0.1
    # Half the epsilon, more noise.
    assert second.sigma("n")[0] > 1.5 * n_sigma[0]  # type: ignore[operator]
    with pytest.raises(fedsql.ProgrammingError, match="noisy columns: n, bmi"):
        first.sigma("sex")


def test_progress_follows_each_clinic_to_its_answer(oracle_federation: DemoFederation) -> None:
    events: list[tuple[SiloStatus, ...]] = []
    with fedsql.connect(oracle_federation.target, analyst="progress") as conn:
        cur = conn.cursor().execute(BY_SEX, on_progress=events.append)
        assert cur.privacy is not None
        final = cur.privacy.silos
        rows = cur.fetchall()
        assert rows == conn.cursor().execute(BY_SEX).fetchall()
    assert events, "no progress was reported"
    silos = ["mumbai", "san-francisco", "seoul", "sydney"]
    assert [s.silo_id for s in events[0]] == silos
    assert {s.status for s in events[0]} == {"waiting"}
    seen: dict[str, int] = {}
    for event in events:
        assert [s.silo_id for s in event] == silos
        for s in event:
            assert s.status in ORDER, s.status
            assert ORDER[s.status] >= seen.get(s.silo_id, 0), "a status went backwards"
            seen[s.silo_id] = ORDER[s.status]
    assert any(s.status == "running" for e in events for s in e)
    assert [s.status for s in final] == ["answered"] * 4


def test_a_refusing_clinic_is_named_with_its_reason(seoul_denies: DemoFederation) -> None:
    events: list[tuple[SiloStatus, ...]] = []
    with fedsql.connect(seoul_denies.target, analyst="refusal") as conn:
        cur = conn.cursor().execute(BY_SEX, on_progress=events.append)
    report = cur.privacy
    assert report is not None
    assert list(report.refused()) == ["seoul"]
    assert "refuses all queries" in report.refused()["seoul"]
    assert sorted(report.answered()) == ["mumbai", "san-francisco", "sydney"]
    assert any(s.silo_id == "seoul" and s.status == "refused" for e in events for s in e)


def test_progress_of_a_rejected_query_raises_before_any_event(
    oracle_federation: DemoFederation,
) -> None:
    events: list[tuple[SiloStatus, ...]] = []
    with fedsql.connect(oracle_federation.target) as conn, pytest.raises(fedsql.NotSupportedError):
        conn.cursor().execute("DROP TABLE patients", on_progress=events.append)
    assert events == []


def test_an_exception_in_the_progress_callback_cancels_the_wait(
    oracle_federation: DemoFederation,
) -> None:
    class Stop(Exception):
        pass

    def stop(_: tuple[SiloStatus, ...]) -> None:
        raise Stop

    with fedsql.connect(oracle_federation.target) as conn:
        cur = conn.cursor()
        with pytest.raises(Stop):
            cur.execute(BY_SEX, on_progress=stop)
        assert cur.description is None
        assert cur.execute(BY_SEX).rowcount == 2


def test_report_of_dropped_and_suppressed_cells() -> None:
    stats = pa.table(
        {
            "n__sigma": [2.0, 2.0],
            "n__lo": [1.0, None],
            "n__hi": [9.0, None],
            "__suppressed": [False, True],
        }
    )
    report = PrivacyReport(
        epsilon="1",
        delta=1e-6,
        rho=0.02,
        noise=True,
        min_group_size=20,
        silos=(
            SiloStatus("a", "answered", budget_remaining="4"),
            SiloStatus("b", "dropped", "the silo disconnected"),
            SiloStatus("c", "refused", "budget exhausted", "0"),
        ),
        stats=stats,
    )
    assert report.dropped() == {"b": "the silo disconnected"}
    assert report.refused() == {"c": "budget exhausted"}
    assert report.budget_left() == {"a": "4", "c": "0"}
    assert report.interval("n") == [(1.0, 9.0), None]
    assert report.suppressed() == [False, True]
    assert report.to_dict()["silos"][1] == {
        "silo": "b",
        "status": "dropped",
        "reason": "the silo disconnected",
        "budget_remaining": "",
    }
