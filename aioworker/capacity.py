"""Slots: per-queue concurrency limits under an optional process-wide cap.

Each queue has its own limit, so a saturated queue never takes another queue's slots.
With a process-wide cap, free slots go to the queues waiting for them either in strict
priority order (the first queue listed first) or by weight (smooth weighted
round-robin: ``critical:5, default:1`` gives critical five slots for each of default's).
A fetcher asks for slots *before* it leases jobs and gives back what it did not use,
so the worker never holds more jobs than it can run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

__all__ = ("Capacity",)


class Capacity:
    """Per-queue slot accounting.

    :param limits: queue -> the most jobs of that queue running at once.
    :param total: process-wide cap over all queues, or None.
    :param weights: queue -> weight; ``None`` means strict priority in ``limits`` order.
    """

    def __init__(
        self,
        limits: Mapping[str, int],
        total: int | None = None,
        weights: Mapping[str, int] | None = None,
    ) -> None:
        if any(n < 1 for n in limits.values()):
            raise ValueError("every queue needs a concurrency of at least 1")
        if total is not None and total < 1:
            raise ValueError("concurrency must be at least 1")
        self.limits = dict(limits)
        self.total = total
        self.weights = dict(weights) if weights else None
        self.in_use = dict.fromkeys(limits, 0)
        self._used_total = 0
        self._current = dict.fromkeys(limits, 0)  # smooth weighted round-robin state
        self._waiters: dict[str, tuple[asyncio.Future[int], int]] = {}
        self.closed = False

    def free(self, queue: str) -> int:
        local = self.limits[queue] - self.in_use[queue]
        if self.total is None:
            return local
        return min(local, self.total - self._used_total)

    @property
    def busy(self) -> int:
        return self._used_total

    async def acquire(self, queue: str, most: int) -> int:
        """Wait until at least one slot of ``queue`` is free and take up to ``most``.

        :returns: the number of slots taken (>= 1), or 0 once :meth:`close` was called.
        """
        if self.closed:
            return 0
        if not self._waiters and self.free(queue) > 0:
            return self._take(queue, min(most, self.free(queue)))
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters[queue] = (fut, most)
        self._dispatch()
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(queue, fut.result())
            raise
        finally:
            if self._waiters.get(queue, (None, 0))[0] is fut:
                del self._waiters[queue]

    def close(self) -> None:
        """Stop handing out slots: every waiter, and every later :meth:`acquire`, gets 0
        at once (a stopping worker's fetch loops must not wait for a free slot)."""
        self.closed = True
        for fut, _ in self._waiters.values():
            if not fut.done():
                fut.set_result(0)

    def release(self, queue: str, n: int) -> None:
        """Give back ``n`` slots of ``queue``."""
        if n <= 0:
            return
        self.in_use[queue] -= n
        self._used_total -= n
        self._dispatch()

    def _take(self, queue: str, n: int) -> int:
        self.in_use[queue] += n
        self._used_total += n
        return n

    def _dispatch(self) -> None:
        if self.closed:
            return
        grants: dict[str, int] = {}
        while True:
            ready = [
                q
                for q, (fut, most) in self._waiters.items()
                if not fut.done() and self.free(q) > 0 and grants.get(q, 0) < most
            ]
            if not ready:
                break
            q = self._pick(ready)
            most = self._waiters[q][1]
            grants[q] = grants.get(q, 0) + self._take(q, 1)
            if self.weights is None:
                # no weights: the chosen queue takes all it can before the next one
                extra = min(self.free(q), most - grants[q])
                if extra > 0:
                    grants[q] += self._take(q, extra)
        for q, n in grants.items():
            self._waiters[q][0].set_result(n)

    def _pick(self, ready: list[str]) -> str:
        if self.weights is None:
            order = list(self.limits)
            return min(ready, key=order.index)
        total_weight = 0
        for q in ready:
            self._current[q] += self.weights.get(q, 1)
            total_weight += self.weights.get(q, 1)
        best = max(ready, key=lambda q: self._current[q])
        self._current[best] -= total_weight
        return best
