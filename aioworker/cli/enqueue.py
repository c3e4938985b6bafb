"""``aioworker enqueue app:worker TASK '[json args]'``: enqueue a job by hand."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import orjson

from ..admin import Admin
from ..bounds import check_job_id
from ..errors import ConfigError, EnqueueError
from .common import add_app_arguments, common
from .output import add_json, emit_json, out, run_with_worker

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "enqueue", help="enqueue a job of a task with JSON arguments", parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument("task", help="the task's registered name")
    p.add_argument("args", nargs="?", default="[]", help="positional arguments: a JSON array")
    p.add_argument("--kwargs", default="{}", help="keyword arguments: a JSON object")
    p.add_argument("--queue", default=None, help="another queue than the task's own")
    p.add_argument("--delay", type=float, default=None, help="run no earlier than S seconds")
    p.add_argument("--job-id", default=None, help="a chosen job id (idempotent enqueue)")
    add_json(p)
    p.set_defaults(handler=lambda args: run_with_worker(args, lambda w: _enqueue(w, args)))


def _parse(text: str, kind: type, what: str) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, kind):
        name = "an array" if kind is list else "an object"
        raise ConfigError(f"{what} must be {name} in JSON, got {text!r}")
    return value


async def _enqueue(worker: Worker, args: argparse.Namespace) -> int:
    pos = _parse(args.args, list, "arguments")
    kw = _parse(args.kwargs, dict, "--kwargs")
    if args.delay is not None and args.delay < 0:
        raise ConfigError("--delay must not be negative")
    if args.job_id is not None:
        try:  # a bad argument is a usage error (exit 2), like a bad queue name
            check_job_id(args.job_id)
        except EnqueueError as exc:
            raise ConfigError(f"--job-id: {exc}") from None
    handle = await Admin(worker).enqueue(
        args.task, pos, kw, queue=args.queue, delay_s=args.delay, job_id=args.job_id
    )
    if args.json:
        emit_json({"id": handle.id, "queue": handle.queue, "created": handle.created})
    elif handle.created:
        out(f"enqueued job {handle.id} ({args.task}) on queue {handle.queue}")
    else:
        out(f"job {handle.id} exists already on queue {handle.queue}; nothing enqueued")
    return 0
