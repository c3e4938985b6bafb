"""Bounds of the enqueue options, checked where a job is built and again where a
hand-built :class:`~aioworker.job.JobSpec` is enqueued.

A value that is not a number, NaN, infinite, negative where that means nothing, or
beyond the bounds below raises :class:`~aioworker.errors.EnqueueError` naming the
option, before anything is sent: such a value would otherwise be stored in the job and
fail (or loop) in the worker much later.

- ``retries``: a whole number from 0 to :data:`MAX_RETRIES`;
- ``delay``: 0 to :data:`MAX_SECONDS` seconds;
- ``timeout``: more than 0, at most :data:`MAX_SECONDS` seconds;
- ``at``: a moment from the Unix epoch to :data:`MAX_SECONDS` from now;
- ``job_id``: 1 to :data:`MAX_JOB_ID_CHARS` printable characters (no control
  characters: an id is shown in logs, the CLI and the dashboard).  An id is the last part
  of its job's key names (``P:{queue}:result:<id>``), after the queue's hash tag, so a
  brace in it cannot move a key to another cluster slot: braces are allowed, as are
  spaces and ``|`` (every stored ``...|<id>|...`` entry is split around the id).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from .errors import AioworkerError, EnqueueError

__all__ = (
    "MAX_JOB_ID_CHARS",
    "MAX_MS",
    "MAX_RETRIES",
    "MAX_SECONDS",
    "check_at",
    "check_job_id",
    "check_retries",
    "check_seconds",
)

#: Most retries of one job (each one is an attempt that runs the task again).
MAX_RETRIES = 10_000
#: Longest delay, timeout or distance to a run time: 100 years.
MAX_SECONDS = 100 * 365.25 * 86400
MAX_MS = int(MAX_SECONDS * 1000)
#: Longest job id: room for the ids derived from a 200-character batch or schedule name
#: (``<batch id>:on_complete``, ``cron:<name>:<ms>:now-<random>``).
MAX_JOB_ID_CHARS = 256


def check_retries(
    value: object, option: str = "retries", *, error: type[AioworkerError] = EnqueueError
) -> int:
    """:returns: ``value``, a whole number from 0 to :data:`MAX_RETRIES`.

    :raises EnqueueError: otherwise, or ``error`` when given (the message names ``option``).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{option} must be a whole number, got {value!r}")
    if not 0 <= value <= MAX_RETRIES:
        raise error(f"{option} must be from 0 to {MAX_RETRIES:,}, got {value!r}")
    return value


def check_seconds(
    value: object,
    option: str,
    *,
    positive: bool = False,
    error: type[AioworkerError] = EnqueueError,
) -> float:
    """:returns: ``value`` (seconds or a timedelta) as seconds: finite, at least 0 (more
        than 0 when ``positive``), at most :data:`MAX_SECONDS`.

    :raises EnqueueError: otherwise, or ``error`` when given (the message names ``option``).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise error(f"{option} must be seconds (a number or a timedelta), got {value!r}")
    if not math.isfinite(seconds):
        raise error(f"{option} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (positive and seconds == 0):
        need = "more than 0" if positive else "at least 0"
        raise error(f"{option} must be {need} seconds, got {value!r}")
    if seconds > MAX_SECONDS:
        raise error(f"{option} must be at most 100 years ({MAX_SECONDS:,.0f} s), got {value!r}")
    return seconds


def check_at(value: object, option: str = "at") -> int:
    """:returns: the epoch milliseconds of ``value``, a datetime from the Unix epoch to
        100 years from now (a naive datetime is taken as local time).

    :raises EnqueueError: otherwise (the message names ``option``).
    """
    if not isinstance(value, datetime):
        raise EnqueueError(f"{option} must be a datetime, got {value!r}")
    try:
        ms = int(value.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        ms = -1
    if not 0 <= ms <= time.time() * 1000 + MAX_MS:
        raise EnqueueError(
            f"{option} must be a moment from 1970 to 100 years from now, got {value!r}"
        )
    return ms


def check_job_id(value: object) -> str:
    """:returns: ``value``, a chosen job id of 1 to :data:`MAX_JOB_ID_CHARS` printable
        characters.

    :raises EnqueueError: otherwise (the message names the value and the rule).
    """
    if isinstance(value, str) and 0 < len(value) <= MAX_JOB_ID_CHARS and value.isprintable():
        return value
    shown = value if not isinstance(value, str) or len(value) <= 60 else value[:60] + "..."
    raise EnqueueError(
        f"invalid job_id {shown!r}: use 1-{MAX_JOB_ID_CHARS} printable characters "
        "(no control characters)"
    )
