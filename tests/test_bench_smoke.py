"""The benchmarks run at a smoke size, so they keep working between full runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("query_latency.py", "worst ratio"),
        ("secagg.py", "per silo"),
        ("roundtrip.py", "median"),
        ("connectors.py", "pushdown/direct ratio"),
        ("accuracy.py", "worst ratio"),
        ("training.py", "rows bytes / bytes per round"),
        ("demo_data.py", "generate/copy ratio"),
    ],
)
def test_benchmark_smoke(demo_data: object, script: str, expect: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout
