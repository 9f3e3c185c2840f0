"""Example query files: name, question and SQL; a file without a question is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedsql.demo.example_queries import load_queries
from fedsql.errors import ConfigError


def test_loads_name_question_and_sql_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "02_b.sql").write_text("-- Question: how many?\n-- a note\nSELECT 2;\n")
    (tmp_path / "01_a.sql").write_text("-- Question:   what mean?  \nSELECT\n  1\n")
    queries = load_queries(tmp_path)
    assert [q.name for q in queries] == ["01_a", "02_b"]
    assert queries[0].question == "what mean?" and queries[0].sql == "SELECT\n  1"
    assert queries[1].sql == "SELECT 2"


@pytest.mark.parametrize("text", ["SELECT 1", "-- Question: why?\n-- nothing else\n"])
def test_a_file_without_question_or_sql_is_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "bad.sql").write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.sql: an example query needs"):
        load_queries(tmp_path)
