"""A registered periodic job (:class:`Schedule`) and the policy for missed ticks.

Shared by the scheduler (:mod:`aioworker.cron`) and the leader's loop (:mod:`aioworker.ticker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal

from .cronexpr import CronExpr
from .task import Task

__all__ = ("Missed", "Schedule")

#: What to do with ticks missed by more than the grace: drop them, or run one job for all.
Missed = Literal["skip", "catch_up"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """One registered periodic job (build with ``@worker.cron``)."""

    name: str
    task: Task[Any, Any]
    queue: str
    expr: CronExpr | None
    every_ms: int | None
    tz: tzinfo
    missed: Missed
    grace_ms: int
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def spec(self) -> str:
        """The schedule as written: the cron expression, or ``every N s``."""
        if self.expr is not None:
            return self.expr.text
        return f"every {(self.every_ms or 0) / 1000:g} s"

    @property
    def tz_name(self) -> str:
        return str(getattr(self.tz, "key", None) or self.tz)

    def next_after_ms(self, ms: int) -> int | None:
        """The first tick strictly after ``ms`` (epoch ms), or None if there is none."""
        if self.every_ms is not None:
            return (ms // self.every_ms + 1) * self.every_ms
        assert self.expr is not None
        nxt = self.expr.next_after(ms // 1000, self.tz)
        return None if nxt is None else nxt * 1000

    def job_id(self, tick_ms: int) -> str:
        return f"cron:{self.name}:{tick_ms}"
