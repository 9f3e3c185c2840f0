"""Statement admission: one SELECT in, everything else named and refused before parsing."""

from __future__ import annotations

import pytest
from sqlglot import exp

from fedsql.errors import NotSupportedError, QueryRejected, SQLSyntaxError
from fedsql.sql.statement import parse_statement


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM patients",
        "select count(*) from patients;",
        "  -- a comment\n/* another */ SELECT COUNT(*) FROM patients ;; ",
        "SELECT COUNT(*) FROM patients WHERE name = 'a;b' -- ; DROP TABLE x",
    ],
)
def test_one_select_is_admitted(sql: str) -> None:
    assert isinstance(parse_statement(sql), exp.Select)


def test_semicolon_inside_a_string_does_not_split() -> None:
    tree = parse_statement("SELECT COUNT(*) FROM patients WHERE name = 'x; DROP TABLE patients'")
    literal = tree.find(exp.Literal)
    assert literal is not None and literal.this == "x; DROP TABLE patients"


def test_a_hidden_second_statement_is_refused() -> None:
    with pytest.raises(QueryRejected, match="2 statements"):
        parse_statement("SELECT COUNT(*) FROM patients; /* x */ DELETE FROM patients")


def test_statements_are_named_even_when_they_do_not_parse() -> None:
    with pytest.raises(NotSupportedError, match="EXPORT statement"):
        parse_statement("EXPORT DATABASE 'somewhere' (FORMAT PARQUET)")


def test_syntax_errors_say_where() -> None:
    with pytest.raises(SQLSyntaxError, match=r"line 2, column \d+"):
        parse_statement("SELECT COUNT(*)\nFROM patients WHERE")


def test_qmark_placeholders_remember_their_offset() -> None:
    sql = "SELECT COUNT(*) FROM t WHERE a = ? AND b = ?"
    holders = list(parse_statement(sql).find_all(exp.Placeholder))
    assert sorted(h.meta["start"] for h in holders) == [sql.index("?"), sql.rindex("?")]
