"""Sorting Redis errors: retry later, refused by configuration, or a real failure.

Managed Redis answers many errors that mean "not now" rather than "never": a failover
demoted the node (``READONLY``), maxmemory is reached (``OOM``), a script runs too long
(``BUSY``), the dataset is loading (``LOADING``), a slot is migrating (``ASK``,
``MOVED``, ``TRYAGAIN``), the cluster is degraded (``CLUSTERDOWN``, ``MASTERDOWN``), or
the node lost its scripts (``NOSCRIPT``).  redis-py's cluster client follows ``MOVED`` and
``ASK`` and repeats a ``TRYAGAIN`` for a fraction of a second, then gives up with
``ClusterError("TTL exhausted.")`` while a slot migration still splits a script's keys:
that is retry-later too.  Those are *retry-later*: the runtime treats
them like a lost connection (backoff, no job lost), and a caller of the public API sees
:class:`~aioworker.errors.BrokerBusy`.

``NOPERM`` (an ACL rule is missing) and ``unknown command`` (the server is too old or
renamed the command) never get better by waiting: they become
:class:`~aioworker.errors.RedisRefused`, one line naming the command or permission.

redis-py maps some replies to their own classes (``ReadOnlyError``, ``OutOfMemoryError``,
...) and leaves the others as a plain ``ResponseError``; on Redis 6.2 an error raised by
``redis.call`` inside a script arrives wrapped (``Error running script (call to f_...):
@user_script:12: -READONLY You can't write...``).  The classifier looks at the class
and at the reply's code, the wrapped one included.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    ClusterError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .errors import BrokerBusy, RedisRefused

__all__ = (
    "RETRY_LATER_CLASSES",
    "RETRY_LATER_CODES",
    "ResponseError",
    "error_code",
    "is_retry_later",
    "refusal",
    "translate",
    "translating",
)

P = ParamSpec("P")
T = TypeVar("T")

#: Reply codes after which the same call may succeed later.
RETRY_LATER_CODES = frozenset(
    {
        "READONLY",
        "OOM",
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "CLUSTERDOWN",
        "TRYAGAIN",
        "ASK",
        "MOVED",
        "NOSCRIPT",
        "MISCONF",
        "NOREPLICAS",
        "UNBLOCKED",
    }
)

#: redis-py's classes for retry-later errors (MovedError is an AskError, MasterDownError a
#: ClusterDownError, BusyLoadingError a ConnectionError; ClusterError is the cluster
#: client giving up on redirections and TRYAGAIN mid-migration).
RETRY_LATER_CLASSES: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    ReadOnlyError,
    OutOfMemoryError,
    ClusterError,
    TryAgainError,
    AskError,
    NoScriptError,
    BrokerBusy,
)

# a code at the start of the reply, or after "@user_script:12: -" (Redis 6.2's wrapping
# of an error raised by redis.call inside a script), or after ": -"
_LEADING = re.compile(r"^-?([A-Z][A-Z_]{1,31})(?:\s|$)")
_WRAPPED = re.compile(r"(?:@user_script:\d+: |: )-([A-Z][A-Z_]{1,31})(?:\s|$)")
# Redis 6.2 wraps an error raised inside a script: "Error running script (call to
# f_<sha>): @user_script:12: -WRONGTYPE aioworker: ..."; 7.0+ replies with the inner error
_SCRIPT_WRAPPER = re.compile(
    r"^Error running script \(call to [^)]*\): @user_script:\d+: -(.+)$", re.S
)
_UNKNOWN = re.compile(
    r"unknown command [`'\"]?([^`'\" ,]+)|unknown redis command called from", re.IGNORECASE
)
# Redis 7.0 answers ERR (not NOPERM) when a script's redis.call is denied by an ACL rule
_ACL_TEXT = re.compile(r"user executing the script can't|has no permissions to", re.IGNORECASE)
# redis-py strips the code of the replies it maps to a class of its own
_CLASS_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (NoPermissionError, "NOPERM"),
    (NoScriptError, "NOSCRIPT"),
    (ReadOnlyError, "READONLY"),
    (OutOfMemoryError, "OOM"),
    (BusyLoadingError, "LOADING"),
    (TryAgainError, "TRYAGAIN"),
    (AskError, "ASK"),
    (ClusterDownError, "CLUSTERDOWN"),
)


def error_code(exc: BaseException) -> str | None:
    """The Redis error code of a reply error (the inner one of a wrapped script error).

    :returns: e.g. ``"READONLY"``, or None for an error that is not a reply.
    """
    text = str(exc)
    wrapped = _WRAPPED.search(text)
    if wrapped is not None:
        return wrapped.group(1)
    leading = _LEADING.match(text)
    if leading is not None and leading.group(1) != "ERR":
        return leading.group(1)
    status = getattr(exc, "status_code", None)
    if isinstance(status, str) and status and status != "ERR":
        return status
    for cls, code in _CLASS_CODES:
        if isinstance(exc, cls):
            return code
    return "ERR" if isinstance(exc, ResponseError) else None


def is_retry_later(exc: BaseException) -> bool:
    """True if the call that raised ``exc`` may succeed when repeated later."""
    if isinstance(exc, NoPermissionError):
        return False
    if isinstance(exc, ResponseError):
        return error_code(exc) in RETRY_LATER_CODES
    return isinstance(exc, (*RETRY_LATER_CLASSES, ConnectionError, OSError))


def refusal(exc: BaseException) -> str | None:
    """One line saying what the server refuses (a missing ACL permission or an unknown
    command), or None if ``exc`` is not such a refusal."""
    if not isinstance(exc, ResponseError):
        return None
    text = str(exc)
    if error_code(exc) == "NOPERM" or _ACL_TEXT.search(text):
        detail = text.split("NOPERM", 1)[-1].strip(" :-")
        return f"Redis refused a command for lack of an ACL permission: {detail}"
    unknown = _UNKNOWN.search(text)
    if unknown is not None:
        command = unknown.group(1)
        what = f"the command {command!r}" if command else "a command called from a script"
        return f"Redis does not know {what} (server too old, or the command renamed): {text}"
    return None


def translate(exc: BaseException) -> BaseException:
    """The error a caller of the library sees for a Redis reply error.

    :returns: :class:`BrokerBusy` for a retry-later reply, :class:`RedisRefused` for a
        refusal, else ``exc`` itself.
    """
    if isinstance(exc, ClusterError) and not isinstance(exc, ResponseError):
        return BrokerBusy(f"Redis Cluster cannot serve the request now: {exc}", code="TRYAGAIN")
    if isinstance(exc, BrokerBusy | RedisRefused) or not isinstance(exc, ResponseError):
        return exc
    refused = refusal(exc)
    if refused is not None:
        return RedisRefused(refused)
    code = error_code(exc)
    if code in RETRY_LATER_CODES:
        return BrokerBusy(f"Redis cannot serve the request now ({code}): {exc}", code=code)
    inner = _SCRIPT_WRAPPER.match(str(exc))
    if inner is not None:  # Redis 6.2: the error a script raised, as 7.0+ reports it
        return ResponseError(inner.group(1))
    return exc


def translating(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Wrap a broker call so that reply errors leave it sorted by :func:`translate`."""

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (ResponseError, ClusterError) as exc:
            sorted_exc = translate(exc)
            if sorted_exc is exc:
                raise
            raise sorted_exc from exc

    return call
