"""``aioworker cancel app:worker ID...``: cancel jobs.

Queued and scheduled jobs are removed and marked cancelled at once; a running job's
worker is told and cancels it at its next check (about ``lease_timeout / 4``).  See
:mod:`aioworker.cancellation` for the exact semantics.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..admin import Admin, CancelResult
from ..inspect import Inspector
from ..job import JobStatus
from .common import EXIT_FAILED, add_app_arguments, common
from .output import add_json, add_yes, confirm, emit_json, out, run_with_worker

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)

_TEXT = {
    "cancelled": "cancelled (it was {where})",
    "requested": "cancel requested: it is running; its worker cancels it at its next check",
    "dead": "not cancelled: it is dead-lettered (use `aioworker dead purge`)",
    "finished": "not cancelled: it has finished already",
    "missing": "not found",
}


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "cancel", help="cancel queued, scheduled or running jobs", parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument("ids", nargs="+", metavar="ID", help="job ids")
    p.add_argument("--queue", default=None, help="the jobs' queue (default: look them up)")
    add_yes(p)
    add_json(p)
    p.set_defaults(handler=lambda args: run_with_worker(args, lambda w: _cancel(w, args)))


async def _cancel(worker: Worker, args: argparse.Namespace) -> int:
    confirm(f"Cancel {len(args.ids)} job(s)?", args.yes)
    admin = Admin(worker)
    insp = Inspector(worker)
    results: list[CancelResult] = []
    for job_id in args.ids:
        queue = args.queue
        if queue is None:
            found = await insp.find(job_id)
            queue = found.queue
            if found.status is JobStatus.NOT_FOUND:
                results.append(CancelResult(job_id, queue, "missing", "missing"))
                continue
        results.append(await admin.cancel(queue, job_id))
    if args.json:
        emit_json(results)
    else:
        for r in results:
            out(f"job {r.id} (queue {r.queue}): " + _TEXT[r.outcome].format(where=r.where))
    return EXIT_FAILED if any(r.outcome == "missing" for r in results) else 0
