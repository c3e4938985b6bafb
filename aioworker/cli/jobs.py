"""``aioworker jobs app:worker`` lists jobs; ``aioworker jobs show app:worker ID`` shows one.

Lists read a page per queue and state (``--limit``, ``--offset``): ready jobs next to run
first, scheduled soonest first, running by lease deadline, dead newest first.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConfigError
from ..inspect import STATES, Inspector, JobDetail, JobPage
from ..job import JobStatus
from ..skipped import SkippedQueue
from .common import EXIT_FAILED, EXIT_USAGE, common
from .output import (
    add_json,
    ago,
    emit_json,
    out,
    run_with_worker,
    table,
    warn_skipped,
    when,
)

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "jobs",
        help="list jobs, or show one: jobs APP [--state S] | jobs show APP ID",
        parents=[common()],
        usage="aioworker jobs [show] APP [ID] [options]",
    )
    p.add_argument(
        "words",
        nargs="+",
        metavar="[show] APP [ID]",
        help='the Worker as "module:attribute"; "show APP ID" shows one job',
    )
    p.add_argument("--redis-url", default=None, help="Redis URL (default $AIOWORKER_REDIS_URL)")
    p.add_argument("--queue", action="append", dest="queues", help="only this queue")
    p.add_argument("--state", choices=STATES, action="append", dest="states", help="only this")
    p.add_argument("--limit", type=int, default=20, help="jobs per queue and state (20)")
    p.add_argument("--offset", type=int, default=0, help="skip this many first")
    add_json(p)
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    words: list[str] = args.words
    if words[0] == "show":
        if len(words) != 3:
            sys.stderr.write("usage: aioworker jobs show APP ID [--queue Q]\n")
            return EXIT_USAGE
        args.app, args.job_id = words[1], words[2]
        return run_with_worker(args, lambda w: _show(w, args))
    if words[0] == "list":
        words = words[1:]
    if len(words) != 1:
        sys.stderr.write("usage: aioworker jobs APP [--queue Q] [--state S] [--limit N]\n")
        return EXIT_USAGE
    args.app = words[0]
    return run_with_worker(args, lambda w: _list(w, args))


async def _list(worker: Worker, args: argparse.Namespace) -> int:
    if args.limit < 0 or args.offset < 0:
        raise ConfigError("--limit and --offset must not be negative")
    insp = Inspector(worker)
    skipped: list[SkippedQueue] = []
    if args.queues:
        names = args.queues
    else:
        names, skipped = await insp.known_queues()
    pages: list[JobPage]
    pages, unread = await insp.pages(
        names, args.states or STATES, offset=args.offset, limit=args.limit
    )
    warn_skipped(skipped + unread)
    if args.json:
        emit_json(pages)
        return 0
    now = datetime.now(UTC)
    shown = 0
    for page in pages:
        if not page.total and not args.states:
            continue
        shown += 1
        first = page.offset + 1 if page.jobs else 0
        out(
            f"{page.queue} / {page.state}: {page.total} job(s)"
            + (f", showing {first}-{page.offset + len(page.jobs)}" if page.total else "")
        )
        if page.jobs:
            out(
                table(
                    ("ID", "TASK", "ATTEMPTS", "ENQUEUED", _at_header(page.state), "DETAIL"),
                    [
                        (
                            j.id,
                            j.task,
                            j.attempts,
                            ago(j.enqueued_at, now),
                            ago(j.at, now),
                            _detail(j.worker, j.error_type, j.error_message),
                        )
                        for j in page.jobs
                    ],
                )
            )
        out()
    if not shown:
        out("no jobs")
    return 0


def _at_header(state: str) -> str:
    return {"scheduled": "RUNS", "running": "LEASE ENDS", "dead": "DIED"}.get(state, "-")


def _detail(worker: str | None, etype: str | None, message: str | None) -> str:
    if worker:
        return f"on {worker}"
    if etype:
        text = f"{etype}: {message or ''}".replace("\n", " ")
        return text if len(text) <= 80 else text[:77] + "..."
    return ""


async def _show(worker: Worker, args: argparse.Namespace) -> int:
    insp = Inspector(worker)
    d = await insp.find(args.job_id, args.queues)
    if args.json:
        emit_json(d)
    else:
        _print_detail(d)
    return EXIT_FAILED if d.status is JobStatus.NOT_FOUND else 0


def _j(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def _print_detail(d: JobDetail) -> None:
    rows: list[tuple[str, str]] = [
        ("id", d.id),
        ("queue", d.queue),
        ("status", d.status.value),
    ]
    if d.status is JobStatus.NOT_FOUND:
        out(f"job {d.id} not found (never enqueued, or its result expired)")
        return
    rows += [
        ("task", d.task or "-"),
        ("args", _j(d.args) if d.args is not None else "-"),
        ("kwargs", _j(d.kwargs) if d.kwargs is not None else "-"),
        ("attempts", str(d.attempts)),
        ("enqueued", when(d.enqueued_at)),
    ]
    if d.scheduled_at:
        rows.append(("runs at", when(d.scheduled_at)))
    if d.finished_at:
        rows.append(("finished", when(d.finished_at)))
    if d.worker:
        rows.append(("worker", d.worker))
    if d.cancel_requested:
        rows.append(("cancel", "requested"))
    if d.status is JobStatus.COMPLETE:
        rows.append(("result", _j(d.result)))
    if d.checkpoint is not None:
        rows.append(("checkpoint", _j(d.checkpoint)))
    if d.steps:
        rows.append(("steps done", ", ".join(d.steps)))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        out(f"{k.ljust(width)}  {v}")
    if d.error:
        out()
        out(f"error: {d.error.get('type')}: {d.error.get('message')}")
        tb = str(d.error.get("traceback") or "").rstrip()
        if tb:
            out(tb)
