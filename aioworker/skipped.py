"""What the inspection tools leave out rather than fail on.

A registered queue name that breaks the naming rule (written by an older version or by
hand), or a queue whose keys hold data of the wrong type, must not stop ``aioworker
info``, ``aioworker jobs`` or the dashboard from showing every other queue: the tools
skip it and list it as a :class:`SkippedQueue` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.exceptions import ResponseError

__all__ = ("ResponseError", "SkippedQueue", "is_data_error", "unreadable")

#: Error codes that come from the server's state, not from the data read: a retry may
#: succeed, so they are raised rather than blamed on the queue.
_SERVER_STATES = frozenset(
    [
        "READONLY",
        "OOM",
        "LOADING",
        "BUSY",
        "MASTERDOWN",
        "CLUSTERDOWN",
        "TRYAGAIN",
        "MOVED",
        "ASK",
        "NOSCRIPT",
        "NOPERM",
        "NOAUTH",
    ]
)


@dataclass(frozen=True, slots=True)
class SkippedQueue:
    """A queue the inspection tools left out, and why (the other queues are shown).

    :ivar name: the queue name; bytes that were not UTF-8 are shown as ``\\xNN``.
    """

    name: str
    reason: str


def is_data_error(exc: ResponseError) -> bool:
    """Whether a read script failed on what it read (a key of the wrong type, a field
    that is not a number) rather than on the server's state."""
    words = str(exc).replace(":", " ").replace("-", " ").split()
    return not any(w in _SERVER_STATES for w in words)


def unreadable(exc: ResponseError) -> str:
    """The reason of a queue skipped because a read script failed on its data."""
    text = " ".join(str(exc).split())
    return f"cannot be read: {text if len(text) <= 200 else text[:197] + '...'}"
