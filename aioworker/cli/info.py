"""``aioworker info app:worker``: queues, workers, running jobs (and limiters, schedules,
batches when those features are in use)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..inspect import Inspector
from .common import add_app_arguments, common
from .output import (
    add_json,
    duration,
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

RUNNING_SHOWN = 20

#: Columns shown per feature section (JSON output has every field).
_COLUMNS = {
    "limiters": ("name", "kind", "limit", "per_s", "keyed", "in_use", "waiting", "tasks"),
    "schedules": ("name", "task", "queue", "schedule", "next_run", "paused_at", "last_job_id"),
    "batches": ("id", "description", "total", "pending", "succeeded", "failed", "sealed"),
}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and len(value) > 19 and value[10:11] == "T":
        return value[:19].replace("T", " ")  # an ISO time, to the second
    return str(value)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "info", help="show queues, workers and running jobs", parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument(
        "-q", "--queue", action="append", dest="queues", help="only this queue (repeatable)"
    )
    add_json(p)
    p.set_defaults(handler=lambda args: run_with_worker(args, lambda w: _info(w, args)))


async def _info(worker: Worker, args: argparse.Namespace) -> int:
    insp = Inspector(worker)
    survey = await insp.survey(args.queues or None)
    stats = survey.queues
    warn_skipped(survey.skipped)
    workers = await insp.workers()
    running = []
    for q in stats:
        if q.running:
            running.extend((await insp.jobs(q.name, "running", limit=RUNNING_SHOWN)).jobs)
    extras = await insp.extras()
    if args.json:
        emit_json(
            {
                "queues": stats,
                "skipped": survey.skipped,
                "workers": workers,
                "running": running,
                **extras,
            }
        )
        return 0
    now = datetime.now(UTC)
    out(
        table(
            ("QUEUE", "READY", "SCHEDULED", "RUNNING", "DEAD", "PAUSED"),
            [
                (
                    q.name,
                    q.ready,
                    q.scheduled,
                    q.running,
                    q.dead,
                    f"since {when(q.paused_at)}" if q.paused else "no",
                )
                for q in stats
            ],
        )
    )
    out()
    out(f"WORKERS ({len(workers)} alive)")
    if workers:
        out(
            table(
                ("ID", "HOST", "PID", "QUEUES", "STATE", "UPTIME", "RUNNING", "DONE", "JOBS/S"),
                [
                    (
                        w.id,
                        w.hostname,
                        w.pid,
                        ",".join(f"{q}={n}" for q, n in w.queues.items())
                        + (f" (cap {w.concurrency})" if w.concurrency else ""),
                        w.state,
                        duration(w.uptime_s),
                        w.running,
                        w.jobs_done,
                        f"{w.jobs_per_s:.1f}",
                    )
                    for w in workers
                ],
            )
        )
    if running:
        out()
        out(f"RUNNING JOBS (up to {RUNNING_SHOWN} per queue)")
        out(
            table(
                ("QUEUE", "ID", "TASK", "ATTEMPT", "WORKER", "LEASE ENDS"),
                [
                    (
                        j.queue,
                        j.id,
                        j.task,
                        j.attempts,
                        j.worker,
                        f"in {duration((j.at - now).total_seconds())}" if j.at else "-",
                    )
                    for j in running
                ],
            )
        )
    for name, rows in extras.items():
        out()
        out(f"{name.upper()} ({len(rows)})")
        headers = [h for h in _COLUMNS.get(name, ()) if h in rows[0]] or list(rows[0])
        out(table([h.upper() for h in headers], [[_cell(r.get(h)) for h in headers] for r in rows]))
    return 0
