"""Accuracy at epsilon 1: fedsql's released values against one central Gaussian mechanism.

For each example query of both example federations (the demo queries of the README and
examples/, and the OMOP research queries of examples/omop/queries that the planner accepts), the
query runs repeatedly through the embedded federation with noise on: hub and silos over gRPC on
loopback, each silo adding its discrete Gaussian share sized for the contract's worst case of
m_min honest survivors, secure aggregation (which removes the extra part of the shares when
every clinic answers, leaving noise sized for m_all = n - c_max), finalize SQL. Every released
value is compared with the noise-off truth (the exact totals of every clinic, finalized by the
same SQL).

The reference is a single central Gaussian mechanism calibrated to the same total sensitivity
and the same (epsilon, delta): the same measures and sensitivities, the same split of the
query's rho across them, continuous Gaussian noise of sd Delta_j / sqrt(2 rho_j) added once to
the exact totals, then the same finalize SQL. The ratio of median relative errors is the price
of distributing the noise (n base shares, each sized for m_all honest silos: sqrt(n / m_all)
when every clinic answers, as here) and of fixed-point encoding. Target: at most 1.2 for every
query.

The ratio compared with the target is, for each released value (an output column of one
cell), the ratio of the two mechanisms' root-mean-square errors over the repetitions, and for the
query the median of those ratios over its released values. Released counts are whole numbers, so
with little noise a median error is a whole number of units and a ratio of median errors is
coarse (4/3 and the like); root-mean-square errors are not, and taking them per value keeps the
heavy tails of relative errors in tiny cells out of the comparison. The table shows the ratio of
median relative errors beside it. Queries that release few values are repeated more often (up to
five times ``--reps``) so that every ratio rests on about ``10 * reps`` released values, and a 95%
bootstrap interval (resampling the federated runs) shows how precise each ratio is. The expected
ratio is sqrt(n / m_all) from the contract's [secagg] parameters.

    python bench/accuracy.py                 # full run: 300 repetitions per query
    python bench/accuracy.py --quick         # 20 repetitions (about a minute)
    python bench/accuracy.py --smoke         # 3 repetitions, for CI
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

import fedsql
from fedsql.catalog import Contract
from fedsql.config import load_contract
from fedsql.demo.datasets import dataset
from fedsql.demo.example_queries import load_queries
from fedsql.demo.federation import DemoFederation
from fedsql.demo.omop import omop_files
from fedsql.errors import Error
from fedsql.hub.finalize import partials_table
from fedsql.privacy.calibrate import plan_noise
from fedsql.query_terms import measure_specs
from fedsql.silo.vector import dense_vector
from fedsql.sql import CELL_COLUMN, PARTIALS_TABLE, SALT_PARAM, FederatedPlan, plan_query

TARGET_RATIO = 1.2
EPSILON = 1.0
#: Suppression off: the federation then NULLs only cells whose noisy count is negative, and the
#: central reference gets the same post-processing.
MIN_GROUP_SIZE = 0
#: The demo queries of the README and examples/ (quickstart, notebook, latency benchmark).
DEMO_QUERIES: tuple[tuple[str, str, tuple[object, ...]], ...] = (
    ("count", "SELECT COUNT(*) FROM patients", ()),
    (
        "readme_bmi_by_sex",
        "SELECT sex, COUNT(*) AS patients, AVG(bmi) AS bmi FROM patients WHERE age >= 40 "
        "GROUP BY sex",
        (),
    ),
    ("bmi_by_sex_param", "SELECT sex, AVG(bmi) FROM patients WHERE age >= ? GROUP BY sex", (40,)),
    ("diabetics_by_age", "SELECT age, COUNT(*) FROM patients WHERE diabetic GROUP BY age", ()),
    ("patients_by_age", "SELECT age, COUNT(*) FROM patients GROUP BY age", ()),
    ("labs_by_test", "SELECT test, AVG(value), COUNT(*) FROM labs GROUP BY test ORDER BY 1", ()),
    ("lab_counts", "SELECT test, COUNT(*) AS n FROM labs GROUP BY test", ()),
    (
        "visit_cost",
        "SELECT SUM(cost), AVG(cost) FROM visits WHERE visit_date >= DATE '2023-01-01'",
        (),
    ),
    (
        "quickstart_patients",
        "SELECT sex, COUNT(*) AS patients FROM patients WHERE age >= ? GROUP BY sex",
        (50,),
    ),
    (
        "quickstart_cases",
        "SELECT sex, COUNT(*) AS cases FROM patients WHERE age >= ? AND diabetic GROUP BY sex",
        (50,),
    ),
)


@dataclass(frozen=True)
class Case:
    """One query of one federation, planned."""

    federation: str
    name: str
    sql: str
    params: tuple[object, ...]
    plan: FederatedPlan


@dataclass(frozen=True)
class Outcome:
    """Measured errors of one query."""

    case: Case
    reps: int
    fedsql_error: float
    central_error: float
    ratio: float
    ratio_low: float
    ratio_high: float
    median_ratio: float
    expected: float


def exact_totals(plan: FederatedPlan, files: dict[str, Path]) -> np.ndarray:
    """The noise-free totals: every clinic's partial vector (as its silo computes it), summed.

    The uncapped partial SQL is what a silo runs when no unit exceeds the row cap, which the
    generators guarantee; clamping to the contract's bounds is part of the SQL. A plan without
    an uncapped form runs capped with a fixed salt (the rows a silo keeps with that salt).
    """
    total = np.zeros(plan.dimension)
    sql = plan.partial_sql_uncapped or plan.partial_sql
    params = {SALT_PARAM: 0} if f"${SALT_PARAM}" in sql else {}
    for path in files.values():
        con = duckdb.connect(str(path), read_only=True)
        try:
            cur = con.execute(sql, params)
            names = [str(d[0]) for d in cur.description or ()]
            total += dense_vector(plan, names, cur.fetchall())
        finally:
            con.close()
    return total


def project(
    plan: FederatedPlan, values: np.ndarray, min_group_size: float | None = None
) -> dict[str, np.ndarray]:
    """Every output column of every cell for each row of ``values`` (reps x dimension).

    With ``min_group_size``, cells whose (noisy) count is below it are NULL, as the hub's
    finalize makes them (with suppression off, the federation's minimum is 0, so cells with a
    negative noisy count).

    Returns output name -> (reps x cells) array (NaN for NULL); key outputs are left out.
    """
    reps = values.shape[0]
    count_j = [m.name for m in plan.measures].index(plan.count_measure)
    tables = []
    for r in range(reps):
        counts = values[r].reshape(plan.cells, len(plan.measures))[:, count_j]
        suppressed = (
            np.zeros(plan.cells, dtype=bool) if min_group_size is None else counts < min_group_size
        )
        table = partials_table(plan, values[r], suppressed)
        shifted = pa.array(np.arange(plan.cells, dtype=np.int64) + r * plan.cells)
        tables.append(table.set_column(0, CELL_COLUMN, shifted))
    con = duckdb.connect()
    try:
        con.register(PARTIALS_TABLE, pa.concat_tables(tables))
        out = con.sql(plan.projection_sql).to_arrow_table()
    finally:
        con.close()
    order = np.argsort(out.column(CELL_COLUMN).to_numpy())
    result = {}
    for o in plan.outputs:
        if o.kind == "key":
            continue
        column = out.column(o.name).cast(pa.float64()).to_numpy(zero_copy_only=False)
        result[o.name] = np.asarray(column, dtype=np.float64)[order].reshape(reps, plan.cells)
    return result


def key_cells(plan: FederatedPlan, totals: np.ndarray) -> dict[tuple[object, ...], int]:
    """Map from the key outputs of a result row to its cell."""
    table = partials_table(plan, totals, np.zeros(plan.cells, dtype=bool))
    con = duckdb.connect()
    try:
        con.register(PARTIALS_TABLE, table)
        out = con.sql(plan.projection_sql).fetchall()
        names = [d[0] for d in con.sql(plan.projection_sql).description]
    finally:
        con.close()
    keys = [names.index(o.name) for o in plan.outputs if o.kind == "key"]
    cell = names.index(CELL_COLUMN)
    index = {tuple(row[k] for k in keys): int(row[cell]) for row in out}
    if len(index) != plan.cells:
        raise SystemExit(f"{plan.sql!r}: every key of the GROUP BY must be selected")
    return index


def relative_errors(truth: dict[str, np.ndarray], noisy: dict[str, np.ndarray]) -> np.ndarray:
    """|noisy - truth| / |truth| per repetition (rows), over the cells with a non-zero truth."""
    per_rep = []
    for name, exact in truth.items():
        ok = np.isfinite(exact[0]) & (exact[0] != 0)
        err = np.abs(noisy[name][:, ok] - exact[0, ok]) / np.abs(exact[0, ok])
        per_rep.append(err)
    return np.concatenate(per_rep, axis=1)


def central_errors(
    case: Case, contract: Contract, totals: np.ndarray, truth: dict[str, np.ndarray], reps: int
) -> np.ndarray:
    """Relative errors of one central Gaussian mechanism at the same sensitivity and rho."""
    noise = plan_noise(EPSILON, contract.delta, measure_specs(case.plan), 1)
    sigmas = np.array(
        [
            m.sensitivity / math.sqrt(2.0 * mn.rho)
            for m, mn in zip(case.plan.measures, noise.measures, strict=True)
        ]
    )
    per_coordinate = np.tile(sigmas, case.plan.cells)
    rng = np.random.default_rng(20_260_101)
    noisy = totals[None, :] + rng.standard_normal((reps, totals.size)) * per_coordinate
    return relative_errors(truth, project(case.plan, noisy, MIN_GROUP_SIZE))


def fedsql_errors(
    case: Case,
    cur: fedsql.Cursor,
    cells: dict[tuple[object, ...], int],
    truth: dict[str, np.ndarray],
    reps: int,
) -> np.ndarray:
    """Relative errors of the values the federation released, one row per repetition."""
    names = [o.name for o in case.plan.outputs]
    keys = [i for i, o in enumerate(case.plan.outputs) if o.kind == "key"]
    released = {n: np.full((reps, case.plan.cells), np.nan) for n in truth}
    for r in range(reps):
        cur.execute(case.sql, list(case.params) or None, epsilon=EPSILON)
        assert cur.description is not None
        if [d[0] for d in cur.description] != names:
            raise SystemExit(f"{case.name}: result columns differ from the plan's outputs")
        for row in cur.fetchall():
            cell = cells[tuple(row[k] for k in keys)]
            for i, name in enumerate(names):
                if name in released and row[i] is not None:
                    released[name][r, cell] = float(row[i])
    return relative_errors(truth, released)


def rms_ratio(fed: np.ndarray, central: np.ndarray) -> float:
    """Median over released values of the ratio of root-mean-square errors (reps x values)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        per_value = _rms_columns(fed) / _rms_columns(central)
    return float(np.nanmedian(per_value))


