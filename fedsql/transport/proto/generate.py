"""Regenerates the checked-in protobuf and gRPC stubs from ``fedsql.proto``.

Run ``python -m fedsql.transport.proto.generate`` after editing ``fedsql.proto``. It writes
``fedsql_pb2.py`` and ``fedsql_pb2_grpc.py`` (grpcio-tools) with their typing stubs
``fedsql_pb2.pyi`` and ``fedsql_pb2_grpc.pyi`` (mypy-protobuf) next to the ``.proto`` file, and
makes the gRPC modules' import of ``fedsql_pb2`` package-relative.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from fedsql.errors import OperationalError

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = "fedsql.proto"
#: The files :func:`generate` writes, in the order it reports them.
GENERATED_FILES = ("fedsql_pb2.py", "fedsql_pb2.pyi", "fedsql_pb2_grpc.py", "fedsql_pb2_grpc.pyi")
REGENERATE_COMMAND = "python -m fedsql.transport.proto.generate"

#: The absolute import of ``fedsql_pb2`` each gRPC file is generated with.
_ABSOLUTE_IMPORTS = {
    "fedsql_pb2_grpc.py": "import fedsql_pb2 as fedsql__pb2\n",
    "fedsql_pb2_grpc.pyi": "import fedsql_pb2 as _fedsql_pb2\n",
}


def plugin(name: str) -> Path:
    """Locate a protoc plugin of mypy-protobuf (``protoc-gen-mypy`` or ``protoc-gen-mypy_grpc``).

    It is looked for next to the running interpreter first (a virtual environment's ``bin``), then
    on ``PATH``.

    Args:
        name: The plugin's executable name.

    Returns:
        The plugin's path.

    Raises:
        OperationalError: mypy-protobuf is not installed.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return beside
    found = shutil.which(name)
    if found is None:
        raise OperationalError(
            f"{name} not found; install the test extra (pip install -e '.[test]') "
            "to get grpcio-tools and mypy-protobuf"
        )
    return Path(found)


def make_import_relative(source: str, absolute_import: str) -> str:
    """Make a generated gRPC file import its sibling ``fedsql_pb2`` relative to its package.

    Args:
        source: Text of the generated file.
        absolute_import: The line to rewrite, as generated (``import fedsql_pb2 as ...``).

    Returns:
        The same text with that one line rewritten to ``from . import fedsql_pb2 as ...``.

    Raises:
        OperationalError: The line is missing (the generator changed its output).

    >>> make_import_relative("x = 1\\nimport fedsql_pb2 as pb\\n", "import fedsql_pb2 as pb\\n")
    'x = 1\\nfrom . import fedsql_pb2 as pb\\n'
    """
    if absolute_import not in source:
        raise OperationalError(
            f"no line {absolute_import.strip()!r} to make relative; update "
            "fedsql.transport.proto.generate for this grpcio-tools or mypy-protobuf version"
        )
    return source.replace(absolute_import, "from . " + absolute_import, 1)


def generate(out_dir: Path = PROTO_DIR) -> tuple[Path, ...]:
    """Compile ``fedsql.proto`` into Python and gRPC modules with their typing stubs.

    Args:
        out_dir: Folder to write the stubs to (an existing folder); by default the package's own,
            next to ``fedsql.proto``.

    Returns:
        The paths written, in the order of :data:`GENERATED_FILES`.

    Raises:
        OperationalError: grpcio-tools or mypy-protobuf is missing, or protoc failed.
    """
    try:
        from grpc_tools import protoc
    except ImportError as exc:
        raise OperationalError(
            "grpcio-tools is not installed; install the test extra (pip install -e '.[test]')"
        ) from exc
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_DIR}",
        f"--plugin=protoc-gen-mypy={plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        str(PROTO_DIR / PROTO_FILE),
    ]
    status = protoc.main(args)
    if status != 0:
        raise OperationalError(f"protoc failed on {PROTO_FILE} with exit status {status}")
    for name, absolute_import in _ABSOLUTE_IMPORTS.items():
        path = out_dir / name
        text = make_import_relative(path.read_text(encoding="utf-8"), absolute_import)
        path.write_text(text, encoding="utf-8")
    return tuple(out_dir / name for name in GENERATED_FILES)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: regenerate the stubs and list the files written.

    Args:
        argv: Arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=PROTO_DIR,
        help="folder to write the stubs to (default: next to fedsql.proto)",
    )
    ns = parser.parse_args(argv)
    for path in generate(ns.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
