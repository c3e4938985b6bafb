"""The ``aioworker`` command line.

Each command lives in its own module of this package with a ``register(subparsers)``
function that adds its parser and sets ``handler`` (a function of the parsed arguments
returning the exit status).  Exit statuses: 0 done, 1 the command failed, 2 usage,
import or configuration error, 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from ..logs import setup_logging
from . import batch, bench, cancel, cron, dashboard, dead, enqueue, info, jobs, pause, run

__all__ = ("main",)

#: Modules of this package that add commands, in the order they appear in --help.
COMMANDS = (run, bench, info, jobs, enqueue, cancel, pause, dead, cron, batch, dashboard)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aioworker", description="asyncio worker runtime on Redis"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
