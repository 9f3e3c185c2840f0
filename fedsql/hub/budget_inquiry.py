"""An analyst's budget at every clinic: the hub asks each connected silo and gathers the answers.

The silos' ledgers are authoritative and the hub keeps no copy: for each inquiry it sends a
:class:`BudgetQuery` on every connected silo's stream and waits (briefly) for each
:class:`BudgetReport`. A clinic that does not answer in time is listed without figures.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from fedsql.transport.interfaces import SiloChannel
from fedsql.transport.messages import BudgetQuery, BudgetReport, ClinicBudget

#: How long an inquiry waits for the silos, in seconds.
INQUIRY_TIMEOUT_S = 3.0


@dataclass
class _Inquiry:
    analyst: str
    expected: frozenset[str]
    reports: dict[str, BudgetReport] = field(default_factory=dict)


class BudgetInquiries:
    """Budget inquiries in flight, matched to the silos' reports by request id."""

    def __init__(self, timeout_s: float = INQUIRY_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._open: dict[bytes, _Inquiry] = {}
        self._cond = threading.Condition()

    def ask(self, analyst: str, channels: Iterable[tuple[str, SiloChannel]]) -> list[ClinicBudget]:
        """Ask every silo for ``analyst``'s figures and wait for them (or the timeout).

        Args:
            analyst: Whose budget.
            channels: ``(silo_id, channel)`` of every connected silo.

        Returns:
            One entry per silo, sorted by silo id; ``reported`` is False for a silo that did not
            answer in time.
        """
        targets = dict(channels)
        request_id = secrets.token_bytes(16)
        inquiry = _Inquiry(analyst, frozenset(targets))
        with self._cond:
            self._open[request_id] = inquiry
        try:
            query = BudgetQuery(request_id=request_id, analyst=analyst)
            for channel in targets.values():
                channel.send(query)
            deadline = time.monotonic() + self.timeout_s
            with self._cond:
                while len(inquiry.reports) < len(inquiry.expected):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                reports = dict(inquiry.reports)
        finally:
            with self._cond:
                self._open.pop(request_id, None)
        return [_clinic(silo_id, reports.get(silo_id)) for silo_id in sorted(targets)]

    def report(self, silo_id: str, msg: BudgetReport) -> None:
        """A silo answered; reports for unknown requests, analysts or silos are dropped."""
        with self._cond:
            inquiry = self._open.get(msg.request_id)
            if (
                inquiry is None
                or silo_id not in inquiry.expected
                or msg.silo_id != silo_id
                or msg.analyst != inquiry.analyst
            ):
                return
            inquiry.reports.setdefault(silo_id, msg)
            self._cond.notify_all()


def _clinic(silo_id: str, report: BudgetReport | None) -> ClinicBudget:
    if report is None:
        return ClinicBudget(silo_id=silo_id)
    return ClinicBudget(
        silo_id=silo_id,
        reported=True,
        spent=report.spent,
        budget=report.budget,
        left=report.left,
        queries=report.queries,
    )
