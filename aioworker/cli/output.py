"""Output of the inspection commands: tables for people, JSON for scripts, and the
confirmation asked before destructive actions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..inspect import to_jsonable
from ..skipped import SkippedQueue
from .common import EXIT_FAILED, EXIT_USAGE, load_worker, run_async

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = (
    "Aborted",
    "Refused",
    "add_json",
    "add_yes",
    "ago",
    "confirm",
    "duration",
    "emit_json",
    "out",
    "run_with_worker",
    "table",
    "warn_skipped",
    "when",
)


class Refused(Exception):
    """A destructive command was not confirmed and cannot ask (stdin is not a terminal)."""


class Aborted(Exception):
    """The person at the terminal answered no."""


def out(text: str = "") -> None:
    """Write a line to stdout."""
    sys.stdout.write(text + "\n")


def warn_skipped(skipped: Sequence[SkippedQueue]) -> None:
    """One warning line on stderr per queue an inspection left out."""
    for s in skipped:
        sys.stderr.write(f"warning: queue {s.name!r} skipped: {s.reason}\n")


def emit_json(data: Any) -> None:
    """Write data (dataclasses welcome) as indented JSON to stdout."""
    sys.stdout.write(
        orjson.dumps(to_jsonable(data), option=orjson.OPT_INDENT_2, default=str).decode() + "\n"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table with aligned columns."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def duration(seconds: float) -> str:
    """``4s``, ``3m12s``, ``2h05m``, ``3d04h``."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def when(dt: datetime | None) -> str:
    """A UTC time to the second, or ``-``."""
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt is not None else "-"


def ago(dt: datetime | None, now: datetime) -> str:
    """``5s ago`` / ``in 3m10s`` relative to ``now``."""
    if dt is None:
        return "-"
    delta = (now - dt).total_seconds()
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(-delta)}"


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-y", "--yes", action="store_true", help="do it without asking for confirmation"
    )


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive action.

    :param question: what will be done, as a question.
    :param yes: ``--yes`` was given: do not ask.
    :raises Refused: stdin is not a terminal and ``--yes`` was not given.
    :raises Aborted: the answer was not yes.
    """
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(f"{question} Refusing without --yes (stdin is not a terminal).")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise Aborted("aborted; nothing was changed")


def run_with_worker(args: argparse.Namespace, fn: Callable[[Worker], Awaitable[int]]) -> int:
    """Load the app's worker, run ``fn(worker)`` and close the connection; refusals and
    aborts exit with status 2 and 1."""

    async def main() -> int:
        worker = load_worker(args)
        try:
            return await fn(worker)
        finally:
            await worker.close()

    try:
        return run_async(main)
    except Refused as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_USAGE
    except Aborted as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_FAILED
