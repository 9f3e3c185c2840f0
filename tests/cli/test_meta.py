"""Every CLI command has a test that runs it."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from fedsql.cli.app import app


def _command_paths() -> list[str]:
    root = get_command(app)
    out = []
    for name, cmd in getattr(root, "commands", {}).items():
        subs = getattr(cmd, "commands", None)
        if subs:
            out.extend(f"{name} {sub}" for sub in subs)
        else:
            out.append(name)
    return out


def test_every_command_is_exercised_by_a_test() -> None:
    tests = "\n".join(
        p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_meta.py"
    )
    for path in _command_paths():
        words = path.split()
        assert all(f'"{w}"' in tests for w in words), f"no test runs `fedsql {path}`"
