"""What the inspection tools leave out rather than fail on.

A registered queue name that breaks the naming rule (written by an older version or by
hand), or a queue whose keys hold data of the wrong type, must not stop ``aioworker
info``, ``aioworker jobs`` or the dashboard from showing every other queue: the tools
skip it and list it as a :class:`SkippedQueue` with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .redis_errors import RETRY_LATER_CODES, ResponseError, error_code, refusal

__all__ = ("SkippedQueue", "is_data_error", "skipping", "unreadable")


@dataclass(frozen=True, slots=True)
class SkippedQueue:
    """A queue the inspection tools left out, and why (the other queues are shown).

    :ivar name: the queue name; bytes that were not UTF-8 are shown as ``\\xNN``.
    """

    name: str
    reason: str


def is_data_error(exc: ResponseError) -> bool:
    """Whether a read script failed on what it read (a key of the wrong type, a field
    that is not a number) rather than on the server's state or a refused command (sorted
    as the broker sorts them, :mod:`aioworker.redis_errors`)."""
    return error_code(exc) not in RETRY_LATER_CODES and refusal(exc) is None


def unreadable(exc: ResponseError) -> str:
    """The reason of a queue skipped because a read script failed on its data."""
    text = " ".join(str(exc).split())
    return f"cannot be read: {text if len(text) <= 200 else text[:197] + '...'}"


@contextlib.contextmanager
def skipping(name: str, skipped: list[SkippedQueue]) -> Iterator[None]:
    """Run the block; if a read in it fails on the data of ``name``, list ``name`` in
    ``skipped`` and go on (any other error is raised)."""
    try:
        yield
    except ResponseError as exc:
        if not is_data_error(exc):
            raise
        skipped.append(SkippedQueue(name, unreadable(exc)))
