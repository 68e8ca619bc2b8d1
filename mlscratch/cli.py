"""`python -m mlscratch ...`: one entry point, one module per command group.

Each module in `mlscratch.commands` adds its sub-commands with `register(subparsers)`
and sets `func`, which returns an exit code. Errors we can explain
become one line on stderr, never a traceback: exit code 2 for settings
(`ConfigError`: a flag or value to change), 1 for data (`DataError`: a file to fix).
"""

from __future__ import annotations

import argparse
import sys

from .commands import challenge, chapters, compare, data, train, zoo
from .errors import DataError, MlscratchError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mlscratch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (data, train, zoo, compare, chapters, challenge):
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MlscratchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, DataError) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
