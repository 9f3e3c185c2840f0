"""Golden plans: the partial and finalize SQL of fixture queries match tests/sql/fixtures/plans.sql.

Run ``python -m tests.sql.test_golden_plans --regenerate`` from the repository root to rewrite the
expected SQL after an intended change, then review the diff.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from fedsql.sql import FederatedPlan, plan_query
from fedsql.sql.allowlist import AGGREGATES

from .testbed import CONTRACT, VISIBLE

FIXTURE = Path(__file__).parent / "fixtures" / "plans.sql"


@dataclass
class Case:
    """One golden case: its input and the expected plan SQL."""

    name: str
    sql: str
    params: list[object] | None = None
    partial: str = ""
    finalize: str = ""

    def plan(self) -> FederatedPlan:
        return plan_query(self.sql, self.params, CONTRACT, VISIBLE)


def _clean(lines: list[str]) -> str:
    text = "\n".join(lines).strip()
    return text[:-1].rstrip() if text.endswith(";") else text


def load_cases(path: Path = FIXTURE) -> tuple[list[str], list[Case]]:
    """The file's header comment lines and its cases."""
    header: list[str] = []
    cases: list[Case] = []
    section: list[str] = []
    target = "header"

    def flush() -> None:
        if target == "header":
            header.extend(section)
        elif target == "sql":
            cases[-1].sql = _clean(section)
        else:
            setattr(cases[-1], target, _clean(section))
        section.clear()

    for line in path.read_text().splitlines():
        if line.startswith("-- case:"):
            flush()
            cases.append(Case(name=line.removeprefix("-- case:").strip(), sql=""))
            target = "sql"
        elif line.startswith("-- params:") and target == "sql":
            cases[-1].params = json.loads(line.removeprefix("-- params:"))
        elif line.strip() in ("-- partial:", "-- finalize:"):
            flush()
            target = line.strip()[3:-1]
        else:
            section.append(line)
    flush()
    return header, cases


def render(header: list[str], cases: list[Case]) -> str:
    """The fixture file for ``cases`` with their current plans."""
    blocks = ["\n".join(header).rstrip()]
    for case in cases:
        plan = case.plan()
        lines = [f"-- case: {case.name}"]
        if case.params is not None:
            lines.append(f"-- params: {json.dumps(case.params)}")
        lines += [
            f"{case.sql};",
            "-- partial:",
            f"{plan.partial_sql};",
            "-- finalize:",
            f"{plan.finalize_sql};",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


HEADER, CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_sql_matches_golden(case: Case) -> None:
    plan = case.plan()
    assert case.partial, f"case {case.name} has no expected partial SQL; regenerate"
    assert plan.partial_sql == case.partial
    assert plan.finalize_sql == case.finalize


def _aggregate_kinds(plan: FederatedPlan) -> set[str]:
    """Which of COUNT(*), COUNT(col), SUM(col), AVG(col) the plan's outputs use."""
    kinds: set[str] = set()
    for output in plan.outputs:
        if output.kind == "avg":
            kinds.add("AVG(col)")
        for name in output.measures:
            expression = plan.measure(name).expression
            if expression == "COUNT(*)":
                kinds.add("COUNT(*)")
            elif output.kind != "avg":
                kinds.add(expression.split("(")[0] + "(col)")
    return kinds


def test_every_aggregate_kind_has_a_golden_case() -> None:
    covered = set().union(*(_aggregate_kinds(case.plan()) for case in CASES))
    assert covered == {"COUNT(*)", "COUNT(col)", "SUM(col)", "AVG(col)"}
    assert {o.kind for case in CASES for o in case.plan().outputs} == {
        "key",
        "count",
        "sum",
        "avg",
        "expr",
    }
    assert any(case.params for case in CASES)


def test_every_allowed_aggregate_and_key_form_has_a_golden_case() -> None:
    nodes = [node for case in CASES for node in sqlglot.parse_one(case.sql, read="duckdb").walk()]
    used = {type(node) for node in nodes}
    assert set(AGGREGATES) <= used, set(AGGREGATES) - used
    assert exp.Filter in used
    assert any(isinstance(n, exp.Count) and isinstance(n.this, exp.Distinct) for n in nodes)
    key_sources = {key.source for case in CASES for key in case.plan().keys}
    for form in ("CASE WHEN", " // ", "LEAST(", "YEAR(", "MONTH(", "DATE_TRUNC(", ">=", "||"):
        assert any(form in source for source in key_sources), form
    grouped = [
        sqlglot.parse_one(case.sql, read="duckdb").args["group"].expressions
        for case in CASES
        if "GROUP BY" in case.sql
    ]
    forms = {type(item) for items in grouped for item in items}
    assert exp.Literal in forms  # GROUP BY ordinal
    assert any(  # GROUP BY an output alias of an expression
        case.plan().keys and "AS band" in case.sql and "GROUP BY band" in case.sql for case in CASES
    )


def test_golden_file_round_trips() -> None:
    assert render(HEADER, CASES) == FIXTURE.read_text()


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python -m tests.sql.test_golden_plans --regenerate")
    FIXTURE.write_text(render(HEADER, CASES))
    print(f"rewrote {FIXTURE} ({len(CASES)} cases)")
