"""The interactive shell of ``fedsql query`` on a terminal: multi-line SQL, history, commands."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from types import ModuleType

from rich.console import Console
from rich.table import Table

from fedsql.cli.exits import describe
from fedsql.cli.render import FORMATS
from fedsql.cli.runner import Settings, run_explain, run_query
from fedsql.dbapi.connection import Connection
from fedsql.errors import Error

PROMPT = "fedsql> "
CONTINUATION = "   ...> "
#: Environment variable naming the history file.
HISTORY_ENV = "FEDSQL_HISTORY"
#: Entries kept in the history file.
HISTORY_LENGTH = 1000
#: Formats the shell can print (Arrow is binary, not for a terminal).
SHELL_FORMATS = tuple(f for f in FORMATS if f != "arrow")

HELP = """Enter SQL ending with ; (it may span several lines). Each query spends epsilon.
  explain SQL;    show the plan and its cost without running it
  \\d              list the tables you can query
  \\d TABLE        describe a table's columns
  \\format [FMT]   show or set the output format (table, csv, json, jsonl, markdown)
  \\epsilon [E]    show or set the epsilon of the next queries
  \\?              this help
  \\q              quit (or Ctrl-D)"""


def history_path() -> Path:
    """``$FEDSQL_HISTORY``, else ``$XDG_STATE_HOME/fedsql/history``, else
    ``~/.local/state/fedsql/history``."""
    explicit = os.environ.get(HISTORY_ENV)
    if explicit:
        return Path(explicit)
    state_home = os.environ.get("XDG_STATE_HOME")
    base = Path(state_home) if state_home else Path.home() / ".local" / "state"
    return base / "fedsql" / "history"


def statement_complete(text: str) -> bool:
    """True when ``text`` ends with a ``;`` outside quotes and comments.

    >>> statement_complete("SELECT COUNT(*) FROM t;")
    True
    >>> statement_complete("SELECT COUNT(*) FROM t WHERE name = 'a;")
    False
    >>> statement_complete("SELECT COUNT(*) FROM t; -- done")
    True
    >>> statement_complete("SELECT COUNT(*) /* ; */ FROM t")
    False
    """
    quote: str | None = None
    line_comment = block_comment = False
    last = ""
    i = 0
    while i < len(text):
        char = text[i]
        if line_comment:
            line_comment = char != "\n"
        elif block_comment:
            if text.startswith("*/", i):
                block_comment = False
                i += 1
        elif quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif text.startswith("--", i):
            line_comment = True
        elif text.startswith("/*", i):
            block_comment = True
            i += 1
        elif not char.isspace():
            last = char
        i += 1
    return quote is None and not block_comment and last == ";"


def _strip_statement(text: str) -> str:
    """The statement without surrounding blanks and its final semicolons."""
    return text.strip().rstrip(";").strip()


class _History:
    """Line editing and a persistent history through ``readline``, when it is available."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._readline: ModuleType | None
        try:
            import readline
        except ImportError:  # pragma: no cover - readline exists on every supported platform
            self._readline = None
            return
        self._readline = readline
        readline.set_auto_history(False)
        readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):
            readline.read_history_file(str(path))

    def add(self, entry: str) -> None:
        """Remember one statement (a multi-line statement is one entry)."""
        if self._readline is None:
            return
        self._readline.add_history(entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self.path.touch(mode=0o600)
            self._readline.append_history_file(1, str(self.path))
            self._readline.set_history_length(HISTORY_LENGTH)
        except OSError:
            pass


class Shell:
    """A read-eval-print loop over one connection."""

    def __init__(self, conn: Connection, settings: Settings) -> None:
        """A shell that runs queries on ``conn`` printed as ``settings`` says."""
        self.conn = conn
        self.settings = settings
        self.out = Console()
        self.err = Console(stderr=True)
        self.history = _History(history_path())

    def run(self) -> int:
        """Read statements until ``\\q`` or end of input; returns the exit code (0)."""
        self.err.print(
            f"fedsql shell: connected to {self.conn.target} as {self.conn.analyst}. "
            "End SQL with ;  \\? for help, \\q to quit.",
            markup=False,
            highlight=False,
        )
        buffer: list[str] = []
        while True:
            try:
                line = input(CONTINUATION if buffer else PROMPT)
            except EOFError:
                sys.stdout.write("\n")
                return 0
            except KeyboardInterrupt:
                sys.stdout.write("^C\n")
                buffer.clear()
                continue
            stripped = line.strip()
            if not buffer:
                if not stripped:
                    continue
                if stripped.startswith("\\"):
                    self.history.add(stripped)
                    if not self.command(stripped):
                        return 0
                    continue
                if stripped.lower() in ("quit", "exit", "quit;", "exit;"):
                    return 0
            buffer.append(line)
            text = "\n".join(buffer)
            if not statement_complete(text):
                continue
            buffer.clear()
            self.history.add(" ".join(part.strip() for part in text.splitlines() if part.strip()))
            self.statement(_strip_statement(text))

    def statement(self, sql: str) -> None:
        """Run (or explain) one statement and print the result or the error."""
        if not sql:
            return
        try:
            head, _, rest = sql.partition(" ")
            if head.lower() == "explain" and rest.strip():
                run_explain(self.conn, rest.strip(), self.settings)
            else:
                run_query(self.conn, sql, self.settings)
        except Error as exc:
            self.err.print(describe(exc), markup=False, highlight=False)
        except KeyboardInterrupt:
            self.err.print("query interrupted", markup=False)

    def command(self, text: str) -> bool:
        """Run one backslash command; False when the shell should quit."""
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("\\q", "\\quit"):
            return False
        if name in ("\\?", "\\h", "\\help"):
            self.out.print(HELP, markup=False, highlight=False)
        elif name == "\\d":
            self._describe(arg)
        elif name == "\\format":
            if not arg:
                self.out.print(f"format: {self.settings.fmt}")
            elif arg in SHELL_FORMATS:
                self.settings.fmt = arg
            else:
                self.err.print(f"unknown format {arg!r}; use one of {', '.join(SHELL_FORMATS)}")
        elif name == "\\epsilon":
            self._epsilon(arg)
        else:
            self.err.print(f"unknown command {name}; \\? lists the commands", markup=False)
        return True

    def _epsilon(self, arg: str) -> None:
        if not arg:
            shown = "the federation's default" if self.settings.epsilon is None else None
            self.out.print(f"epsilon: {shown or self.settings.epsilon}")
            return
        try:
            value = float(arg)
        except ValueError:
            value = -1.0
        if not value > 0 or value == float("inf"):
            self.err.print("epsilon must be a positive number")
            return
        self.settings.epsilon = value

    def _describe(self, name: str) -> None:
        try:
            catalog = self.conn.catalog()
        except Error as exc:
            self.err.print(describe(exc), markup=False, highlight=False)
            return
        if not name:
            table = Table("table", "columns", "description", title=catalog.fed_id)
            for t in catalog.tables:
                table.add_row(t.name, str(len(t.columns)), t.description)
            self.out.print(table)
            return
        found = next((t for t in catalog.tables if t.name == name.lower()), None)
        if found is None:
            names = ", ".join(t.name for t in catalog.tables) or "none"
            self.err.print(f"no table {name!r} can be queried; tables: {names}", markup=False)
            return
        table = Table("column", "type", "GROUP BY", "SUM/AVG", "description", title=found.name)
        for col in found.columns:
            table.add_row(
                col.name,
                col.type,
                "yes" if col.groupable else "",
                "yes" if col.aggregable else "",
                col.description,
            )
        self.out.print(table)
