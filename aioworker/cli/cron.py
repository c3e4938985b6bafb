"""``aioworker cron list|pause|resume|run app:worker [NAME]``: the app's periodic schedules.

- ``list``: every schedule with its expression, zone, state, last tick and next run;
- ``pause NAME``: stop enqueueing its ticks (they are skipped, never run later);
- ``resume NAME``: enqueue its ticks again, from the first tick after now;
- ``run NAME``: enqueue one job of it now (also while paused); prints the job id.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ConfigError
from .common import add_app_arguments, common, load_worker, run_async

if TYPE_CHECKING:
    from ..cron import ScheduleInfo
    from ..worker import Worker

__all__ = ("register",)

ACTIONS = ("list", "pause", "resume", "run")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "cron",
        help="list, pause, resume or run the app's periodic schedules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common()],
    )
    p.add_argument("action", choices=ACTIONS)
    add_app_arguments(p)
    p.add_argument("name", nargs="?", help="the schedule (for pause, resume and run)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    async def main() -> int:
        worker = load_worker(args)
        try:
            return await _cron(worker, args)
        finally:
            await worker.close()

    return run_async(main)


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def emit_json(data: Any) -> None:
    """Dataclasses and datetimes as JSON (orjson encodes both natively)."""
    out(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def when(dt: datetime | None) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S") if dt is not None else "-"


def ago(dt: datetime, now: datetime) -> str:
    s = (now - dt).total_seconds()
    n = abs(s)
    text = (
        f"{n:.1f}s" if n < 60 else f"{n / 60:.0f}m" if n < 3600 else
        f"{n / 3600:.1f}h" if n < 86400 else f"{n / 86400:.1f}d"
    )  # fmt: skip
    return f"{text} ago" if s >= 0 else f"in {text}"


async def _cron(worker: Worker, args: argparse.Namespace) -> int:
    sched = worker.scheduler
    if args.action == "list":
        infos = await sched.list()
        if args.json:
            emit_json(infos)
        elif not infos:
            out("no periodic schedules")
        else:
            out(_table(infos, datetime.now(UTC)))
        return 0
    if not args.name:
        raise ConfigError(f"aioworker cron {args.action} needs the schedule's name")
    if args.action == "run":
        handle = await sched.run_now(args.name)
        if args.json:
            emit_json({"schedule": args.name, "job_id": handle.id, "queue": handle.queue})
        else:
            out(f"enqueued job {handle.id} of schedule {args.name} on queue {handle.queue}")
        return 0
    info = await (sched.pause(args.name) if args.action == "pause" else sched.resume(args.name))
    if args.json:
        emit_json(info)
    elif info.paused:
        out(f"schedule {info.name} paused since {when(info.paused_at)} UTC")
    else:
        out(f"schedule {info.name} resumed; next run {when(info.next_run)} UTC")
    return 0


def _table(infos: list[ScheduleInfo], now: datetime) -> str:
    rows = [
        (
            i.name,
            i.schedule,
            i.tz,
            i.queue,
            "paused" if i.paused else "active",
            f"{when(i.last_tick)} ({ago(i.last_tick, now)})" if i.last_tick else "-",
            f"{when(i.next_run)} ({ago(i.next_run, now)})" if i.next_run else "-",
        )
        for i in infos
    ]
    headers = ("NAME", "SCHEDULE", "TZ", "QUEUE", "STATE", "LAST TICK (UTC)", "NEXT RUN (UTC)")
    cells = [list(headers), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )
