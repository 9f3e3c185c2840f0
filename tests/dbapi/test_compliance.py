"""PEP 249 compliance, test for test after the public DB-API 2.0 compliance suite (dbapi20.py).

Every applicable test of that suite has an equivalent here, run against the noise-off demo
federation: module globals, exceptions, connection and cursor behaviour, ``description``, fetch
semantics, type objects and constructors, parameter styles. Its DDL and INSERT fixtures do not
apply to a read-only aggregate engine; the tests that used them read grouped query results
instead, and ``test_ddl_and_dml_raise_not_supported`` checks that such statements raise
``NotSupportedError`` and spend nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest

import fedsql
from fedsql.demo.federation import DemoFederation
from tests.dbapi.conftest import BY_AGE, BY_SEX

#: Six rows, ages 30 to 35 (the key space is public, so rows are chosen with HAVING).
SIX_AGES = "SELECT age, COUNT(*) AS n FROM patients GROUP BY age HAVING age BETWEEN 30 AND 35"

# -- module globals, exceptions, type objects (dbapi20: test_apilevel .. test_ROWID) ----------


def test_apilevel() -> None:
    assert fedsql.apilevel == "2.0"


def test_threadsafety() -> None:
    assert fedsql.threadsafety in (0, 1, 2, 3)


def test_paramstyle() -> None:
    assert fedsql.paramstyle == "qmark"


def test_exceptions_form_the_pep249_tree() -> None:
    assert issubclass(fedsql.Warning, Exception)
    assert issubclass(fedsql.Error, Exception)
    assert not issubclass(fedsql.Warning, fedsql.Error)
    assert issubclass(fedsql.InterfaceError, fedsql.Error)
    assert issubclass(fedsql.DatabaseError, fedsql.Error)
    for name in (
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    ):
        assert issubclass(getattr(fedsql, name), fedsql.DatabaseError), name


def test_exceptions_as_connection_attributes(conn: fedsql.Connection) -> None:
    for name in (
        "Warning",
        "Error",
        "InterfaceError",
        "DatabaseError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    ):
        assert getattr(conn, name) is getattr(fedsql, name), name


def test_type_objects_exist() -> None:
    for name in ("STRING", "BINARY", "NUMBER", "DATETIME", "ROWID"):
        assert hasattr(fedsql, name), name


def test_date_constructors() -> None:
    ticks = time.mktime((2002, 12, 25, 0, 0, 0, 0, 0, 0))
    assert fedsql.Date(2002, 12, 25) == fedsql.DateFromTicks(ticks)


def test_time_constructors() -> None:
    ticks = time.mktime((2001, 1, 1, 13, 45, 30, 0, 0, 0))
    assert fedsql.Time(13, 45, 30) == fedsql.TimeFromTicks(ticks)


def test_timestamp_constructors() -> None:
    ticks = time.mktime((2002, 12, 25, 13, 45, 30, 0, 0, 0))
    assert fedsql.Timestamp(2002, 12, 25, 13, 45, 30) == fedsql.TimestampFromTicks(ticks)


def test_binary_constructor() -> None:
    assert fedsql.Binary(b"Something") == b"Something"
    assert fedsql.Binary(b"") == b""


# -- connection (dbapi20: test_connect, test_commit, test_rollback, test_cursor, test_close) ---


def test_connect_and_close(oracle_federation: DemoFederation) -> None:
    conn = fedsql.connect(oracle_federation.target)
    conn.close()
    assert conn.closed


def test_commit_is_accepted(conn: fedsql.Connection) -> None:
    conn.commit()


def test_rollback_is_accepted(conn: fedsql.Connection) -> None:
    conn.rollback()


def test_cursor(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    assert cur.connection is conn


def test_close_makes_connection_and_its_cursors_unusable(
    oracle_federation: DemoFederation,
) -> None:
    conn = fedsql.connect(oracle_federation.target)
    cur = conn.cursor()
    conn.close()
    with pytest.raises(fedsql.Error):
        cur.execute(BY_SEX)
    with pytest.raises(fedsql.Error):
        conn.commit()
    with pytest.raises(fedsql.Error):
        conn.cursor()
    conn.close()  # closing twice is harmless


def test_connection_is_a_context_manager(oracle_federation: DemoFederation) -> None:
    with fedsql.connect(oracle_federation.target) as conn:
        conn.cursor().execute(BY_SEX)
    assert conn.closed


def test_closed_cursor_refuses_work(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(BY_SEX)
    cur.close()
    with pytest.raises(fedsql.Error):
        cur.fetchone()
    with pytest.raises(fedsql.Error):
        cur.execute(BY_SEX)


# -- cursor isolation, description, rowcount (dbapi20: test_cursor_isolation .. test_rowcount) --


def test_cursor_isolation(conn: fedsql.Connection) -> None:
    cur1, cur2 = conn.cursor(), conn.cursor()
    cur1.execute(BY_SEX)
    cur2.execute(BY_AGE)
    assert [r[0] for r in cur1.fetchall()] == ["F", "M"]
    assert len(cur2.fetchall()) == 111


def test_description(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    assert cur.description is None
    cur.execute(BY_SEX)
    assert cur.description is not None
    assert len(cur.description) == 3
    assert all(len(d) == 7 for d in cur.description)
    assert [d[0] for d in cur.description] == ["sex", "n", "bmi"]
    assert cur.description[0][1] == fedsql.STRING
    assert cur.description[1][1] == fedsql.NUMBER
    assert cur.description[2][1] == fedsql.NUMBER
    assert cur.description[0][1] != fedsql.NUMBER
    # dbapi20 resets description with a DDL statement; here a refused one does it.
    with pytest.raises(fedsql.NotSupportedError):
        cur.execute("CREATE TABLE booze (name VARCHAR)")
    assert cur.description is None


def test_description_of_dates(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(
        "SELECT visit_date, COUNT(*) AS n FROM visits WHERE visit_date <= ? GROUP BY visit_date",
        [dt.date(2020, 1, 3)],
    )
    assert cur.description is not None
    assert cur.description[0][1] == fedsql.DATETIME
    assert isinstance(cur.fetchone()[0], dt.date)  # type: ignore[index]


def test_rowcount(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    assert cur.rowcount == -1
    cur.execute(BY_SEX)
    assert cur.rowcount == 2
    cur.execute(BY_AGE)
    assert cur.rowcount == 111
    with pytest.raises(fedsql.NotSupportedError):
        cur.execute("DROP TABLE barflys")
    assert cur.rowcount == -1


def test_callproc_is_not_supported(conn: fedsql.Connection) -> None:
    with pytest.raises(fedsql.NotSupportedError):
        conn.cursor().callproc("lower", ("FOO",))


def test_nextset_is_not_supported(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(BY_SEX)
    with pytest.raises(fedsql.NotSupportedError):
        cur.nextset()


# -- statements a read-only engine never runs (replaces the DDL and INSERT tests) -------------

DDL_AND_DML = [
    "CREATE TABLE booze (name VARCHAR)",
    "DROP TABLE patients",
    "ALTER TABLE patients ADD COLUMN beer VARCHAR",
    "TRUNCATE patients",
    "INSERT INTO patients VALUES (1)",
    "UPDATE patients SET age = 1",
    "DELETE FROM patients",
    "COPY patients TO 'out.csv'",
    "ATTACH 'other.db'",
    "PRAGMA version",
    "SET threads = 1",
    "BEGIN",
]


@pytest.mark.parametrize("statement", DDL_AND_DML)
def test_ddl_and_dml_raise_not_supported(conn: fedsql.Connection, statement: str) -> None:
    cur = conn.cursor()
    with pytest.raises(fedsql.NotSupportedError):
        cur.execute(statement)
    with pytest.raises(fedsql.Error):
        cur.fetchone()


def test_parameterised_insert_raises_not_supported(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(fedsql.NotSupportedError):
        cur.execute("INSERT INTO patients (name) VALUES (?)", ["Cooper's"])
    with pytest.raises(fedsql.NotSupportedError):
        cur.executemany("INSERT INTO patients (name) VALUES (?)", [["Cooper's"], ["Boag's"]])


def test_refused_statements_spend_nothing(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(BY_SEX, epsilon=0.25)
    assert cur.privacy is not None
    before = {k: float(v) for k, v in cur.privacy.budget_left().items()}
    for statement in DDL_AND_DML:
        with pytest.raises(fedsql.NotSupportedError):
            cur.execute(statement)
    cur.execute(BY_SEX, epsilon=0.25)
    assert cur.privacy is not None
    after = {k: float(v) for k, v in cur.privacy.budget_left().items()}
    assert set(after) == set(before) == {"mumbai", "san-francisco", "seoul", "sydney"}
    for silo, left in after.items():
        assert left == pytest.approx(before[silo] - 0.25)


# -- fetch semantics (dbapi20: test_fetchone, test_fetchmany, test_fetchall, test_mixedfetch) --


def test_fetchone(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(fedsql.Error):
        cur.fetchone()
    cur.execute(BY_SEX)
    first = cur.fetchone()
    assert first is not None and len(first) == 3 and first[0] == "F"
    second = cur.fetchone()
    assert second is not None and second[0] == "M"
    assert cur.fetchone() is None


def test_fetchmany(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(fedsql.Error):
        cur.fetchmany(4)
    having = "SELECT age, COUNT(*) AS n FROM patients GROUP BY age HAVING COUNT(*) > ?"
    cur.execute(having, [10**9])
    assert cur.fetchmany() == []

    query = SIX_AGES
    cur.arraysize = 10
    cur.execute(query)
    assert len(cur.fetchmany(4)) == 4
    assert len(cur.fetchmany(4)) == 2
    assert cur.fetchmany(4) == []

    cur.execute(query)
    assert len(cur.fetchmany(size=4)) == 4
    assert len(cur.fetchmany(size=1)) == 1
    assert len(cur.fetchmany(size=4)) == 1
    assert cur.fetchmany(size=4) == []

    cur.arraysize = 4
    cur.execute(query)
    assert len(cur.fetchmany()) == 4
    assert len(cur.fetchmany()) == 2
    assert cur.fetchmany() == []

    cur.arraysize = 6
    cur.execute(query)
    rows = cur.fetchmany()
    assert sorted(r[0] for r in rows) == [30, 31, 32, 33, 34, 35]


def test_arraysize_defaults_to_one(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    assert cur.arraysize == 1
    cur.execute(BY_SEX)
    assert len(cur.fetchmany()) == 1


def test_fetchall(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(fedsql.Error):
        cur.fetchall()
    cur.execute(BY_AGE)
    rows = cur.fetchall()
    assert [r[0] for r in rows] == list(range(111))
    assert cur.fetchall() == []
    cur.execute("SELECT age, COUNT(*) AS n FROM patients GROUP BY age HAVING COUNT(*) > ?", [1e9])
    assert cur.fetchall() == []
    assert cur.rowcount == 0


def test_mixedfetch(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(SIX_AGES)
    row1 = cur.fetchone()
    rows23 = cur.fetchmany(2)
    row4 = cur.fetchone()
    rows56 = cur.fetchall()
    assert row1 is not None and row4 is not None
    assert len(rows23) == 2 and len(rows56) == 2
    ages = [row1[0], rows23[0][0], rows23[1][0], row4[0], rows56[0][0], rows56[1][0]]
    assert sorted(ages) == [30, 31, 32, 33, 34, 35]


def test_iteration(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute(BY_SEX)
    assert next(cur)[0] == "F"
    assert [row[0] for row in cur] == ["M"]
    assert cur.rownumber == 2


def test_null_values_come_back_as_none(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT AVG(bmi) AS bmi FROM patients WHERE age > ?", [200])
    assert cur.fetchall() == [(None,)]


def test_setinputsizes_and_setoutputsize_are_accepted(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.setinputsizes((25,))
    cur.setoutputsize(1000)
    cur.setoutputsize(1000, 0)
    cur.execute(BY_SEX)
    assert cur.rowcount == 2


# -- parameter styles (dbapi20: _paraminsert, test_executemany) -------------------------------


def test_qmark_parameters(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) AS n FROM patients WHERE sex = ? AND age >= ?", ("F", 40))
    by_qmark = cur.fetchall()
    cur.execute("SELECT COUNT(*) AS n FROM patients WHERE sex = 'F' AND age >= 40")
    assert by_qmark == cur.fetchall()


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT COUNT(*) AS n FROM patients WHERE sex = $1 AND age >= $2", ["F", 40]),
        ("SELECT COUNT(*) AS n FROM patients WHERE sex = $s AND age >= $a", {"s": "F", "a": 40}),
        ("SELECT COUNT(*) AS n FROM patients WHERE sex = :s AND age >= :a", {"s": "F", "a": 40}),
    ],
)
def test_numbered_and_named_parameters(
    conn: fedsql.Connection, sql: str, params: list[object] | dict[str, object]
) -> None:
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) AS n FROM patients WHERE sex = ? AND age >= ?", ["F", 40])
    expected = cur.fetchall()
    cur.execute(sql, params)
    assert cur.fetchall() == expected


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (["F", 40], fedsql.ProgrammingError),
        ({"s": "F"}, fedsql.ProgrammingError),
        ([b"F"], fedsql.DataError),
        ("F", fedsql.DataError),
    ],
)
def test_wrong_parameters_are_refused(
    conn: fedsql.Connection, params: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        conn.cursor().execute("SELECT COUNT(*) AS n FROM patients WHERE sex = ?", params)  # type: ignore[arg-type]


def test_executemany_runs_each_parameter_set(conn: fedsql.Connection) -> None:
    cur = conn.cursor()
    sql = "SELECT COUNT(*) AS n FROM patients WHERE sex = ?"
    cur.execute(sql, ["M"])
    males = cur.fetchall()
    cur.executemany(sql, [["F"], ["M"]])
    assert cur.fetchall() == males


# -- threads (threadsafety 2: threads may share a connection) ---------------------------------


def test_threads_share_one_connection(conn: fedsql.Connection) -> None:
    results: dict[int, list[tuple[object, ...]]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*) AS n FROM patients WHERE age >= ?", [10 * i])
            results[i] = cur.fetchall()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    counts = [results[i][0][0] for i in range(4)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[3] > 0
