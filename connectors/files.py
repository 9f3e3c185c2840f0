"""CSV, Parquet and JSON files, and folders of them, as a silo's source (snapshot mode).

``[source] path`` names a file or a folder. Each file in it (``.csv``, ``.tsv``, ``.parquet``,
``.json``, ``.jsonl``, ``.ndjson``) is a source table named for its file name without the
extension; each sub-folder of such files is one table named for the folder (its files are read
together, e.g. a partitioned Parquet export). A binding's ``table`` names one of them; a
``query`` reads them by those names (DuckDB SQL). The files are read by a private in-memory
DuckDB when the snapshot loads; the silo's own engine never reads files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from connectors.sql_source import SqlConnector, arrow_family
from fedsql.catalog import TableBinding
from fedsql.errors import ConfigError

#: Readers by file extension.
READERS: dict[str, str] = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".parquet": "read_parquet",
    ".json": "read_json",
    ".jsonl": "read_json",
    ".ndjson": "read_json",
}


def source_tables(location: Path) -> dict[str, tuple[str, str]]:
    """Source table name -> (reader, file or glob) for a file or a folder of files.

    >>> source_tables(Path("/nonexistent"))
    {}
    """
    out: dict[str, tuple[str, str]] = {}
    if location.is_file() and location.suffix.lower() in READERS:
        return {location.stem.lower(): (READERS[location.suffix.lower()], str(location))}
    if not location.is_dir():
        return out
    for entry in sorted(location.iterdir()):
        suffix = entry.suffix.lower()
        if entry.is_file() and suffix in READERS:
            out[entry.stem.lower()] = (READERS[suffix], str(entry))
        elif entry.is_dir():
            kinds = {p.suffix.lower() for p in entry.rglob("*") if p.suffix.lower() in READERS}
            if len(kinds) == 1:
                kind = kinds.pop()
                out[entry.name.lower()] = (READERS[kind], str(entry / "**" / f"*{kind}"))
    return out


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class FilesConnector(SqlConnector):
    """Files and folders of CSV, Parquet or JSON, read into Arrow for a snapshot."""

    dialect = "duckdb"
    supports_pushdown = False

    def _connect(self) -> Any:
        location = Path(self.spec.location)
        tables = source_tables(location)
        if not tables:
            raise ConfigError(
                f"{self.spec.location!r} holds no CSV, Parquet or JSON file for tables "
                f"{self.tables_served}; check source.path",
                key="source.path",
            )
        conn = duckdb.connect()
        for name, (reader, path) in tables.items():
            view = exp.to_identifier(name, quoted=True).sql("duckdb")
            options = ", delim = '\\t'" if path.endswith(".tsv") else ""
            conn.execute(f"CREATE VIEW {view} AS SELECT * FROM {reader}({_string(path)}{options})")
        return conn

    def _connect_error(self, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"the files serving tables {self.tables_served} cannot be read "
            f"({type(exc).__name__}); check source.path",
            key="source.path",
        )

    def _relation(self, binding: TableBinding) -> exp.Expr:
        if binding.table:
            name = Path(binding.table).stem.lower() if "." in binding.table else binding.table
            return exp.Table(this=exp.to_identifier(name.strip("/").lower(), quoted=True))
        return super()._relation(binding)

    def _arrow(self, conn: Any, sql: str) -> pa.Table:
        table: pa.Table = conn.cursor().sql(sql).to_arrow_table()
        return table

    def _describe(self, conn: Any, binding: TableBinding) -> dict[str, str]:
        query = exp.select(exp.Star()).from_(self._relation(binding)).limit(0)
        schema = self._arrow(conn, query.sql(self.dialect)).schema
        return {f.name.lower(): arrow_family(f.type) for f in schema}
