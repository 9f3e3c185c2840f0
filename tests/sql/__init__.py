"""Tests of fedsql.sql: admission, binding, validation, planning, and DuckDB as the oracle."""
