"""The SQLAlchemy dialect: registered for fedsql:// URLs, reflects shared tables, maps errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import registry

from fedsql.dbapi.dialect import FedsqlDialect
from fedsql.demo.federation import DemoFederation
from fedsql.errors import InterfaceError


@pytest.fixture(scope="module")
def engine(oracle_federation: DemoFederation) -> Iterator[sa.Engine]:
    eng = sa.create_engine(f"fedsql://tester@{oracle_federation.target}", pool_pre_ping=True)
    yield eng
    eng.dispose()


def test_the_entry_point_registers_the_dialect() -> None:
    assert registry.load("fedsql") is FedsqlDialect
    assert sa.create_engine("fedsql://demo").dialect.name == "fedsql"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("fedsql://demo", {"target": "demo"}),
        (
            "fedsql://alice@127.0.0.1:50051/?epsilon=0.5&timeout_s=30",
            {"target": "127.0.0.1:50051", "analyst": "alice", "epsilon": 0.5, "timeout_s": 30.0},
        ),
        ("fedsql:///?profile=clinics", {"profile": "clinics"}),
        (
            "fedsql://hub.example.org:7000/?analyst=bob",
            {"target": "hub.example.org:7000", "analyst": "bob"},
        ),
    ],
)
def test_urls_become_connect_arguments(url: str, expected: dict[str, object]) -> None:
    dialect = FedsqlDialect()
    args, kwargs = dialect.create_connect_args(sa.engine.make_url(url))
    assert list(args) == []
    assert kwargs == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("fedsql://alice:secret@127.0.0.1:50051", "tokens are not supported"),
        ("fedsql://127.0.0.1:50051/?colour=blue", "unknown URL parameter"),
        ("fedsql://127.0.0.1:50051/?epsilon=-1", "positive"),
        ("fedsql://127.0.0.1:50051/?epsilon=lots", "must be a number"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(InterfaceError, match=message):
        FedsqlDialect().create_connect_args(sa.engine.make_url(url))


def test_reflection_lists_the_shared_tables_and_columns(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert inspector.get_schema_names() == ["main"]
    assert inspector.default_schema_name == "main"
    assert inspector.get_table_names() == ["patients", "visits", "labs"]
    assert inspector.get_view_names() == []
    columns = {c["name"]: c for c in inspector.get_columns("patients")}
    # name and zip exist in the contract, but no clinic shares them.
    assert list(columns) == ["patient_id", "age", "sex", "bmi", "diabetic"]
    assert isinstance(columns["patient_id"]["type"], sa.BIGINT)
    assert isinstance(columns["age"]["type"], sa.INTEGER)
    assert isinstance(columns["sex"]["type"], sa.VARCHAR)
    assert isinstance(columns["bmi"]["type"], sa.DOUBLE)
    assert isinstance(columns["diabetic"]["type"], sa.BOOLEAN)
    assert "Age in whole years" in (columns["age"]["comment"] or "")
    visits = {c["name"]: c["type"] for c in inspector.get_columns("visits")}
    assert isinstance(visits["visit_date"], sa.DATE)
    assert inspector.get_pk_constraint("patients")["constrained_columns"] == []
    assert inspector.get_foreign_keys("patients") == []
    assert inspector.get_indexes("patients") == []
    assert inspector.get_table_comment("labs")["text"] == "Laboratory results, 2020 to 2024"


def test_reflection_of_unknown_tables(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert inspector.has_table("patients")
    assert not inspector.has_table("prescriptions")
    assert not inspector.has_table("patients", schema="other")
    with pytest.raises(sa.exc.NoSuchTableError):
        inspector.get_columns("prescriptions")
    with pytest.raises(sa.exc.NoSuchTableError):
        sa.Table("prescriptions", sa.MetaData(), autoload_with=engine)


def test_metadata_reflects_every_table(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    metadata.reflect(engine)
    assert sorted(metadata.tables) == ["labs", "patients", "visits"]
    assert metadata.tables["labs"].c.value.type.python_type is float


def test_errors_arrive_as_sqlalchemy_wrappers_of_the_pep249_classes(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        with pytest.raises(sa.exc.NotSupportedError):
            conn.exec_driver_sql("DROP TABLE patients")
        with pytest.raises(sa.exc.ProgrammingError, match="not shared"):
            conn.exec_driver_sql("SELECT COUNT(name) FROM patients")


def test_pool_pre_ping_asks_the_hub(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM patients").scalar() == 250_000
    with engine.connect() as conn:  # the pooled connection is pinged first
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM labs").scalar_one() > 0


def test_an_unreachable_hub_is_an_operational_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    eng = sa.create_engine(f"fedsql://127.0.0.1:{port}/?timeout_s=5")
    try:
        with pytest.raises(sa.exc.OperationalError, match="hub unreachable"), eng.connect() as c:
            c.exec_driver_sql("SELECT COUNT(*) FROM patients")
    finally:
        eng.dispose()


def test_the_embedded_demo_through_a_url(demo_data: object) -> None:
    eng = sa.create_engine("fedsql://demo/?epsilon=0.5")
    try:
        with eng.connect() as conn:
            n = conn.exec_driver_sql("SELECT COUNT(*) FROM patients").scalar_one()
        assert abs(n - 250_000) < 500
    finally:
        eng.dispose()
