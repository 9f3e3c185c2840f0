"""Noisy per-cell totals to the analyst's answer: suppression, finalize SQL in DuckDB, intervals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fedsql.privacy.accuracy import Z95
from fedsql.sql.key_domains import ARROW_TYPES
from fedsql.sql.plan import CELL_COLUMN, PARTIALS_TABLE, FederatedPlan

#: Suffixes of the per-column statistics that travel beside the result.
SIGMA, LOWER, UPPER = "__sigma", "__lo", "__hi"
SUPPRESSED = "__suppressed"


@dataclass(frozen=True)
class Finalized:
    """The answer and, row for row, its noise statistics."""

    result: pa.Table
    stats: pa.Table
    suppressed_cells: int


def partials_table(plan: FederatedPlan, values: np.ndarray, suppressed: np.ndarray) -> pa.Table:
    """Build ``partials(__cell, keys..., measures...)``; suppressed cells carry NULL measures.

    Args:
        plan: The query plan.
        values: Decoded noisy totals, cell-major, ``plan.dimension`` long.
        suppressed: Boolean per cell.
    """
    cells, n_measures = plan.cells, len(plan.measures)
    matrix = values.reshape(cells, n_measures)
    columns: dict[str, pa.Array] = {CELL_COLUMN: pa.array(np.arange(cells, dtype=np.int64))}
    stride = cells
    for key in plan.keys:
        size = len(key.values)
        stride //= size
        idx = (np.arange(cells) // stride) % size
        domain = pa.array(list(key.values), type=ARROW_TYPES.get(key.sql_type))
        columns[key.name] = domain.take(pa.array(idx))
    mask = np.asarray(suppressed, dtype=bool)
    for j, m in enumerate(plan.measures):
        columns[m.name] = pa.array(matrix[:, j].astype(np.float64), mask=mask)
    return pa.table(columns)


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as float64 with NaN for NULL."""
    as_float = pc.cast(column, pa.float64())
    return np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)


def _run(conn: duckdb.DuckDBPyConnection, sql: str, table: pa.Table) -> pa.Table:
    conn.register(PARTIALS_TABLE, table)
    try:
        out: pa.Table = conn.sql(sql).to_arrow_table()
    finally:
        conn.unregister(PARTIALS_TABLE)
    return out


def _output_sigmas(
    conn: duckdb.DuckDBPyConnection,
    plan: FederatedPlan,
    base: pa.Table,
    sigmas: Sequence[float],
) -> dict[str, np.ndarray]:
    """Standard deviation of every released output column, per cell.

    A COUNT or SUM output is one measure's total, so its noise is that measure's. Any other output
    (AVG, arithmetic) gets the delta method: the projection is evaluated, in one DuckDB run, at
    central differences of one noise standard deviation along each measure it depends on, and the
    gradient times each measure's noise gives the output's (first order).
    """
    cells = plan.cells
    index = {m.name: j for j, m in enumerate(plan.measures)}
    out: dict[str, np.ndarray] = {}
    derived = []
    for o in plan.outputs:
        if o.kind == "key":
            continue
        if o.kind in ("count", "sum") and len(o.measures) == 1:
            out[o.name] = np.full(cells, float(sigmas[index[o.measures[0]]]))
        else:
            derived.append(o)
    if not derived:
        return out
    moves = [
        (m.name, sign * sigmas[j])
        for j, m in enumerate(plan.measures)
        if sigmas[j] > 0 and any(m.name in o.measures for o in derived)
        for sign in (1.0, -1.0)
    ]
    for o in derived:
        out[o.name] = np.zeros(cells)
    if not moves:
        return out
    copies = []
    cell = base.column(CELL_COLUMN)
    for copy, (name, step) in enumerate(moves):
        table = base.set_column(
            base.schema.get_field_index(CELL_COLUMN),
            CELL_COLUMN,
            pc.add(cell, pa.scalar(copy * cells, pa.int64())),
        )
        pos = table.schema.get_field_index(name)
        table = table.set_column(pos, name, pc.add(table.column(name), pa.scalar(step)))
        copies.append(table)
    moved = _run(conn, plan.projection_sql, pa.concat_tables(copies))
    order = np.argsort(moved.column(CELL_COLUMN).to_numpy())
    variance = {o.name: np.zeros(cells) for o in derived}
    for o in derived:
        values = _floats(moved.column(o.name))[order].reshape(len(moves), cells)
        for pair in range(0, len(moves), 2):
            name, step = moves[pair]
            if name not in o.measures:
                continue
            with np.errstate(invalid="ignore"):  # inf - inf in cells released as NULL
                grad = (values[pair] - values[pair + 1]) / (2 * step)
            variance[o.name] += (grad * step) ** 2
        out[o.name] = np.sqrt(variance[o.name])
    return out


