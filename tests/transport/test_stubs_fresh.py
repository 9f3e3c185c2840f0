"""The checked-in protobuf and gRPC stubs are what fedsql.proto generates today."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from fedsql.transport.proto import generate

_VERSION_LINES = re.compile(r"^(# Protobuf Python Version: .*|GRPC_GENERATED_VERSION = .*)$")
_VERSION_ARGUMENT = re.compile(r"^\s*(\d+|'[^']*'),$")


def normalise(text: str) -> list[str]:
    """The file's lines, with the lines that carry generator version numbers masked.

    These are the "Protobuf Python Version" comment, the gRPC stub's GRPC_GENERATED_VERSION and
    the major, minor, patch and suffix arguments of ValidateProtobufRuntimeVersion.
    """
    out: list[str] = []
    in_version_call = False
    for line in text.splitlines():
        if "ValidateProtobufRuntimeVersion(" in line:
            in_version_call = True
        elif in_version_call and line.strip() == ")":
            in_version_call = False
        elif (in_version_call and _VERSION_ARGUMENT.match(line)) or _VERSION_LINES.match(line):
            line = "<version>"
        out.append(line)
    return out


def test_normalise_masks_only_version_lines() -> None:
    text = (
        "# Protobuf Python Version: 7.35.1\n"
        "_runtime_version.ValidateProtobufRuntimeVersion(\n"
        "    _runtime_version.Domain.PUBLIC,\n    7,\n    35,\n    1,\n    '',\n"
        "    'fedsql.proto'\n)\n"
        "x = 1,\n"
        "GRPC_GENERATED_VERSION = '1.85.1'\n"
    )

    assert normalise(text) == [
        "<version>",
        "_runtime_version.ValidateProtobufRuntimeVersion(",
        "    _runtime_version.Domain.PUBLIC,",
        "<version>",
        "<version>",
        "<version>",
        "<version>",
        "    'fedsql.proto'",
        ")",
        "x = 1,",
        "<version>",
    ]


def test_checked_in_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    written = generate.generate(tmp_path)

    assert [p.name for p in written] == list(generate.GENERATED_FILES)
    stale = []
    for name in generate.GENERATED_FILES:
        checked_in = generate.PROTO_DIR / name
        if not checked_in.is_file():
            stale.append(f"{name} is missing")
            continue
        fresh = normalise((tmp_path / name).read_text(encoding="utf-8"))
        current = normalise(checked_in.read_text(encoding="utf-8"))
        if fresh != current:
            diff = difflib.unified_diff(
                current, fresh, f"checked-in {name}", f"fresh {name}", n=1, lineterm=""
            )
            stale.append("\n".join(list(diff)[:40]))
    if stale:
        pytest.fail(
            "the generated stubs are out of date with fedsql.proto; regenerate them with "
            f"`{generate.REGENERATE_COMMAND}` and commit the result\n\n" + "\n\n".join(stale)
        )


def test_the_grpc_modules_import_their_sibling_relatively() -> None:
    for name in ("fedsql_pb2_grpc.py", "fedsql_pb2_grpc.pyi"):
        text = (generate.PROTO_DIR / name).read_text(encoding="utf-8")
        assert "from . import fedsql_pb2 as" in text
        assert re.search(r"^import fedsql_pb2\b", text, re.MULTILINE) is None
