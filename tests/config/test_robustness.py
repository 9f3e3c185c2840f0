"""Any TOML document, however wrong, gives a Contract/SiloPolicy or a ConfigError, nothing else."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedsql.config import CONTRACT_KEYS, POLICY_KEYS, parse_contract, parse_policy
from fedsql.errors import ConfigError

from .test_schemas import MINI_CONTRACT

KEY_POOL = sorted(
    {k for keys in CONTRACT_KEYS.values() for k in keys}
    | {k for keys in POLICY_KEYS.values() for k in keys}
    | {"tables", "columns", "t", "u", "patients", "patient_id", "Select", "a b", ""}
)
TYPE_NAMES = ["BIGINT", "integer", "DOUBLE", "VARCHAR", "DATE", "TIMESTAMP", "BOOLEAN", "INT", "x"]

scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(TYPE_NAMES + KEY_POOL + ["demo:", "demo:x", "2020-01-01", "auto"]),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
)
keys = st.one_of(
    st.sampled_from(KEY_POOL), st.text(st.characters(exclude_categories=["Cs"]), max_size=6)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.dictionaries(keys, values, max_size=6)


def toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def render(doc: dict[str, object]) -> str:
    return "".join(f"{toml_string(k)} = {toml_value(v)}\n" for k, v in doc.items())


@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(documents)
def test_arbitrary_documents_never_crash_the_loaders(doc: dict[str, object]) -> None:
    text = render(doc)
    for load in (
        lambda: parse_contract(text, file="fuzz.toml"),
        lambda: parse_policy(text, MINI_CONTRACT, file="fuzz.toml"),
    ):
        try:
            load()
        except ConfigError as error:
            assert str(error).startswith("fuzz.toml: ")
            assert error.problems


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(TYPE_NAMES),
            "bounds": st.lists(scalars, max_size=3),
            "domain": st.dictionaries(
                st.sampled_from(["values", "range", "step", "dates", "step_days"]),
                st.one_of(scalars, st.lists(scalars, max_size=3)),
                max_size=3,
            ),
        }
    )
)
def test_arbitrary_column_specs_give_a_column_or_a_config_error(spec: dict[str, object]) -> None:
    text = (
        '[federation]\nid = "f"\n[tables.t]\nunit = "u"\nmax_rows_per_unit = 1\n'
        f'[tables.t.columns]\nu = {{ type = "BIGINT" }}\nc = {toml_value(spec)}\n'
    )
    try:
        contract = parse_contract(text, file="fuzz.toml")
    except ConfigError as error:
        assert all(key.startswith("tables.t.columns.c") for key, _ in error.problems), error
    else:
        table = contract.table("t")
        assert table is not None and table.column("c") is not None
