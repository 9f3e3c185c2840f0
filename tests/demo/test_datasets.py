"""The example federations by name: demo and omop; an unknown name fails before anything starts."""

from __future__ import annotations

import pytest

from fedsql.demo.datasets import DATASETS, dataset
from fedsql.demo.federation import DemoFederation
from fedsql.errors import ConfigError


def test_both_example_federations_have_a_contract_and_policies() -> None:
    assert sorted(DATASETS) == ["demo", "omop"]
    for name in DATASETS:
        folder = dataset(name).files()
        assert (folder / "contract.toml").is_file()
        assert len([p for p in folder.glob("*.toml") if p.name != "contract.toml"]) >= 4


def test_an_unknown_federation_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="no example federation named 'mimic'; use one of"):
        DemoFederation(dataset="mimic")
