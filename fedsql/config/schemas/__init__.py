"""JSON Schemas (draft 2020-12) of the contract and policy files, for editors and linters."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

#: The schema files this package ships, by the kind of file they describe.
SCHEMA_FILES: dict[str, str] = {
    "contract": "contract.schema.json",
    "policy": "policy.schema.json",
}


def load_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a configuration file.

    Args:
        kind: ``"contract"`` or ``"policy"``.

    Returns:
        The schema as parsed JSON.

    Raises:
        KeyError: for another kind.
    """
    text = resources.files(__name__).joinpath(SCHEMA_FILES[kind]).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
