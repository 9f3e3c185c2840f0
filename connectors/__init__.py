"""Data sources for silos (files, DuckDB, PostgreSQL, MySQL, ...), found through entry points."""
