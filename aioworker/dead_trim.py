"""Dead letters expire on a timer, so ``dead_ttl`` holds even while no job dies.

The dead script trims the dead-letter set whenever a job dies; this loop runs the
``dead_trim`` script for every queue of the worker every ``dead_ttl / 10`` (between 1 and
60 seconds) as well.  A failed round is logged and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from .keys import QueueKeys
from .scripts import Scripts

__all__ = ("trim_dead", "trim_every_s")

log = logging.getLogger("aioworker.worker")

_MAX_PER_CALL = 1000  # the script forgets at most this many by age (and as many by count)


def trim_every_s(dead_ttl_ms: int) -> float:
    """Seconds between two rounds: a tenth of the TTL, between 1 and 60."""
    return min(max(dead_ttl_ms / 10_000, 1.0), 60.0)


async def trim_dead(
    scripts: Scripts, keys: Mapping[str, QueueKeys], max_dead: int, dead_ttl_ms: int
) -> None:
    """Trim the dead letters of every queue in ``keys`` until cancelled.

    :param max_dead: most dead letters kept per queue.
    :param dead_ttl_ms: age after which a dead letter is forgotten.
    """
    every_s = trim_every_s(dead_ttl_ms)
    while True:
        for queue, k in keys.items():
            try:
                n = await scripts.dead_trim(k, max_dead, dead_ttl_ms)
                while n >= _MAX_PER_CALL:  # a backlog: go on at once
                    n = await scripts.dead_trim(k, max_dead, dead_ttl_ms)
            except Exception as exc:  # Redis away or a key of the wrong type: next round
                log.warning("could not trim the dead letters of queue %s: %s", queue, exc)
        await asyncio.sleep(every_s)
