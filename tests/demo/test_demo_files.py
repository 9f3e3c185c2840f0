"""The demo contract and clinic policies: found, loadable, and consistent with the generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.catalog import Contract
from fedsql.config import load_policy
from fedsql.demo.generator import CLINICS, demo_files
from fedsql.errors import ConfigError

from .conftest import DEMO_DIR


def test_demo_files_default_to_the_source_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEDSQL_DEMO_DIR", raising=False)
    assert demo_files() == DEMO_DIR
    assert (demo_files() / "contract.toml").is_file()


def test_demo_files_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "contract.toml").write_text("")
    monkeypatch.setenv("FEDSQL_DEMO_DIR", str(tmp_path))
    assert demo_files() == tmp_path
    monkeypatch.setenv("FEDSQL_DEMO_DIR", str(tmp_path / "missing"))
    with pytest.raises(
        ConfigError, match=r"set FEDSQL_DEMO_DIR to the folder holding contract\.toml"
    ):
        demo_files()


def test_demo_contract_declares_the_three_tables_with_their_caps(demo_contract: Contract) -> None:
    assert demo_contract.federation_id == "fedsql-demo"
    assert [t.name for t in demo_contract.tables] == ["patients", "visits", "labs"]
    assert [t.max_rows_per_unit for t in demo_contract.tables] == [1, 20, 24]
    assert all(t.unit == "patient_id" for t in demo_contract.tables)
    assert (demo_contract.secagg.n_min, demo_contract.secagg.c_max) == (3, 1)


def test_each_clinic_has_a_policy_that_loads(demo_contract: Contract) -> None:
    files = sorted(p.stem for p in DEMO_DIR.glob("*.toml") if p.name != "contract.toml")
    assert files == sorted(c.id for c in CLINICS)
    policies = [load_policy(DEMO_DIR / f"{c.id}.toml", demo_contract) for c in CLINICS]
    for spec, policy in zip(CLINICS, policies, strict=True):
        assert policy.silo_id == spec.id
        assert policy.data == f"demo:{spec.id}"
        assert policy.approval == "auto"
        assert policy.max_epsilon_per_query >= demo_contract.default_epsilon
        assert not policy.shares("patients", "name")
        assert not policy.shares("patients", "zip")
        assert not policy.shares(spec.private_table)
        for table in demo_contract.tables:
            assert policy.shares(table.name, table.unit)
    assert len({p.min_group_size for p in policies}) > 1
    assert len({p.budget_epsilon for p in policies}) > 1
