"""Quantiles: MEDIAN and QUANTILE_CONT from a noisy histogram over the contract bounds.

A quantile of x never releases a row's value: each silo counts, per cell, the rows whose clamped
value of x falls in each of ``HISTOGRAM_BINS`` equal-width bins over x's interval [L, U] (the
contract bounds of a column, or the interval ``value_bounds`` derives for an expression). Bin j
is [L + j w, L + (j + 1) w) with w = (U - L) / HISTOGRAM_BINS; the last bin also holds U. The
bins of one argument form one measure group: a row falls in exactly one bin of one cell, so one
unit with at most k rows changes the whole histogram (all bins, all cells) by at most k in L2
norm, the sensitivity of a COUNT, and the group is noised as one vector (``calibrate``). Every
quantile of the same argument reads the same histogram.

The hub computes the quantile from the noisy counts g_j as released (negative ones included, so
the total and the cumulative counts stay unbiased): with total T and target rank
r = 1 + q (T - 1) (DuckDB's QUANTILE_CONT position), it finds the first bin j with g_j > 0 whose
cumulative count C_j reaches r and interpolates linearly inside it,
``L + w (j + (r - C_{j-1}) / g_j)``. Without noise the result lies within one bin width of
DuckDB's exact QUANTILE_CONT whenever the two order statistics around rank r share a bin or sit
in adjacent bins (always the case for data that fills its bins).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from fedsql.catalog import Bounds
from fedsql.errors import QueryRejected
from fedsql.sql.statement import DIALECT

#: Equal-width bins of every quantile histogram over the argument's interval [L, U].
HISTOGRAM_BINS = 32
#: Prefix of the measure keys of histogram bins: ``bin:0`` .. ``bin:31``.
BIN_PREFIX = "bin:"


def bin_keys() -> tuple[str, ...]:
    """The measure keys of one histogram's bins, in bin order.

    >>> bin_keys()[:2], len(bin_keys())
    (('bin:0', 'bin:1'), 32)
    """
    return tuple(f"{BIN_PREFIX}{j}" for j in range(HISTOGRAM_BINS))


def bin_index(key: str) -> int | None:
    """The bin number of a histogram measure key, or None for other measure keys.

    >>> bin_index("bin:7"), bin_index("sum")
    (7, None)
    """
    return int(key.removeprefix(BIN_PREFIX)) if key.startswith(BIN_PREFIX) else None


def bin_width(bounds: Bounds) -> float:
    """w = (U - L) / HISTOGRAM_BINS.

    >>> bin_width(Bounds(0, 64))
    2.0
    """
    return (float(bounds.hi) - float(bounds.lo)) / HISTOGRAM_BINS


def bin_condition(value: exp.Expr, bounds: Bounds, j: int) -> exp.Expr:
    """The row condition "the clamped value lies in bin j".

    >>> bin_condition(exp.column("a0"), Bounds(0, 64), 31).sql("duckdb")
    'a0 >= 62.0'
    >>> bin_condition(exp.column("a0"), Bounds(0, 64), 0).sql("duckdb")
    'a0 < 2.0'
    """
    lo = float(bounds.lo) + j * bin_width(bounds)
    hi = float(bounds.lo) + (j + 1) * bin_width(bounds)
    conditions: list[exp.Expr] = []
    if j > 0:
        conditions.append(exp.GTE(this=value.copy(), expression=exp.Literal.number(repr(lo))))
    if j < HISTOGRAM_BINS - 1:
        conditions.append(exp.LT(this=value.copy(), expression=exp.Literal.number(repr(hi))))
    if not conditions:
        return exp.Not(this=exp.Is(this=value.copy(), expression=exp.Null()))
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


def quantile_level(node: exp.AggFunc) -> float:
    """The level q of MEDIAN (0.5) or QUANTILE_CONT(x, q), checked to be a literal in [0, 1].

    Raises:
        QueryRejected: q is missing, not a numeric literal, or outside [0, 1].

    >>> quantile_level(sqlglot.parse_one("quantile_cont(x, 0.9)", read="duckdb"))
    0.9
    """
    if isinstance(node, exp.Median):
        return 0.5
    level = node.args.get("expression")
    if not (isinstance(level, exp.Literal) and not level.is_string):
        shown = "nothing" if level is None else level.sql(DIALECT)
        raise QueryRejected(
            f"QUANTILE_CONT needs a level between 0 and 1 as a number literal, got {shown}; "
            "e.g. QUANTILE_CONT(age, 0.9)"
        )
    q = float(level.name)
    if not 0.0 <= q <= 1.0:
        raise QueryRejected(f"QUANTILE_CONT level {level.name} is outside [0, 1]")
    return q


def quantile_expression(bins: list[exp.Column], bounds: Bounds, q: float) -> exp.Expr:
    """The hub's expression for the q-quantile from the noisy bin counts of one cell.

    Args:
        bins: The bin measure columns, in bin order.
        bounds: The interval [L, U] the bins cover.
        q: The level.

    Returns:
        A scalar subquery over the cell's bin counts (NULL when the noisy total is not
        positive or the cell is suppressed).
    """
    counts = ", ".join(c.sql(DIALECT) for c in bins)
    rank = f"1 + {q!r} * (__t - 1)"
    lo, width = repr(float(bounds.lo)), repr(bin_width(bounds))
    sql = (
        f"SELECT {lo} + {width} * (__i + ({rank} - (__c - __g)) / __g) "
        f"FROM (SELECT __i, __g, SUM(__g) OVER (ORDER BY __i) AS __c, SUM(__g) OVER () AS __t "
        f"FROM (SELECT UNNEST(RANGE({len(bins)})) AS __i, UNNEST([{counts}]) AS __g)) "
        f"WHERE __c >= {rank} AND __g > 0 ORDER BY __i LIMIT 1"
    )
    return exp.Subquery(this=sqlglot.parse_one(sql, read=DIALECT))
