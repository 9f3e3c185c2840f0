"""Statement admission: text -> exactly one parsed SELECT, or a rejection naming the statement.

Admission looks at the token stream before parsing, so statements sqlglot cannot parse (or parses
as something else, e.g. ``CHECKPOINT``) are still named correctly, and a second statement hidden
after a semicolon is refused before anything else happens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.parsers.duckdb import DuckDBParser
from sqlglot.tokenizer_core import Token, TokenType

from fedsql.errors import NotSupportedError, QueryRejected, SQLSyntaxError

#: The dialect analyst SQL is written in and plans are emitted in.
DIALECT = "duckdb"

_READ_ONLY = (
    "fedsql answers read-only aggregate queries; write a SELECT with COUNT, SUM or AVG "
    "over a federated table"
)

#: Leading keywords of statements a read-only aggregate engine never runs, with what they are.
_STATEMENT_KINDS: dict[str, str] = {
    "CREATE": "DDL statement CREATE",
    "DROP": "DDL statement DROP",
    "ALTER": "DDL statement ALTER",
    "TRUNCATE": "DDL statement TRUNCATE",
    "COMMENT": "DDL statement COMMENT",
    "INSERT": "DML statement INSERT",
    "UPDATE": "DML statement UPDATE",
    "DELETE": "DML statement DELETE",
    "MERGE": "DML statement MERGE",
    "UPSERT": "DML statement UPSERT",
    "REPLACE": "DML statement REPLACE",
    "PRAGMA": "PRAGMA statement",
    "SET": "SET statement",
    "RESET": "RESET statement",
    "COPY": "COPY statement",
    "ATTACH": "ATTACH statement",
    "DETACH": "DETACH statement",
    "INSTALL": "INSTALL statement",
    "FORCE": "FORCE INSTALL statement",
    "LOAD": "LOAD statement",
    "USE": "USE statement",
    "EXPORT": "EXPORT statement",
    "IMPORT": "IMPORT statement",
    "CALL": "CALL statement",
    "CHECKPOINT": "CHECKPOINT statement",
    "VACUUM": "VACUUM statement",
    "ANALYZE": "ANALYZE statement",
    "BEGIN": "transaction statement BEGIN",
    "START": "transaction statement START",
    "COMMIT": "transaction statement COMMIT",
    "ROLLBACK": "transaction statement ROLLBACK",
    "ABORT": "transaction statement ABORT",
    "PREPARE": "PREPARE statement",
    "EXECUTE": "EXECUTE statement",
    "DEALLOCATE": "DEALLOCATE statement",
    "DESCRIBE": "DESCRIBE statement",
    "DESC": "DESCRIBE statement",
    "SHOW": "SHOW statement",
    "SUMMARIZE": "SUMMARIZE statement",
    "EXPLAIN": "EXPLAIN statement",
    "GRANT": "GRANT statement",
    "REVOKE": "REVOKE statement",
    "PIVOT": "PIVOT statement",
    "UNPIVOT": "UNPIVOT statement",
}


class _Parser(DuckDBParser):
    """The DuckDB parser, recording where each ``?`` placeholder stands in the text.

    ``?`` placeholders are bound by position, and the syntax tree does not keep argument order
    (``date_diff('day', ?, ?)`` stores its operands swapped), so each one keeps its offset.
    """

    PLACEHOLDER_PARSERS: ClassVar[dict[TokenType, Callable[[DuckDBParser], exp.Expr | None]]] = {
        **DuckDBParser.PLACEHOLDER_PARSERS,
        TokenType.PLACEHOLDER: lambda self: self.expression(exp.Placeholder(), token=self._prev),
    }


def parse_statement(sql: str) -> exp.Select:
    """Parse analyst SQL into one SELECT syntax tree, refusing every other kind of statement.

    Statements are told apart by their first keyword, before parsing; text that starts with
    anything else (``SELEC ...``) is a syntax error.

    Args:
        sql: The analyst's SQL text (DuckDB dialect), one statement, optional trailing ``;``.

    Returns:
        The parsed SELECT (parameters still unbound).

    Raises:
        SQLSyntaxError: The text does not tokenize or parse.
        NotSupportedError: DDL, DML, PRAGMA, SET, COPY, ATTACH, INSTALL, LOAD, ... (not a query).
        QueryRejected: More than one statement, a FROM-first query, a CTE, VALUES, a set
            operation or a parenthesized query.

    >>> parse_statement("SELECT COUNT(*) FROM patients;").sql("duckdb")
    'SELECT COUNT(*) FROM patients'
    """
    dialect = Dialect.get_or_raise(DIALECT)
    try:
        tokens = dialect.tokenize(sql)
    except TokenError as err:
        raise SQLSyntaxError(
            "the SQL text could not be read (unterminated string, quoted name or comment?): "
            f"{_first_line(err)}"
        ) from err
    statements = _split_statements(tokens)
    if not statements:
        raise SQLSyntaxError("the SQL text is empty; write a SELECT query")
    if len(statements) > 1:
        raise QueryRejected(
            f"the text holds {len(statements)} statements; send exactly one SELECT per query"
        )
    _admit_leading_keyword(statements[0])
    try:
        trees = _Parser(dialect=dialect).parse(statements[0], sql)
    except ParseError as err:
        raise SQLSyntaxError(_describe_parse_error(err)) from err
    tree = trees[0] if trees else None
    if tree is None:
        raise SQLSyntaxError("the SQL text is empty; write a SELECT query")
    return _as_select(tree)


def _split_statements(tokens: list[Token]) -> list[list[Token]]:
    """Group tokens into statements separated by semicolons, dropping empty ones."""
    statements: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    return [s for s in statements if s]


def _admit_leading_keyword(tokens: list[Token]) -> None:
    """Refuse statements by their first keyword (after any opening parentheses)."""
    lead = next((t for t in tokens if t.token_type != TokenType.L_PAREN), tokens[0])
    word = lead.text.upper()
    if lead.token_type == TokenType.SELECT:
        return
    if lead.token_type in (TokenType.FROM, TokenType.TABLE):
        raise QueryRejected(
            "FROM-first queries (FROM t, FROM t SELECT ..., TABLE t) are not supported; "
            "write SELECT <aggregates> FROM t"
        )
    if lead.token_type == TokenType.WITH:
        return
    if lead.token_type == TokenType.VALUES:
        raise QueryRejected("VALUES lists are not supported; write a SELECT over a federated table")
    kind = _STATEMENT_KINDS.get(word)
    if kind is not None:
        raise NotSupportedError(f"{kind} is not supported: {_READ_ONLY}")
    raise SQLSyntaxError(
        f"the text starts with {lead.text[:40]!r}, which does not begin a SQL statement; "
        "write a SELECT query"
    )


def _as_select(tree: exp.Expr) -> exp.Select:
    """The tree as a SELECT, or the rejection naming what it is instead."""
    if isinstance(tree, exp.Select):
        return tree
    if isinstance(tree, exp.SetOperation):
        name = {exp.Union: "UNION", exp.Intersect: "INTERSECT", exp.Except: "EXCEPT"}.get(
            type(tree), "set operation"
        )
        raise QueryRejected(
            f"{name} is not supported; run each SELECT as its own query "
            "(or combine conditions with OR in one WHERE)"
        )
    if isinstance(tree, exp.Subquery):
        raise QueryRejected(
            "a parenthesized query is not supported; write the SELECT without parentheses"
        )
    raise NotSupportedError(f"{tree.key.upper()} statement is not supported: {_READ_ONLY}")


def _describe_parse_error(err: ParseError) -> str:
    """A one-line syntax error message with line and column, without terminal escape codes."""
    if err.errors:
        first = err.errors[0]
        description = _tidy(str(first.get("description") or "invalid syntax"))
        near = first.get("highlight")
        if near:
            description += f" near {str(near)[:40]!r}"
        line, col = first.get("line"), first.get("col")
        if line is not None and col is not None:
            return f"syntax error at line {line}, column {col}: {description}"
        return f"syntax error: {description}"
    return f"syntax error: {_tidy(_first_line(err))}"


def _tidy(description: str) -> str:
    """Replace parser internals (class and token reprs) in a parser message by plain words.

    >>> _tidy("Required keyword: 'this' missing for <class 'sqlglot.expressions.core.Paren'>")
    "Required keyword: 'this' missing for Paren"
    >>> _tidy("Expected table name but got <Token token_type: TokenType.SENTINEL, text: X>")
    'Expected table name but got end of input'
    """
    description = re.sub(r"<class '(?:[\w]+\.)*(\w+)'>", r"\1", description)
    description = re.sub(
        r"<Token token_type: TokenType\.SENTINEL[^>]*>", "end of input", description
    )
    return re.sub(r"<Token token_type: TokenType\.\w+, text: ([^,>]*)[^>]*>", r"'\1'", description)


def _first_line(err: Exception) -> str:
    """The first line of an exception's message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
