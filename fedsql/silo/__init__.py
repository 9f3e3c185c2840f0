"""The silo agent: policy guard, locked-down DuckDB engine, ledger and the silo half of FSA-1."""
