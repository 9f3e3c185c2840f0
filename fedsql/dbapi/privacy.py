"""The privacy report of a query: its cost, the precision of each value, who answered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from fedsql.errors import ProgrammingError
from fedsql.transport.messages import ExecuteReply, SiloStatus

#: Suffixes of the per-cell statistics columns the hub sends beside each released value.
SIGMA, LOWER, UPPER = "__sigma", "__lo", "__hi"
#: The statistics column that marks a suppressed cell (noisy count under the minimum group size).
SUPPRESSED = "__suppressed"
#: The confidence level of the intervals.
LEVEL = 0.95


@dataclass(frozen=True)
class PrivacyReport:
    """What a query cost and how precise its answer is.

    ``epsilon`` is what each answering clinic charged (an exact decimal string, at ``delta``);
    :meth:`budget_left` is what the analyst has left there. ``stats`` has one row per result row:
    for each released column ``<col>__sigma`` (noise standard deviation), ``<col>__lo`` and
    ``<col>__hi`` (95% interval), and ``__suppressed``; :meth:`sigma`, :meth:`interval` and
    :meth:`suppressed` read it by column.
    """

    epsilon: str
    delta: float
    rho: float | None
    noise: bool
    min_group_size: int
    silos: tuple[SiloStatus, ...]
    stats: pa.Table
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_reply(cls, reply: ExecuteReply, stats: pa.Table) -> PrivacyReport:
        """Build the report from the hub's reply and its decoded statistics table."""
        report = json.loads(reply.report_json)
        rho = report.get("rho")
        return cls(
            epsilon=reply.epsilon_spent,
            delta=float(report["delta"]),
            rho=None if rho is None else float(rho),
            noise=bool(report["noise"]),
            min_group_size=int(report["min_group_size"]),
            silos=tuple(reply.silos),
            stats=stats,
            details=report,
        )

    @property
    def epsilon_spent(self) -> float:
        """``epsilon`` as a number."""
        return float(self.epsilon)

    def budget_left(self) -> dict[str, str]:
        """Epsilon the analyst has left at each clinic that reported it (exact decimal strings)."""
        return {s.silo_id: s.budget_remaining for s in self.silos if s.budget_remaining}

    def answered(self) -> list[str]:
        """Clinics whose data is in the answer."""
        return [s.silo_id for s in self.silos if s.status == "answered"]

    def refused(self) -> dict[str, str]:
        """Clinics that declined the query, each with its reason."""
        return {s.silo_id: s.reason for s in self.silos if s.status == "refused"}

    def dropped(self) -> dict[str, str]:
        """Clinics that accepted but did not finish (disconnected or too slow), with the reason."""
        return {s.silo_id: s.reason for s in self.silos if s.status == "dropped"}

    @property
    def noisy_columns(self) -> list[str]:
        """The result columns that carry noise (and so a standard deviation and an interval)."""
        return [n[: -len(SIGMA)] for n in self.stats.column_names if n.endswith(SIGMA)]

    def _column(self, column: str, suffix: str) -> list[float | None]:
        name = column + suffix
        if name not in self.stats.column_names:
            noisy = ", ".join(self.noisy_columns) or "none"
            raise ProgrammingError(
                f"column {column!r} carries no noise statistics; noisy columns: {noisy}"
            )
        return [None if v is None else float(v) for v in self.stats.column(name).to_pylist()]

    def sigma(self, column: str) -> list[float | None]:
        """The noise standard deviation of ``column`` in each result row.

        Raises:
            ProgrammingError: The column is not a noisy released value (a group key, say).
        """
        return self._column(column, SIGMA)

    def interval(self, column: str) -> list[tuple[float, float] | None]:
        """The 95% interval of ``column`` in each result row (None where it is undefined).

        Raises:
            ProgrammingError: The column is not a noisy released value.
        """
        lows, highs = self._column(column, LOWER), self._column(column, UPPER)
        return [
            None if lo is None or hi is None else (lo, hi)
            for lo, hi in zip(lows, highs, strict=True)
        ]

    def suppressed(self) -> list[bool]:
        """Whether each result row's values were suppressed (noisy count under the minimum)."""
        if SUPPRESSED not in self.stats.column_names:
            return [False] * self.stats.num_rows
        return [bool(v) for v in self.stats.column(SUPPRESSED).to_pylist()]

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (without the per-cell statistics)."""
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "rho": self.rho,
            "noise": self.noise,
            "min_group_size": self.min_group_size,
            "silos": [
                {
                    "silo": s.silo_id,
                    "status": s.status,
                    "reason": s.reason,
                    "budget_remaining": s.budget_remaining,
                }
                for s in self.silos
            ],
        }
