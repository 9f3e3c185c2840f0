"""Start-up checks of a clinic's data against its policy and the contract, before any query."""

from __future__ import annotations

from fedsql.catalog import Contract, SiloPolicy
from fedsql.errors import ConfigError
from fedsql.silo.source_engines import QueryEngine


def check_clinic_data(
    engine: QueryEngine, contract: Contract, policy: SiloPolicy
) -> dict[str, bool]:
    """Check every shared table and column exists and each table stays within the row limit.

    Args:
        engine: The clinic's engine (its tables as the silo sees them).
        contract: The federation contract.
        policy: The clinic's policy (what it shares).

    Returns:
        For each shared table, whether no unit has more rows than the contract's cap. Only a
        table whose data cannot change (a read-only file) is ever reported within the cap: there
        single-table queries may skip the per-query cap, which could drop no row.

    Raises:
        ConfigError: A shared table or column is missing, or a table has more rows than the
            contract's ``max_rows_per_silo``.
    """
    tables = engine.tables()
    within_cap: dict[str, bool] = {}
    for name, columns in policy.shared.items():
        table = contract.table(name)
        if table is None or name not in tables:
            raise ConfigError(
                f"shared table {name} is missing from the clinic's database", key=f"share.{name}"
            )
        for col in columns:
            if col not in tables[name]:
                raise ConfigError(
                    f"shared column {name}.{col} is missing from the clinic's database",
                    key=f"share.{name}",
                )
        if engine.row_count(name) > contract.secagg.max_rows_per_silo:
            raise ConfigError(
                f"table {name} has more rows than the contract's max_rows_per_silo",
                key="secagg.max_rows_per_silo",
            )
        # Sources that change while the silo runs (snapshots, pushdown) are always capped.
        within_cap[name] = engine.fixed_data and (
            engine.max_rows_per_unit(name, table.unit) <= table.max_rows_per_unit
        )
    return within_cap
