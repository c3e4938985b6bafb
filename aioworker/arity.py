"""The bound on the arguments of one Redis command, and cutting lists to fit it.

ElastiCache Serverless refuses any request with more than 3,999 arguments, counted as
Redis counts them: the command name (``EVALSHA``), the script's SHA, ``numkeys``, every
key and every argument.  Every script call that takes a list (job ids, payloads, unique
lock keys, tokens, names) is cut into calls that stay within :data:`MAX_ARGS`; a call
that is atomic on its own stays atomic per piece (the docstring of each caller says
what that means for it).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

__all__ = ("CALL_ARGS", "MAX_ARGS", "Arg", "per_call", "pieces")

T = TypeVar("T")

#: One argument of a script call, as redis-py sends it.
Arg = str | bytes | int | float

#: Most arguments of one Redis command, all words counted.
MAX_ARGS = 3999
#: The words of a script call before its keys: ``EVALSHA``, the SHA and ``numkeys``.
CALL_ARGS = 3


def per_call(fixed: int, per_item: int) -> int:
    """How many items fit in one script call.

    :param fixed: the call's keys and arguments that do not depend on the items.
    :param per_item: the keys and arguments each item adds.
    """
    return (MAX_ARGS - CALL_ARGS - fixed) // per_item


def pieces(items: Sequence[T], fixed: int, per_item: int) -> Iterator[Sequence[T]]:
    """``items`` cut into runs that each fit in one script call (one empty run for no
    items, so a caller makes its call once either way)."""
    n = per_call(fixed, per_item)
    if not items:
        yield items
        return
    for start in range(0, len(items), n):
        yield items[start : start + n]
