"""pandas, polars, SQLAlchemy and the Arrow extras return the same table for the same query.

The federation runs with noise off, so one query gives the same answer every time: the same
column names, the same keys and counts exactly, and the same averages and sums up to the last
bits of floating-point summation order (DuckDB adds doubles in parallel). Within a library the
types match too, except integer widths: rows read through a DB-API cursor come back as Python
ints, which pandas stores as int64 and polars types from the type name.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import sqlalchemy as sa

import fedsql
from fedsql.demo.federation import DemoFederation
from tests.dbapi.conftest import BY_SEX

QUERIES = [
    BY_SEX,
    "SELECT age, COUNT(*) AS n, SUM(bmi) AS bmi_total FROM patients GROUP BY age ORDER BY age",
    "SELECT diabetic, COUNT(*) AS n FROM patients WHERE age >= 50 GROUP BY diabetic",
    "SELECT visit_date, COUNT(*) AS visits, AVG(cost) AS cost FROM visits "
    "WHERE visit_date < DATE '2020-02-01' GROUP BY visit_date ORDER BY visit_date",
    "SELECT test, AVG(value) AS mean, COUNT(*) AS n FROM labs GROUP BY test ORDER BY test",
]


@pytest.fixture(scope="module")
def engine(oracle_federation: DemoFederation) -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on the noise-off federation."""
    eng = sa.create_engine(f"fedsql://tester@{oracle_federation.target}")
    yield eng
    eng.dispose()


def _rows(frame: pd.DataFrame | pl.DataFrame | pa.Table) -> list[tuple[object, ...]]:
    if isinstance(frame, pl.DataFrame):
        return frame.rows()
    if isinstance(frame, pa.Table):
        return pl.from_arrow(frame).rows()  # type: ignore[union-attr]
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(False)]


def _kind(dtype: pl.DataType) -> str:
    """A polars type, with integer widths merged (polars infers them from the type names)."""
    return "integer" if dtype.is_integer() else str(dtype)


def assert_same_rows(got: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> None:
    """Equal row for row: exactly, except floats to 1e-12 relative."""
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        assert len(row) == len(want)
        for value, wanted in zip(row, want, strict=True):
            if isinstance(wanted, float):
                assert value == pytest.approx(wanted, rel=1e-12, abs=1e-12)
            else:
                assert value == wanted


def _pandas_from_connection(sql: str, conn: fedsql.Connection) -> pd.DataFrame:
    with warnings.catch_warnings():
        # pandas warns that it has not tested DB-API drivers other than sqlite3.
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        return pd.read_sql(sql, conn)


@pytest.mark.parametrize("sql", QUERIES)
def test_every_interface_returns_the_same_table(
    conn: fedsql.Connection, engine: sa.Engine, sql: str
) -> None:
    cur = conn.cursor()
    reference = cur.execute(sql).fetch_arrow_table()
    assert reference.num_rows > 0
    batches = cur.execute(sql).fetch_record_batch().read_all()
    fetched_df = cur.execute(sql).fetch_df()
    rows = cur.execute(sql).fetchall()

    expected = _rows(reference)
    assert batches.schema == reference.schema
    assert_same_rows(_rows(batches), expected)
    assert_same_rows(rows, expected)

    frames = {
        "fetch_df": fetched_df,
        "read_sql(connection)": _pandas_from_connection(sql, conn),
        "read_sql(engine)": pd.read_sql(sql, engine),
        "read_database(connection)": pl.read_database(sql, conn),
        "read_database(engine)": pl.read_database(sql, engine),
    }
    for name, frame in frames.items():
        assert list(frame.columns) == reference.column_names, name
        assert_same_rows(_rows(frame), expected)
    pandas_dtypes = reference.to_pandas().dtypes
    assert (fetched_df.dtypes == pandas_dtypes).all()
    for name in ("read_sql(connection)", "read_sql(engine)"):
        kinds = [dtype.kind for dtype in frames[name].dtypes]
        assert kinds == [dtype.kind for dtype in pandas_dtypes], name
    polars_kinds = [_kind(t) for t in pl.from_arrow(reference).dtypes]  # type: ignore[union-attr]
    for name in ("read_database(connection)", "read_database(engine)"):
        assert [_kind(t) for t in frames[name].dtypes] == polars_kinds, name


def test_sqlalchemy_core_queries_over_reflected_tables(
    conn: fedsql.Connection, engine: sa.Engine
) -> None:
    patients = sa.Table("patients", sa.MetaData(), autoload_with=engine)
    query = (
        sa.select(
            patients.c.sex, sa.func.count().label("n"), sa.func.avg(patients.c.bmi).label("bmi")
        )
        .where(patients.c.age >= 40)
        .group_by(patients.c.sex)
        .order_by(patients.c.sex)
    )
    with engine.connect() as sa_conn:
        via_core = [tuple(r) for r in sa_conn.execute(query)]
    assert via_core == conn.cursor().execute(BY_SEX).fetchall()


def test_pandas_parameters_through_both_paths(conn: fedsql.Connection, engine: sa.Engine) -> None:
    sql = "SELECT COUNT(*) AS n FROM patients WHERE sex = ? AND age >= ?"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")
        by_conn = pd.read_sql(sql, conn, params=["F", 40])
    by_engine = pd.read_sql(
        sa.text("SELECT COUNT(*) AS n FROM patients WHERE sex = :s AND age >= :a"),
        engine,
        params={"s": "F", "a": 40},
    )
    pd.testing.assert_frame_equal(by_conn, by_engine)
    assert by_conn["n"].iloc[0] > 50_000


def test_arrow_extras_consume_the_rows_like_fetchall(conn: fedsql.Connection) -> None:
    cur = conn.cursor().execute(BY_SEX)
    first = cur.fetchone()
    rest = cur.fetch_arrow_table()
    assert first is not None and first[0] == "F"
    assert rest.column("sex").to_pylist() == ["M"]
    assert cur.fetchall() == []
    assert cur.fetch_arrow_table().num_rows == 0
    assert isinstance(cur.fetch_record_batch(), pa.RecordBatchReader)
