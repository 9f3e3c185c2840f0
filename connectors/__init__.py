"""Data sources for silos (files, DuckDB, PostgreSQL, MySQL, ...), discovered through entry points."""
