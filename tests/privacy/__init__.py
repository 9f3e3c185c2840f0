"""Tests of fedsql.privacy."""
