"""Fixtures of the audit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    """Where a test's log goes."""
    return tmp_path / "audit.log"
