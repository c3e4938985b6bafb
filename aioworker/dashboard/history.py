"""Recent samples of queue counts and throughput, for the dashboard's charts.

The dashboard takes a sample when a page asks for the overview (at most one every
``min_interval_s``, however many pages are open) and keeps the last ``size`` of them in
memory.  So the charts fill while someone watches and nothing runs in the background;
gaps where nobody watched show as breaks in the lines.

Throughput is the sum of the live workers' own ``jobs_per_s`` (each worker measures the
jobs it finished — completed, retried, dead-lettered or cancelled — over its last
registry refresh).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..inspect import QueueStats, WorkerInfo

__all__ = ("History", "Sample")


@dataclass(frozen=True, slots=True)
class Sample:
    """Counts at one moment (``t_ms``: the dashboard's clock, ms since the epoch)."""

    t_ms: int
    jobs_per_s: float
    ready: int
    scheduled: int
    running: int
    dead: int
    queues: dict[str, tuple[int, int]]  # name -> (ready, running)


class History:
    """A ring of samples.

    :param size: samples kept (the oldest are dropped).
    :param min_interval_s: a sample closer than this to the previous one is not kept.
    """

    def __init__(self, size: int = 300, min_interval_s: float = 1.0) -> None:
        self.samples: deque[Sample] = deque(maxlen=size)
        self.min_interval_s = min_interval_s

    def add(
        self,
        stats: Sequence[QueueStats],
        workers: Sequence[WorkerInfo],
        now_s: float | None = None,
    ) -> Sample | None:
        """Record a sample unless the last one is too recent.

        :returns: the sample recorded, or None.
        """
        t_ms = int((time.time() if now_s is None else now_s) * 1000)
        if self.samples and t_ms - self.samples[-1].t_ms < self.min_interval_s * 1000:
            return None
        sample = Sample(
            t_ms=t_ms,
            jobs_per_s=round(sum(w.jobs_per_s for w in workers), 3),
            ready=sum(q.ready for q in stats),
            scheduled=sum(q.scheduled for q in stats),
            running=sum(q.running for q in stats),
            dead=sum(q.dead for q in stats),
            queues={q.name: (q.ready, q.running) for q in stats},
        )
        self.samples.append(sample)
        return sample

    def to_json(self, per_queue: int = 60) -> dict[str, Any]:
        """Columns for the charts: ``t`` (ms), ``jobs_per_s``, ``ready``, ``running``,
        ``scheduled``, and per queue its ``ready`` and ``running`` over the last
        ``per_queue`` samples (0 before the queue existed)."""
        samples = list(self.samples)
        recent = samples[-per_queue:]
        names = sorted({name for s in recent for name in s.queues})
        return {
            "t": [s.t_ms for s in samples],
            "jobs_per_s": [s.jobs_per_s for s in samples],
            "ready": [s.ready for s in samples],
            "scheduled": [s.scheduled for s in samples],
            "running": [s.running for s in samples],
            "queues": {
                name: {
                    "ready": [s.queues.get(name, (0, 0))[0] for s in recent],
                    "running": [s.queues.get(name, (0, 0))[1] for s in recent],
                }
                for name in names
            },
        }
