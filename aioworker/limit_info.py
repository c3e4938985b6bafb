"""The limiters an app's tasks use, and their state now (``Inspector.limiters()``).

Limiters are found in the app's configuration (the gates of its tasks: ``rate_limit=``,
``global_concurrency=`` and the worker's ``global_concurrency``), never by scanning
Redis.  The state of one limiter name is read with ``lua/limit_peek.lua`` in one call:

- ``in_use``: Concurrent: live holds; Window: units admitted in the last period;
  Bucket: units used in the current fixed window; GCRA and Points: None (their state is
  a time or a budget, not a count).
- ``waiting``: jobs (or callers) refused and waiting for a slot, in every kind.

A keyed limiter (``rate_key=``) is one limit per key; its names are not enumerated, so
its state is None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .limits import Bucket, Concurrent, Limiter, Window

if TYPE_CHECKING:
    from .task import TaskRegistry

__all__ = ("LimiterInfo", "app_limiters", "limit_peek", "limiters")


@dataclass(frozen=True, slots=True)
class LimiterInfo:
    """A limiter used by the app's tasks.

    :ivar kind: ``Concurrent``, ``Bucket``, ``Window``, ``GCRA`` or ``Points``.
    :ivar per_s: the period of rate limiters (None for Concurrent).
    :ivar keyed: one limit per key (state not shown).
    :ivar tasks: the tasks whose jobs pass it.
    """

    name: str
    kind: str
    limit: int
    per_s: float | None
    keyed: bool
    tasks: list[str] = field(default_factory=list)
    in_use: int | None = None
    waiting: int | None = None


async def limit_peek(limiter: Limiter) -> tuple[int, int, int, int]:
    """``(live holds, waiters, units in the last period, units in the current window)``."""
    k = limiter.keys
    per_ms = int(getattr(limiter, "per_ms", 0))
    broker = limiter.broker
    await broker.connect()
    reply = await broker.scripts.run("limit_peek", [k.holders, k.waits, k.log, k.bucket], [per_ms])
    held, waiting, in_window, in_bucket = (int(x) for x in reply)
    return held, waiting, in_window, in_bucket


def app_limiters(app: TaskRegistry) -> list[tuple[Limiter, bool, list[str]]]:
    """``(limiter, keyed, task names)`` for every limiter name on the app's task gates."""
    found: dict[str, tuple[Limiter, bool, list[str]]] = {}
    for task_name, task in sorted(app.tasks.items()):
        for gate in task.gates:
            limiter = getattr(gate, "limiter", None)
            if not isinstance(limiter, Limiter):
                continue
            # the worker-wide per-queue caps live in one gate, one limiter per queue
            caps: dict[str, Limiter] = getattr(gate, "_caps", None) or {"": limiter}
            keyed = getattr(gate, "key_fn", None) is not None
            for lim in caps.values():
                entry = found.setdefault(lim.name, (lim, keyed, []))
                if task_name not in entry[2]:
                    entry[2].append(task_name)
    return [found[name] for name in sorted(found)]


async def limiters(app: TaskRegistry) -> list[LimiterInfo]:
    """Every limiter on the app's tasks, by name, with its state when it can be read."""
    out: list[LimiterInfo] = []
    for limiter, keyed, tasks in app_limiters(app):
        per_ms = getattr(limiter, "per_ms", None)
        in_use: int | None = None
        waiting: int | None = None
        if not keyed:
            held, waiting, in_window, in_bucket = await limit_peek(limiter)
            if isinstance(limiter, Concurrent):
                in_use = held
            elif isinstance(limiter, Window):
                in_use = in_window
            elif isinstance(limiter, Bucket):
                in_use = in_bucket
        out.append(
            LimiterInfo(
                name=limiter.name,
                kind=type(limiter).__name__,
                limit=int(getattr(limiter, "limit", 0)),
                per_s=None if per_ms is None else per_ms / 1000,
                keyed=keyed,
                tasks=tasks,
                in_use=in_use,
                waiting=waiting,
            )
        )
    return out
