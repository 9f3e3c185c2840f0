"""The cache of generated example data: one DuckDB file per clinic, built once under a file lock.

Every example data set (the demo's four clinics, the OMOP example's five) is cached the same way:
under ``$FEDSQL_CACHE_DIR`` (default ``~/.cache/fedsql``) in a folder named for the generator's
version, one ``<clinic>.duckdb`` per clinic and a ``manifest.json`` written last. Building happens
under an exclusive file lock, each file is written to a temporary name and renamed into place, so
concurrent processes build a set once and never see half a file. A manifest from other library
versions (numpy, DuckDB) triggers a rebuild, since the random streams may differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

#: Name of the file that records what was built (versions, row counts, checksums).
MANIFEST = "manifest.json"

#: Builds one clinic's tables in memory: table name -> Arrow table.
ClinicBuilder = Callable[[str], Mapping[str, pa.Table]]


def cache_root(cache_dir: Path | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$FEDSQL_CACHE_DIR``, else ``~/.cache/fedsql``."""
    if cache_dir is None:
        env = os.environ.get("FEDSQL_CACHE_DIR", "").strip()
        cache_dir = Path(env) if env else Path.home() / ".cache" / "fedsql"
    return Path(cache_dir).expanduser()


def expected_header(version: str, seed: int) -> dict[str, Any]:
    """What a manifest must record for its files to be reused: versions and seed."""
    return {
        "generator_version": version,
        "seed": seed,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
    }


def ensure_built(
    folder: Path,
    header: Mapping[str, Any],
    clinic_ids: Sequence[str],
    build: ClinicBuilder,
    schemas: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, Path]:
    """Make sure every clinic's DuckDB file of a data set is in ``folder``; build what is missing.

    Args:
        folder: The data set's cache folder (created if needed).
        header: What the manifest must record (see :func:`expected_header`).
        clinic_ids: The clinics, in order.
        build: Generates one clinic's tables.
        schemas: Column names and SQL types of the tables whose types are declared (the
            contract's); other tables take types from their Arrow schema.

    Returns:
        Clinic id -> DuckDB file, in ``clinic_ids`` order.
    """
    paths = {c: folder / f"{c}.duckdb" for c in clinic_ids}
    if manifest_ok(folder, header, paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        if manifest_ok(folder, header, paths):
            return paths
        _remove_leftovers(folder)
        _atomic_remove(folder / MANIFEST)
        entries = {c: write_clinic(build(c), paths[c], schemas) for c in clinic_ids}
        manifest = {**header, "clinics": entries}
        _atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def read_manifest_in(folder: Path) -> dict[str, Any] | None:
    """The manifest in ``folder``, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def data_checksum(path: Path) -> str:
    """SHA-256 over a clinic database's schema and contents (independent of row order).

    Args:
        path: A DuckDB file.

    Returns:
        Hex digest over every table's name, column names and types, row count and the sum of
        DuckDB's row hashes.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        return _checksum(con)
    finally:
        con.close()


def _checksum(con: duckdb.DuckDBPyConnection) -> str:
    names = [
        r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
    ]
    summary: list[object] = []
    for name in names:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = ? "
            "ORDER BY column_index",
            [name],
        ).fetchall()
        count, total = con.execute(
            f'SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0) FROM "{name}" AS t'
        ).fetchone() or (0, 0)
        summary.append([name, [list(c) for c in columns], count, str(total)])
    return hashlib.sha256(json.dumps(summary).encode()).hexdigest()


def write_clinic(
    tables: Mapping[str, pa.Table],
    path: Path,
    schemas: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, Any]:
    """Write one clinic's tables to a DuckDB file atomically and describe what was written.

    Args:
        tables: Table name -> Arrow table, in creation order.
        path: The DuckDB file to (re)place.
        schemas: Declared column names and SQL types of the tables that have them.

    Returns:
        The clinic's manifest entry: file name, row count per table and checksum.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _atomic_remove(tmp)
    con = duckdb.connect(str(tmp))
    try:
        for name, table in tables.items():
            schema = schemas.get(name) or tuple((f.name, _duck_type(f.type)) for f in table.schema)
            ddl = ", ".join(f'"{col}" {sql_type}' for col, sql_type in schema)
            con.execute(f'CREATE TABLE "{name}" ({ddl})')
            con.register("__source", table)
            con.execute(f'INSERT INTO "{name}" SELECT * FROM __source')
            con.unregister("__source")
        checksum = _checksum(con)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return {
        "file": path.name,
        "rows": {name: table.num_rows for name, table in tables.items()},
        "checksum": checksum,
    }


def _duck_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_integer(arrow_type):
        return "INTEGER"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_date32(arrow_type):
        return "DATE"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    return "VARCHAR"


def manifest_ok(folder: Path, header: Mapping[str, Any], paths: Mapping[str, Path]) -> bool:
    """True when ``folder`` holds a complete build with this ``header`` and every file."""
    manifest = read_manifest_in(folder)
    if manifest is None:
        return False
    if any(manifest.get(k) != v for k, v in header.items()):
        return False
    entries = manifest.get("clinics")
    if not isinstance(entries, dict) or set(entries) != set(paths):
        return False
    return all(p.is_file() and p.stat().st_size > 0 for p in paths.values())


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(folder: Path) -> None:
    """Delete temporary files of builds that died (only called while holding the lock)."""
    for leftover in folder.glob(".*.tmp*"):
        _atomic_remove(leftover)


def _atomic_remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
