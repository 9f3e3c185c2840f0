"""The runnable examples run to completion and print what they promise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fedsql.demo.omop import ensure_omop_data
from fedsql.privacy.ledger import Ledger

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs(demo_data: object) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "diabetes among patients aged 50" in proc.stdout
    assert "budget left" in proc.stdout


def test_omop_example_asks_every_research_query(tmp_path: Path) -> None:
    files = ensure_omop_data()
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "omop" / "run.py"), "--rows", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "FEDSQL_CACHE_DIR": str(next(iter(files.values())).parents[1])},
    )
    assert proc.returncode == 0, proc.stderr
    queries = sorted((EXAMPLES / "omop" / "queries").glob("*.sql"))
    for path in queries:
        assert f"\n{path.stem}: " in proc.stdout
    counts = re.search(r"(\d+) answered, (\d+) not answerable yet", proc.stdout)
    assert counts is not None, proc.stdout[-500:]
    answered, rejected = int(counts[1]), int(counts[2])
    assert answered + rejected == len(queries) and answered >= 8
    assert "budget left" in proc.stdout


def test_notebook_runs_top_to_bottom(demo_data: object, tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not drawn"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "epsilon spent at each clinic: 0.5" in printed
    assert "answered: ['mumbai', 'san-francisco', 'seoul', 'sydney']" in printed
    assert "bmi: 0.1" in printed and "truth 0.12" in printed


def test_deploy_example_runs_and_stops_everything(demo_data: object, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "deploy" / "run.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4 silos joined" in proc.stdout
    assert "sex,n,n_margin95" in proc.stdout
    assert "stopped the hub and the silos" in proc.stdout
    assert (tmp_path / "roster.json").exists()
    # The analyst is enrolled: the roster holds their key, the hub only a hash of their token,
    # and every clinic charged the two signed queries (CLI and Python) exactly once.
    roster = json.loads((tmp_path / "roster.json").read_text())
    assert [a["name"] for a in roster["analysts"]] == ["analyst"]
    profile = (tmp_path / "profiles.toml").read_text()
    token = profile.split('token = "', 1)[1].split('"', 1)[0]
    assert token not in (tmp_path / "analysts.json").read_text()
    for clinic in ("mumbai", "san-francisco", "seoul", "sydney"):
        ledger = Ledger(tmp_path / clinic / f"{clinic}.ledger.sqlite")
        assert [e.micro for e in ledger.entries("analyst")] == [500_000, 500_000]


def test_postgres_silo_example_serves_a_clinic_from_postgres_and_cleans_up(
    demo_data: object,
) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "postgres-silo" / "run.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "seoul serves from PostgreSQL in pushdown mode" in proc.stdout
    assert "answered by: ['mumbai', 'san-francisco', 'seoul', 'sydney']" in proc.stdout
    assert "HASHTEXTEXTENDED(CAST(__rid AS TEXT)" in proc.stdout
    assert "dropped database fedsql_seoul_" in proc.stdout


def test_diabetes_risk_example_recovers_the_generator_model(demo_data: object) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "diabetes_risk.py")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    lines = {row[0]: row for row in rows if row and row[-1] in ("yes", "no")}
    assert set(lines) == {"intercept", "age", "bmi"}
    # the slopes are estimated well enough to fall near the generator's truth
    assert abs(float(lines["age"][1]) - 0.05) < 0.01
    assert abs(float(lines["bmi"][1]) - 0.12) < 0.03
    assert "epsilon spent at each clinic: 0.99" in proc.stdout
    assert "predicted locally for three example patients" in proc.stdout
