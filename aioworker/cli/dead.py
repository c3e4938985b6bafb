"""``aioworker dead retry|purge app:worker --queue Q (--all | ID... | --task NAME)``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..admin import Admin
from ..errors import ConfigError
from ..logs import setup_logging
from .common import add_app_arguments, common
from .output import add_json, add_yes, confirm, emit_json, out, run_with_worker

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)


def register(sub: Any) -> None:
    dead: argparse.ArgumentParser = sub.add_parser(
        "dead",
        help="retry or purge dead-lettered jobs",
        parents=[common()],
        usage="aioworker dead {retry,purge} APP [ID ...] --queue Q [--all | --task NAME]",
        add_help=False,
    )
    dead.add_argument("action", choices=("retry", "purge"))
    dead.add_argument("rest", nargs=argparse.REMAINDER)
    dead.set_defaults(handler=_handle)


def _parser(action: str) -> argparse.ArgumentParser:
    text = {
        "retry": "put dead jobs back in their queue with fresh attempts",
        "purge": "delete dead jobs for good",
    }[action]
    p = argparse.ArgumentParser(
        prog=f"aioworker dead {action}", description=text, parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument("ids", nargs="*", metavar="ID", help="these jobs")
    p.add_argument("--queue", required=True, help="the dead-letter set of this queue")
    p.add_argument("--all", action="store_true", help="every dead job of the queue")
    p.add_argument("--task", default=None, help="every dead job of this task")
    add_yes(p)
    add_json(p)
    return p


def _handle(outer: argparse.Namespace) -> int:
    # ids may come before or after the options: parse the rest intermixed
    args = _parser(outer.action).parse_intermixed_args(outer.rest)
    args.action = outer.action
    setup_logging(args.log_level, args.log_format)
    return run_with_worker(args, lambda w: _dead(w, args))


async def _dead(worker: Worker, args: argparse.Namespace) -> int:
    chosen = sum((bool(args.ids), args.all, args.task is not None))
    if chosen != 1:
        raise ConfigError("choose the jobs with exactly one of: IDs, --all, --task NAME")
    admin = Admin(worker)
    verb = "Retry" if args.action == "retry" else "Delete for good"
    if args.ids:
        ids: list[str] = list(args.ids)
        what = f"{len(ids)} dead job(s)"
    else:
        ids = await admin.dead_ids(args.queue, args.task)
        what = f"all {len(ids)} dead job(s)" + (f" of task {args.task}" if args.task else "")
    if not ids:
        n = 0
    else:
        confirm(f"{verb} {what} of queue {args.queue}?", args.yes)
        if args.action == "retry":
            n = await admin.retry_dead(args.queue, ids)
        else:
            n = await admin.purge_dead(args.queue, ids)
    if args.json:
        emit_json({"queue": args.queue, "action": args.action, "jobs": n})
    else:
        done = "put back in the queue" if args.action == "retry" else "deleted"
        out(f"{n} dead job(s) of queue {args.queue} {done}")
    return 0
