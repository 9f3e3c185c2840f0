"""``fedsql query`` on a terminal: the interactive shell, history, live view and terminal defaults.

The CLI runs in a subprocess whose stdin, stdout and stderr are a real pseudo-terminal, so it
sees a terminal exactly as it would under a person's shell.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedsql.cli import exits
from fedsql.cli.shell import statement_complete
from fedsql.demo.federation import DemoFederation

#: Start a session whose controlling terminal is stdin (so Ctrl-C sends SIGINT), then the CLI.
_SESSION_LEADER = (
    "import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'fedsql.cli.app', *sys.argv[1:]])"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class Terminal:
    """A subprocess attached to a pseudo-terminal: type into it and read what it shows."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SESSION_LEADER, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "COLUMNS": "120", "LINES": "40", "TERM": "xterm", **env},
            close_fds=True,
        )
        os.close(slave)
        self.screen = ""

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # the child closed the terminal
            return False
        self.screen += data.decode(errors="replace")
        return bool(data)

    def expect(self, pattern: str, timeout: float = 30.0) -> str:
        """Wait until the plain text shown since the last match contains ``pattern``."""
        deadline = time.monotonic() + timeout
        while True:
            plain = ANSI.sub("", self.screen)
            found = re.search(pattern, plain)
            if found:
                shown = plain[: found.end()]
                self.screen = plain[found.end() :]
                return shown
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.proc.poll() is not None):
                if self.proc.poll() is not None:
                    self._read(0.1)
                    plain = ANSI.sub("", self.screen)
                    if re.search(pattern, plain):
                        continue
                raise AssertionError(f"{pattern!r} never appeared; the terminal shows:\n{plain}")

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.2)
        return self.proc.wait(timeout=1)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private home and history file."""
    return {"HOME": str(tmp_path), "FEDSQL_HISTORY": str(tmp_path / "history")}


@pytest.fixture(scope="module")
def hub(noisy_federation: DemoFederation) -> str:
    return noisy_federation.target


def test_statement_completion_ignores_quoted_and_commented_semicolons() -> None:
    assert statement_complete("SELECT COUNT(*)\nFROM patients;")
    assert statement_complete("SELECT COUNT(*) FROM patients ;  \n")
    assert not statement_complete("SELECT COUNT(*)\nFROM patients")
    assert not statement_complete("SELECT COUNT(*) FROM patients WHERE sex = ';")
    assert statement_complete("SELECT COUNT(*) FROM patients WHERE sex = ';';")
    assert statement_complete("SELECT COUNT(*) FROM patients WHERE sex = 'it''s';")
    assert not statement_complete("SELECT COUNT(*) FROM patients -- ;")
    assert not statement_complete("SELECT COUNT(*) FROM patients /* ; */")
    assert statement_complete("SELECT COUNT(*) FROM patients /* ; */;")
    assert not statement_complete('SELECT COUNT(*) FROM "odd;')


def test_the_shell_runs_multi_line_sql_and_commands(hub: str, env: dict[str, str]) -> None:
    term = Terminal(["query", "--hub", hub], env)
    try:
        term.expect(r"fedsql shell: connected to .* as analyst")
        term.expect("fedsql> ")
        term.send("SELECT sex, COUNT(*) AS n\n")
        term.expect(r"\.\.\.> ")
        term.send("FROM patients\n")
        term.expect(r"\.\.\.> ")
        term.send("GROUP BY sex;\n")
        shown = term.expect("fedsql> ")
        assert re.search(r"F\s*│\s*[\d,]+ ± [\d.]+", shown), shown
        assert "epsilon spent: 1 at each answering clinic" in shown
        assert "query running" in shown  # the live view was drawn while the query ran

        term.send("\\d\n")
        shown = term.expect("fedsql> ")
        for table in ("patients", "visits", "labs"):
            assert table in shown
        term.send("\\d patients\n")
        shown = term.expect("fedsql> ")
        assert "diabetic" in shown and "BOOLEAN" in shown and "zip" not in shown

        term.send("\\format csv\n")
        term.expect("fedsql> ")
        term.send("\\epsilon 0.5\n")
        term.expect("fedsql> ")
        term.send("SELECT COUNT(*) AS n FROM patients;\n")
        shown = term.expect("fedsql> ")
        assert "n,n_margin95,suppressed" in shown
        assert "epsilon spent: 0.5" in shown

        term.send("SELECT name FROM patients;\n")
        shown = term.expect("fedsql> ")
        assert "fedsql: UnknownObject:" in shown

        term.send("explain SELECT COUNT(*) FROM labs;\n")
        shown = term.expect("fedsql> ")
        assert "partial SQL" in shown

        term.send("\\?\n")
        assert "\\q" in term.expect("fedsql> ")
        term.send("\\q\n")
        assert term.wait() == exits.OK
    finally:
        term.close()

    history = Path(env["FEDSQL_HISTORY"]).read_text()
    assert "SELECT sex, COUNT(*) AS n FROM patients GROUP BY sex;" in history
    assert "SELECT COUNT(*) AS n FROM patients;" in history


def test_history_is_recalled_in_the_next_session(hub: str, env: dict[str, str]) -> None:
    Path(env["FEDSQL_HISTORY"]).write_text("SELECT COUNT(*) AS recalled FROM labs;\n")
    term = Terminal(["query", "--hub", hub, "--format", "csv"], env)
    try:
        term.expect("fedsql> ")
        term.send("\x1b[A")  # arrow up: the last statement of the history file
        term.send("\n")
        shown = term.expect("fedsql> ")
        assert "recalled,recalled_margin95,suppressed" in shown
        term.send("\x04")  # Ctrl-D ends the shell
        assert term.wait() == exits.OK
    finally:
        term.close()


def test_ctrl_c_clears_the_statement_being_typed(hub: str, env: dict[str, str]) -> None:
    term = Terminal(["query", "--hub", hub], env)
    try:
        term.expect("fedsql> ")
        term.send("SELECT broken\n")
        term.expect(r"\.\.\.> ")
        # readline loses a signal that lands between drawing the prompt and waiting for keys,
        # so type Ctrl-C as a person would: after a moment, and again if the first was lost.
        time.sleep(0.3)
        term.send("\x03")
        try:
            term.expect(r"\^C", timeout=3)
        except AssertionError:
            term.send("\x03")
            term.expect(r"\^C")
        term.expect("fedsql> ")
        term.send("SELECT COUNT(*) AS after_interrupt FROM labs;\n")
        shown = term.expect("fedsql> ")
        assert "after_interrupt" in shown and "fedsql: " not in shown  # "broken" was dropped
        term.send("quit\n")
        assert term.wait() == exits.OK
    finally:
        term.close()


def test_a_query_on_a_terminal_prints_a_table_with_the_live_view(
    hub: str, env: dict[str, str]
) -> None:
    term = Terminal(
        ["query", "--hub", hub, "SELECT test, COUNT(*) AS n FROM labs GROUP BY test"], env
    )
    try:
        shown = term.expect("are suppressed")
        assert term.wait() == exits.OK
    finally:
        term.close()
    assert "query running" in shown
    assert re.search(r"clinic\s+state\s+budget left", shown)
    assert re.search(r"HbA1c\s*│\s*[\d,]+ ± [\d.]+", shown)
    assert "mumbai answered" in shown


def test_arrow_is_refused_on_a_terminal(hub: str, env: dict[str, str]) -> None:
    term = Terminal(["query", "--hub", hub, "--format", "arrow", "SELECT COUNT(*) FROM labs"], env)
    try:
        shown = term.expect("redirect stdout")
        assert term.wait() == exits.USAGE
    finally:
        term.close()
    assert "binary" in shown
