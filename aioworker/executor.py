"""Run one job and decide what happens to it: complete, retry, dead-letter or requeue.

The executor knows nothing of Redis: it returns an :class:`Outcome` and the runtime
writes it.  Decisions:

- the function returned: ``complete`` (its return value must be JSON-encodable and
  at most ``max_result_bytes`` encoded, else the job is dead-lettered, since running it
  again would not help and would repeat its side effects);
- it raised ``Retry`` or any exception, or timed out: ``retry`` after the backoff while
  attempts remain, else ``dead``;
- it was cancelled because the worker is shutting down: ``requeue`` (not an attempt);
- it was cancelled at an operator's request (:mod:`aioworker.cancellation`): ``cancel``;
- unknown task, undecodable payload, arguments that do not fit: ``dead`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import Retry
from .payload import dumps
from .task import Task
from .timeunits import to_seconds

__all__ = ("Outcome", "error_info", "execute", "failure")

log = logging.getLogger("aioworker.job")

Kind = Literal["complete", "retry", "dead", "requeue", "defer", "cancel"]

NULL = b"null"  # the result of most jobs, shared rather than encoded each time
# orjson returns its bytes in a buffer of at least 4 KiB; a result is held until its
# ack is written, so a small one is copied to its own size
_COMPACT_BELOW = 2048


def compact(data: bytes) -> bytes:
    """``data`` in an allocation of its own size when it is small."""
    return bytes(memoryview(data)) if len(data) < _COMPACT_BELOW else data


@dataclass(slots=True)
class Outcome:
    """What to do with a job after it ran.

    :ivar value: the encoded result, for ``complete``.
    :ivar error: the error record, for ``retry`` and ``dead``.
    :ivar delay_s: seconds before the next attempt, for ``retry``.
    """

    kind: Kind
    value: bytes = b""
    error: dict[str, Any] | None = None
    delay_s: float = 0.0
    duration_s: float = 0.0


def error_info(
    exc: BaseException | None, message: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """The error record stored with a failed job: type, message and traceback."""
    if exc is None:
        return {"type": kind or "Error", "message": message or "", "traceback": ""}
    tb = "".join(traceback.format_exception(exc, limit=30))
    return {
        "type": kind or type(exc).__name__,
        "message": message if message is not None else str(exc),
        "traceback": tb[-8000:],
    }


def failure(
    task: Task[Any, Any], attempt: int, max_attempts: int, exc: BaseException, err: dict[str, Any]
) -> Outcome:
    if attempt >= max_attempts:
        return Outcome("dead", error=err)
    if isinstance(exc, Retry) and exc.delay is not None:
        delay = to_seconds(exc.delay)
    else:
        delay = task.backoff.delay_s(attempt)
    return Outcome("retry", error=err, delay_s=delay)


async def execute(
    task: Task[Any, Any],
    coro: Awaitable[Any],
    *,
    attempt: int,
    max_attempts: int,
    timeout_s: float | None,
    shutting_down: asyncio.Event,
    cancel_requested: Callable[[], bool] | None = None,
    max_result_bytes: int | None = None,
) -> Outcome:
    """Run one call of ``task`` (the coroutine ``coro``) and classify how it ended.

    :param shutting_down: when set, a cancellation is a shutdown interruption (requeue)
        rather than an error.
    :param cancel_requested: returns True when a cancellation was asked for by an
        operator: the run ends as ``cancel``.
    :param max_result_bytes: the largest encoded result stored; a larger one ends the
        job as ``dead`` (``ResultTooLarge``), never retried.
    """
    started = time.monotonic()
    limit: asyncio.Timeout | None = None
    try:
        if timeout_s is None:
            value = await coro
        else:
            async with asyncio.timeout(timeout_s) as limit:
                value = await coro
    except asyncio.CancelledError:
        if cancel_requested is not None and cancel_requested():
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()  # handled here: later timeouts in this task stay exact
            return Outcome("cancel", duration_s=time.monotonic() - started)
        if not shutting_down.is_set():
            raise
        return Outcome("requeue", duration_s=time.monotonic() - started)
    except TimeoutError as exc:
        if limit is not None and limit.expired():
            err = error_info(exc, f"timed out after {timeout_s} s", kind="Timeout")
        else:  # the job's own TimeoutError (e.g. from a client library): keep its type
            err = error_info(exc)
        out = failure(task, attempt, max_attempts, exc, err)
    except Retry as exc:
        out = failure(task, attempt, max_attempts, exc, error_info(exc, kind="Retry"))
    except Exception as exc:
        out = failure(task, attempt, max_attempts, exc, error_info(exc))
    else:
        try:
            encoded = NULL if value is None else compact(dumps(value))
        except TypeError as exc:
            err = error_info(exc, f"result is not JSON-encodable: {exc}", kind="ResultError")
            return Outcome("dead", error=err, duration_s=time.monotonic() - started)
        if max_result_bytes is not None and len(encoded) > max_result_bytes:
            err = error_info(
                None,
                f"result is {len(encoded):,} bytes, over max_result_bytes {max_result_bytes:,}"
                " (not retried: the task ran to the end and would run its side effects again)",
                kind="ResultTooLarge",
            )
            return Outcome("dead", error=err, duration_s=time.monotonic() - started)
        return Outcome("complete", value=encoded, duration_s=time.monotonic() - started)
    out.duration_s = time.monotonic() - started
    return out
