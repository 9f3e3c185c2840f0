"""The JSON Schemas describe exactly the keys the loaders accept."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from fedsql.catalog import Contract
from fedsql.config import parse_contract, parse_policy
from fedsql.config.contract import CONTRACT_KEYS, CONTRACT_OPEN_TABLES
from fedsql.config.policy import POLICY_KEYS, POLICY_OPEN_TABLES
from fedsql.config.schemas import SCHEMA_FILES, load_schema
from fedsql.demo.generator import demo_files
from fedsql.errors import ConfigError

from .policy_cases import GOOD, MALFORMED, SCHEMA_CATCHES
from .test_policy import GOVERNED


def schema_sections(schema: dict[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
    """Walk a schema: (path -> property names of each object, paths of open name -> value maps)."""
    defs = schema.get("$defs", {})
    sections: dict[str, set[str]] = {}
    open_tables: set[str] = set()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    def join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def walk(node: dict[str, Any], path: str) -> None:
        node = resolve(node)
        props: dict[str, Any] = dict(node.get("properties", {}))
        for variant in node.get("oneOf", []) + node.get("anyOf", []):
            props.update(resolve(variant).get("properties", {}))
        if props:
            sections.setdefault(path, set()).update(props)
            for key, sub in props.items():
                walk(sub, join(path, key))
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            open_tables.add(path)
            walk(extra, join(path, "*"))

    walk(schema, "")
    return sections, open_tables


@pytest.mark.parametrize(
    ("kind", "keys", "open_tables"),
    [
        ("contract", CONTRACT_KEYS, CONTRACT_OPEN_TABLES),
        ("policy", POLICY_KEYS, POLICY_OPEN_TABLES),
    ],
)
def test_schema_and_loader_accept_the_same_keys(
    kind: str, keys: Mapping[str, frozenset[str]], open_tables: frozenset[str]
) -> None:
    schema = load_schema(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    sections, opened = schema_sections(schema)
    assert sections == {path: set(names) for path, names in keys.items()}
    assert opened == set(open_tables)


def test_schemas_are_valid_json_files_shipped_with_the_package() -> None:
    assert set(SCHEMA_FILES) == {"contract", "policy"}
    for kind in SCHEMA_FILES:
        text = json.dumps(load_schema(kind))
        assert "additionalProperties" in text


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def render(sections: dict[str, dict[str, object]]) -> str:
    """A TOML document with one [header] per section path (root keys first)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in sections.get("", {}).items()]
    for path, body in sections.items():
        if path:
            lines.append(f"[{path}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in body.items())
    return "\n".join(lines) + "\n"


# One concrete section per registry path, each holding every accepted key (values need not be
# valid: only "unknown key" problems matter here).
CONTRACT_DOC: dict[str, dict[str, object]] = {
    "federation": {
        "id": "f",
        "description": "d",
        "delta": 0.5,
        "default_epsilon": 1.0,
        "silos": ["s"],
    },
    "secagg": {"n_min": 3, "c_max": 1, "threshold": 2, "max_rows_per_silo": 10},
    "tables.t": {"unit": "u", "max_rows_per_unit": 1, "description": "d"},
    "tables.t.columns.u": {"type": "BIGINT", "bounds": [0, 1], "description": "d"},
    "tables.t.columns.u.domain": {
        "values": [1],
        "range": [0, 1],
        "step": 1,
        "dates": ["2020-01-01", "2020-01-02"],
        "step_days": 1,
    },
}
CONTRACT_PATHS = {
    "": "",
    "federation": "federation",
    "secagg": "secagg",
    "tables.*": "tables.t",
    "tables.*.columns.*": "tables.t.columns.u",
    "tables.*.columns.*.domain": "tables.t.columns.u.domain",
}

MINI_CONTRACT: Contract = parse_contract(
    '[federation]\nid = "f"\n[tables.t]\nunit = "u"\nmax_rows_per_unit = 1\n'
    '[tables.t.columns]\nu = { type = "BIGINT" }\n'
)
POLICY_DOC: dict[str, dict[str, object]] = {
    "silo": {"id": "s", "name": "n", "data": "demo:s"},
    "share": {"t": ["u"]},
    "privacy": {
        "max_epsilon_per_query": 1.0,
        "budget_epsilon": 2.0,
        "budget_renewal_days": 30,
        "min_group_size": 1,
    },
    "privacy.analysts": {"a": 1.0},
    "queries": {
        "aggregates": ["COUNT"],
        "unit_uses": ["filter"],
        "max_cells": 10,
        "allow_per_clinic": False,
    },
    "limits": {"query_timeout_s": 1, "rate_limit": "5/minute"},
    "approval": {"mode": "auto"},
    "source": {
        "connector": "files",
        "mode": "snapshot",
        "url": "postgresql://u@h/d",
        "path": "p",
        "password_env": "E",
        "password_file": "F",
    },
    "bind.t": {"table": "x", "query": "SELECT 1"},
    "bind.t.columns.u": {"column": "c", "cast": True},
    "bind.t.columns.u.values": {"a": 1},
}
POLICY_PATHS = {p: p.replace("*", "t").replace("columns.t", "columns.u") for p in POLICY_KEYS}


def unknown_key_problems(kind: str, doc: dict[str, dict[str, object]]) -> list[str]:
    text = render(doc)
    try:
        if kind == "contract":
            parse_contract(text)
        else:
            parse_policy(text, MINI_CONTRACT)
    except ConfigError as error:
        return [key for key, message in error.problems if message.startswith("unknown key")]
    return []


@pytest.mark.parametrize(
    ("kind", "doc", "paths", "keys"),
    [
        ("contract", CONTRACT_DOC, CONTRACT_PATHS, CONTRACT_KEYS),
        ("policy", POLICY_DOC, POLICY_PATHS, POLICY_KEYS),
    ],
)
def test_loader_enforces_exactly_its_key_registry(
    kind: str,
    doc: dict[str, dict[str, object]],
    paths: dict[str, str],
    keys: Mapping[str, frozenset[str]],
) -> None:
    # Every registered key is accepted ...
    for path, names in keys.items():
        concrete = paths[path]
        present = set(doc.get(concrete, {})) | {p.split(".")[0] for p in doc if not concrete}
        if concrete:
            present |= {
                p[len(concrete) + 1 :].split(".")[0] for p in doc if p.startswith(concrete + ".")
            }
        assert names <= present, f"test document misses keys of {path or 'the root'}"
    assert unknown_key_problems(kind, doc) == []
    # ... and a key outside the registry is refused in every section.
    for path in keys:
        concrete = paths[path]
        probe = {p: dict(body) for p, body in doc.items()}
        probe.setdefault(concrete, {})["zz_extra"] = 1
        expected = f"{concrete}.zz_extra" if concrete else "zz_extra"
        assert unknown_key_problems(kind, probe) == [expected]


def _policy_validator() -> Draft202012Validator:
    schema = load_schema("policy")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_the_policy_schema_accepts_the_demo_policies_and_every_key() -> None:
    validator = _policy_validator()
    files = [p for p in demo_files().glob("*.toml") if p.name != "contract.toml"]
    assert len(files) == 4
    for path in files:
        assert list(validator.iter_errors(tomllib.loads(path.read_text()))) == [], path.name
    for text in (GOOD, GOVERNED, render(POLICY_DOC)):
        assert list(validator.iter_errors(tomllib.loads(text))) == []


@pytest.mark.parametrize(
    ("name", "text"), [case[:2] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_the_policy_schema_rejects_what_it_can_see_without_the_contract(
    name: str, text: str
) -> None:
    errors = list(_policy_validator().iter_errors(tomllib.loads(text)))
    assert bool(errors) == (name in SCHEMA_CATCHES), errors
