"""The example federations the embedded demo can run: each one's files and its generated data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fedsql.demo.generator import demo_files, ensure_demo_data
from fedsql.demo.omop import ensure_omop_data, omop_files
from fedsql.errors import ConfigError


@dataclass(frozen=True)
class Dataset:
    """One example federation.

    Attributes:
        name: Its name (``fedsql.connect(name)``).
        description: One line for people.
        files: Returns the folder holding ``contract.toml`` and one policy per clinic.
        ensure_data: Builds (or reuses) the clinics' DuckDB files: cache root -> silo id -> file.
    """

    name: str
    description: str
    files: Callable[[], Path]
    ensure_data: Callable[[Path | None], dict[str, Path]]


#: The example federations by name.
DATASETS: dict[str, Dataset] = {
    "demo": Dataset(
        "demo", "four synthetic clinics (patients, visits, labs)", demo_files, ensure_demo_data
    ),
    "omop": Dataset("omop", "five synthetic clinics in the OMOP CDM", omop_files, ensure_omop_data),
}


def dataset(name: str) -> Dataset:
    """The example federation called ``name``.

    Raises:
        ConfigError: No example federation has that name.
    """
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise ConfigError(f"no example federation named {name!r}; use one of: {known}") from None