def rms_ratio_interval(
    fed: np.ndarray, central: np.ndarray, rng: np.random.Generator
) -> tuple[float, float]:
    """A 95% bootstrap interval of :func:`rms_ratio`, resampling the federation's repetitions."""
    ratios = []
    for _ in range(400):
        pick = rng.integers(0, fed.shape[0], fed.shape[0])
        ratios.append(rms_ratio(fed[pick], central))
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def reps_for(case: Case, truth: dict[str, np.ndarray], reps: int) -> int:
    """Repetitions for one query: about ``10 * reps`` released values, at most ``5 * reps`` runs."""
    values = sum(int((np.isfinite(t[0]) & (t[0] != 0)).sum()) for t in truth.values())
    return min(5 * reps, max(reps, math.ceil(10 * reps / max(values, 1))))


def _rms(errors: np.ndarray) -> float:
    return float(np.sqrt(np.nanmean(errors**2)))


def _rms_columns(errors: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a value NULL in every run
        return np.sqrt(np.nanmean(errors**2, axis=0))


def cases_of(name: str, contract: Contract) -> tuple[list[Case], list[tuple[str, str]]]:
    """The planned example queries of a federation, and those the planner rejects today."""
    visible = {t.name: t.column_names for t in contract.tables}
    if name == "demo":
        raw = list(DEMO_QUERIES)
    else:
        raw = [(q.name, q.sql, ()) for q in load_queries(omop_files() / "queries")]
    cases, skipped = [], []
    for qname, sql, params in raw:
        try:
            plan = plan_query(sql, list(params) or None, contract, visible)
        except Error as exc:
            skipped.append((qname, f"{type(exc).__name__}: {exc}"))
            continue
        cases.append(Case(name, qname, sql, params, plan))
    return cases, skipped


def measure(name: str, reps: int, central_reps: int) -> tuple[list[Outcome], list[tuple[str, str]]]:
    """Run every planned example query of one federation ``reps`` times."""
    example = dataset(name)
    files = example.ensure_data(None)
    contract = load_contract(example.files() / "contract.toml")
    cases, skipped = cases_of(name, contract)
    # The exact totals are read before the silos open the clinics' files.
    exact = {case.name: exact_totals(case.plan, files) for case in cases}
    rng = np.random.default_rng(7)
    overrides = {
        "budget_epsilon": 1_000_000.0,
        "min_group_size": MIN_GROUP_SIZE,
        "rate_limit": None,
    }
    outcomes = []
    with (
        tempfile.TemporaryDirectory() as state,
        DemoFederation(dataset=name, state_dir=state, policy_overrides=overrides) as fed,
        fedsql.connect(fed.target, analyst="accuracy") as conn,
    ):
        expected = math.sqrt(len(fed.silos) / contract.secagg.m_all(len(fed.silos)))
        cur = conn.cursor()
        for case in cases:
            totals = exact[case.name]
            truth = project(case.plan, totals[None, :])
            cells = key_cells(case.plan, totals)
            runs = reps_for(case, truth, reps)
            fed_err = fedsql_errors(case, cur, cells, truth, runs)
            central = central_errors(case, contract, totals, truth, max(central_reps, 10 * runs))
            low, high = rms_ratio_interval(fed_err, central, rng)
            median = float(np.nanmedian(fed_err)) / float(np.nanmedian(central))
            outcomes.append(
                Outcome(
                    case,
                    runs,
                    _rms(fed_err),
                    _rms(central),
                    rms_ratio(fed_err, central),
                    low,
                    high,
                    median,
                    expected,
                )
            )
    return outcomes, skipped


def print_table(outcomes: Sequence[Outcome]) -> None:
    """One line per query: errors, ratio with its 95% interval, expectation and target."""
    print(
        f"{'federation':<10} {'query':<44} {'cells':>5} {'runs':>5} {'fedsql':>9} {'central':>9} "
        f"{'ratio':>6} {'95% interval':>13} {'median ratio':>12} {'expected':>8} {'target':>7}"
    )
    for o in outcomes:
        print(
            f"{o.case.federation:<10} {o.case.name[:44]:<44} {o.case.plan.cells:>5} "
            f"{o.reps:>5} {o.fedsql_error:>9.3g} {o.central_error:>9.3g} {o.ratio:>6.3f} "
            f"{f'{o.ratio_low:.2f}-{o.ratio_high:.2f}':>13} {o.median_ratio:>12.3f} "
            f"{o.expected:>8.3f} {'<= ' + format(TARGET_RATIO, 'g'):>7}"
        )


def main() -> None:
    """Measure both federations and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=300, help="federated runs per query")
    parser.add_argument("--quick", action="store_true", help="20 runs per query")
    parser.add_argument("--smoke", action="store_true", help="3 runs per query, for CI")
    parser.add_argument(
        "--federation", choices=("demo", "omop", "both"), default="both", help="which to measure"
    )
    args = parser.parse_args()
    reps = 3 if args.smoke else 20 if args.quick else args.reps
    names = ("demo", "omop") if args.federation == "both" else (args.federation,)
    start = time.perf_counter()
    outcomes: list[Outcome] = []
    skipped: list[tuple[str, str]] = []
    for name in names:
        got, missed = measure(name, reps, central_reps=max(2000, 10 * reps))
        outcomes += got
        skipped += [(f"{name}/{q}", why) for q, why in missed]
    print(
        f"root-mean-square relative error at epsilon {EPSILON:g} of every released value over "
        f"{reps} or more repetitions, against one central Gaussian mechanism (same sensitivity, "
        "same rho)"
    )
    print_table(outcomes)
    for name, why in skipped:
        print(f"not planned yet: {name}: {why[:110]}")
    worst = max(outcomes, key=lambda o: o.ratio)
    met = sum(o.ratio <= TARGET_RATIO for o in outcomes)
    print(
        f"worst ratio {worst.ratio:.3f} ({worst.case.federation}/{worst.case.name}); "
        f"target <= {TARGET_RATIO:g} met by {met} of {len(outcomes)} queries "
        f"({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
