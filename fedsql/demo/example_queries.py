"""The example research queries shipped as SQL files: each file's name, question and statement.

A query file holds one ``SELECT``; its first comment line says the question it answers::

    -- Question: how many persons does the network hold, by sex and year of birth?
    SELECT gender_concept_id, year_of_birth, COUNT(*) AS persons FROM person GROUP BY 1, 2
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedsql.errors import ConfigError

#: The prefix of the comment line that states a query's question.
QUESTION_PREFIX = "-- Question:"


@dataclass(frozen=True)
class ExampleQuery:
    """One example query: its name (the file's stem), the question it answers and its SQL."""

    name: str
    question: str
    sql: str


def load_queries(folder: Path) -> tuple[ExampleQuery, ...]:
    """Every ``*.sql`` file of ``folder``, in file-name order.

    Args:
        folder: The folder of query files.

    Returns:
        The queries; the SQL keeps the file's text without its comment lines or a final ``;``.

    Raises:
        ConfigError: A file has no ``-- Question:`` line or no SQL.
    """
    out = []
    for path in sorted(folder.glob("*.sql")):
        lines = path.read_text(encoding="utf-8").splitlines()
        questions = [ln for ln in lines if ln.startswith(QUESTION_PREFIX)]
        body = "\n".join(ln for ln in lines if not ln.lstrip().startswith("--")).strip()
        body = body.rstrip(";").strip()
        if not questions or not body:
            raise ConfigError(
                f"{path.name}: an example query needs a '{QUESTION_PREFIX} ...' line and one "
                "SELECT statement"
            )
        question = questions[0][len(QUESTION_PREFIX) :].strip()
        out.append(ExampleQuery(path.stem, question, body))
    return tuple(out)
