"""Budget inquiries: each silo's report is matched to its question; silent silos time out."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fedsql.hub.budget_inquiry import BudgetInquiries
from fedsql.transport.messages import BudgetQuery, BudgetReport, HubToSilo


@dataclass
class Channel:
    """A silo's stream as the hub sees it; this one answers through ``answer`` (or stays silent)."""

    silo_id: str
    inquiries: BudgetInquiries
    answer: str | None = "1.5"
    sent: list[HubToSilo] = field(default_factory=list)

    def send(self, msg: HubToSilo) -> None:
        self.sent.append(msg)
        if self.answer is None or not isinstance(msg, BudgetQuery):
            return
        report = BudgetReport(
            request_id=msg.request_id,
            silo_id=self.silo_id,
            analyst=msg.analyst,
            spent=self.answer,
            budget="10",
            left="8.5",
            queries=3,
        )
        threading.Thread(target=self.inquiries.report, args=(self.silo_id, report)).start()

    def close(self) -> None:
        pass


def test_every_answering_silo_is_reported_and_a_silent_one_is_not() -> None:
    inquiries = BudgetInquiries(timeout_s=0.3)
    channels = [
        Channel("b", inquiries),
        Channel("a", inquiries),
        Channel("c", inquiries, answer=None),
    ]
    clinics = inquiries.ask("ana", ((c.silo_id, c) for c in channels))
    assert [(c.silo_id, c.reported, c.spent, c.left, c.queries) for c in clinics] == [
        ("a", True, "1.5", "8.5", 3),
        ("b", True, "1.5", "8.5", 3),
        ("c", False, "", "", 0),
    ]
    assert all(isinstance(c.sent[0], BudgetQuery) for c in channels)


def test_reports_for_another_question_silo_or_analyst_are_ignored() -> None:
    inquiries = BudgetInquiries(timeout_s=0.3)
    silent = Channel("a", inquiries, answer=None)
    result: list[object] = []
    asker = threading.Thread(target=lambda: result.extend(inquiries.ask("ana", [("a", silent)])))
    asker.start()
    while not silent.sent:
        pass
    query = silent.sent[0]
    assert isinstance(query, BudgetQuery)

    def report(**changes: object) -> BudgetReport:
        fields: dict[str, object] = {
            "request_id": query.request_id,
            "silo_id": "a",
            "analyst": "ana",
            "spent": "9",
            "budget": "10",
            "left": "1",
        }
        fields.update(changes)
        return BudgetReport(**fields)  # type: ignore[arg-type]

    inquiries.report("a", report(request_id=b"\0" * 16))  # another question
    inquiries.report("a", report(analyst="bob"))  # another analyst's figures
    inquiries.report("b", report(silo_id="b"))  # a silo that was not asked
    inquiries.report("a", report(silo_id="b"))  # a silo speaking for another
    asker.join()
    assert [c.reported for c in result] == [False]  # type: ignore[attr-defined]
