"""The example-data cache: builds a data set once, reuses it, rebuilds when its versions change."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from fedsql.demo.cache import ensure_built, expected_header, manifest_ok, read_manifest_in

SCHEMAS = {"t": (("id", "BIGINT"), ("v", "DOUBLE"))}


class Builder:
    """Builds a one-table clinic and counts how often it was asked to."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, clinic: str) -> Mapping[str, pa.Table]:
        self.calls.append(clinic)
        return {"t": pa.table({"id": [1, 2], "v": [0.5, float(len(clinic))]})}


def test_builds_once_then_reuses(tmp_path: Path) -> None:
    build = Builder()
    header = expected_header("test-v1", 1)
    paths = ensure_built(tmp_path / "test-v1", header, ["a", "bb"], build, SCHEMAS)
    assert build.calls == ["a", "bb"]
    assert all(p.is_file() for p in paths.values())
    again = ensure_built(tmp_path / "test-v1", header, ["a", "bb"], build, SCHEMAS)
    assert again == paths and build.calls == ["a", "bb"]
    manifest = read_manifest_in(tmp_path / "test-v1")
    assert manifest is not None and manifest["clinics"]["bb"]["rows"] == {"t": 2}


def test_a_changed_header_or_a_missing_file_rebuilds(tmp_path: Path) -> None:
    build = Builder()
    folder = tmp_path / "set"
    paths = ensure_built(folder, expected_header("v1", 1), ["a"], build, SCHEMAS)
    assert not manifest_ok(folder, expected_header("v1", 2), paths)
    ensure_built(folder, expected_header("v1", 2), ["a"], build, SCHEMAS)
    paths["a"].unlink()
    ensure_built(folder, expected_header("v1", 2), ["a"], build, SCHEMAS)
    assert build.calls == ["a", "a", "a"]
    assert not list(folder.glob(".*.tmp*"))
