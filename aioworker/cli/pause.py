"""``aioworker pause|resume app:worker QUEUE``: stop and restart leasing a queue's jobs.

While a queue is paused, workers lease none of its jobs; running jobs go on, enqueues
are accepted and due scheduled jobs become ready.  Resuming wakes idle workers at once.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..admin import Admin
from .common import add_app_arguments, common
from .output import add_json, emit_json, out, run_with_worker

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)


def register(sub: Any) -> None:
    for name, text in (("pause", "pause a queue"), ("resume", "resume a paused queue")):
        p: argparse.ArgumentParser = sub.add_parser(name, help=text, parents=[common()])
        add_app_arguments(p)
        p.add_argument("queue", help="the queue")
        add_json(p)
        p.set_defaults(
            handler=lambda args, paused=(name == "pause"): run_with_worker(
                args, lambda w: _pause(w, args, paused)
            )
        )


async def _pause(worker: Worker, args: argparse.Namespace, paused: bool) -> int:
    admin = Admin(worker)
    changed = await (admin.pause(args.queue) if paused else admin.resume(args.queue))
    if args.json:
        emit_json({"queue": args.queue, "paused": paused, "changed": changed})
    elif paused:
        out(f"queue {args.queue} paused" if changed else f"queue {args.queue} was paused already")
    else:
        out(f"queue {args.queue} resumed" if changed else f"queue {args.queue} was not paused")
    return 0