#: Rows of the typical cell at which ``explain`` states each output's expected margin.
REFERENCE_ROWS = 1000


def reference_sigmas(
    engine: duckdb.DuckDBPyConnection,
    plan: FederatedPlan,
    sigmas: Sequence[float],
    rows: int = REFERENCE_ROWS,
) -> dict[str, float]:
    """Each output's noise standard deviation at a typical cell of ``rows`` rows.

    The typical cell holds, for every measure, ``rows`` times the value one typical row adds
    (``Measure.typical``: 1 for counts, the middle of the clamp interval for sums); derived
    outputs get their sigma from the same delta method as released answers.

    Args:
        engine: A finalize DuckDB (see :func:`finalize_engine`); a cursor is used.
        plan: The query plan.
        sigmas: Noise standard deviation of each measure's totals, value units.
        rows: Rows in the typical cell.

    Returns:
        Output name -> sigma, for every non-key output.
    """
    one = replace(plan, keys=tuple(replace(k, values=k.values[:1]) for k in plan.keys))
    values = np.array([rows * m.typical for m in plan.measures], dtype=np.float64)
    base = partials_table(one, values, np.zeros(1, dtype=bool))
    cursor = engine.cursor()
    try:
        found = _output_sigmas(cursor, one, base, sigmas)
    finally:
        cursor.close()
    return {name: float(value[0]) for name, value in found.items()}


def finalize_engine() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB for finalize SQL: no file or network access, one per hub."""
    return duckdb.connect(config={"enable_external_access": False, "threads": 1})


def finalize(
    engine: duckdb.DuckDBPyConnection,
    plan: FederatedPlan,
    values: np.ndarray,
    sigmas: Sequence[float],
    min_group_size: int,
) -> Finalized:
    """Run the plan's finalize SQL over noisy totals and attach a 95% interval to every value.

    Cells whose noisy count is below ``min_group_size`` are released as NULL and flagged;
    this is post-processing of a noisy value and costs no privacy.

    Args:
        engine: The hub's finalize DuckDB (see :func:`finalize_engine`); a cursor is used.
        plan: The query plan.
        values: Decoded noisy totals (``plan.dimension`` floats, cell-major).
        sigmas: Noise standard deviation of each measure's totals, value units.
        min_group_size: The largest minimum group size of the participating clinics.

    Returns:
        The result table and its statistics.
    """
    n_measures = len(plan.measures)
    count_j = [m.name for m in plan.measures].index(plan.count_measure)
    counts = values.reshape(plan.cells, n_measures)[:, count_j]
    suppressed = counts < min_group_size
    base = partials_table(plan, values, suppressed)
    cursor = engine.cursor()
    try:
        result = _run(cursor, plan.finalize_sql, base)
        sigma_by_output = _output_sigmas(cursor, plan, base, sigmas)
    finally:
        cursor.close()
    cells = result.column(CELL_COLUMN).to_numpy()
    stats: dict[str, pa.Array] = {CELL_COLUMN: pa.array(cells)}
    for out in plan.outputs:
        if out.kind == "key":
            continue
        sigma = sigma_by_output[out.name][cells]
        value = _floats(result.column(out.name))
        null = ~np.isfinite(value)
        with np.errstate(invalid="ignore"):  # cells masked as NULL may hold inf - inf
            lower, upper = value - Z95 * sigma, value + Z95 * sigma
        stats[out.name + SIGMA] = pa.array(sigma, mask=null)
        stats[out.name + LOWER] = pa.array(lower, mask=null)
        stats[out.name + UPPER] = pa.array(upper, mask=null)
    stats[SUPPRESSED] = pa.array(suppressed[cells])
    keep = [c for c in result.column_names if c != CELL_COLUMN]
    return Finalized(
        result=result.select(keep),
        stats=pa.table(stats),
        suppressed_cells=int(suppressed.sum()),
    )
