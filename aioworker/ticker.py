"""The cron leader's loop: enqueue every due tick of every schedule, once.

Runs only in the process elected leader of ``"cron"`` (see :mod:`aioworker.cron`).  Each
schedule keeps an estimate of Redis' clock on the node that holds it (the ``now`` of the
last script reply plus the local monotonic time since), so the loop sleeps until the next
tick without ever reading the local wall clock; ``lua/cron_tick.lua`` judges on Redis
TIME whether a tick is due, and answers with the time when it is not yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .broker import TRANSIENT_ERRORS
from .cron_schedule import Schedule
from .cron_scripts import TickReply, cron_state, cron_tick
from .timeunits import ms_to_datetime

if TYPE_CHECKING:
    from .keys import QueueKeys
    from .leader import Leadership
    from .scripts import Scripts

__all__ = ("TickSource", "Ticker")

log = logging.getLogger("aioworker.cron")

#: Longest sleep between two looks at a schedule; also how often its clock is re-read.
SYNC_S = 30.0
#: Shortest sleep, so a tick that Redis does not yet see as due is not polled in a spin.
MIN_SLEEP_S = 0.005


@dataclass(slots=True)
class _Track:
    """The leader's view of one schedule."""

    schedule: Schedule
    now_ms: int = 0  # Redis time of the last reply ...
    at: float = 0.0  # ... and the monotonic time it arrived
    marker_ms: int = -1
    next_ms: int | None = None

    def clock(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.at = time.monotonic()

    def estimate(self) -> int:
        return self.now_ms + int((time.monotonic() - self.at) * 1000)


class TickSource(Protocol):
    """What the leader's loop reads of the scheduler (:class:`aioworker.cron.Scheduler`)."""

    @property
    def schedules(self) -> Mapping[str, Schedule]: ...

    @property
    def scripts(self) -> Scripts: ...

    def keys(self, s: Schedule) -> QueueKeys: ...


class Ticker:
    """One leadership term of the scheduler: enqueues ticks until cancelled.

    :param scheduler: the worker's schedules.
    :param leadership: the held leadership (for its term in log lines).
    """

    def __init__(self, scheduler: TickSource, leadership: Leadership) -> None:
        self.scheduler = scheduler
        self.leadership = leadership
        self.scripts = scheduler.scripts
        self.tracks = [_Track(s) for s in scheduler.schedules.values()]
        self._down = False

    async def run(self) -> None:
        log.info(
            "scheduling %d periodic job(s) as the leader (term %d): %s",
            len(self.tracks),
            self.leadership.term,
            ", ".join(t.schedule.name for t in self.tracks),
        )
        for track in self.tracks:
            await self._retrying(self._sync, track, "init")
        while True:
            for track in self.tracks:
                if not track.at:  # its first sync failed (Redis was unreachable)
                    await self._retrying(self._sync, track, "init")
                elif time.monotonic() - track.at >= SYNC_S:
                    await self._retrying(self._sync, track, "get")
                elif track.next_ms is not None and track.estimate() >= track.next_ms:
                    await self._retrying(self._advance, track)
            await asyncio.sleep(self._sleep_s())

    def _sleep_s(self) -> float:
        wait = SYNC_S
        for track in self.tracks:
            wait = min(wait, SYNC_S - (time.monotonic() - track.at))
            if track.next_ms is not None:
                wait = min(wait, (track.next_ms - track.estimate()) / 1000)
        return max(wait, MIN_SLEEP_S)

    async def _retrying(self, step: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run one step; a Redis outage is logged once and retried on the next turn."""
        try:
            await step(*args)
        except TRANSIENT_ERRORS as exc:
            if not self._down:
                log.warning("scheduler cannot reach Redis (%s); retrying", exc)
            self._down = True
            await asyncio.sleep(0.5)
            return
        if self._down:
            self._down = False
            log.warning("scheduler reached Redis again")

    async def _sync(self, track: _Track, op: str) -> None:
        s = track.schedule
        st = await cron_state(self.scripts, self.scheduler.keys(s), s.name, op)
        track.clock(st.now_ms)
        track.marker_ms = st.marker_ms
        await self._advance(track)

    async def _tick(self, track: _Track, tick_ms: int, marker_ms: int, enqueue: bool) -> TickReply:
        s = track.schedule
        job_id = s.job_id(tick_ms) if enqueue else ""
        reply = await cron_tick(
            self.scripts, self.scheduler.keys(s), s.name, tick_ms, marker_ms, job_id, s.payload
        )
        track.clock(reply.now_ms)
        track.marker_ms = reply.marker_ms
        if reply.code == 1:
            log.debug("schedule %s: enqueued job %s", s.name, job_id)
        elif reply.code == 2:
            log.info("schedule %s: job %s already existed; not enqueued again", s.name, job_id)
        return reply

    async def _advance(self, track: _Track) -> None:
        """Enqueue (or skip) every due tick of one schedule, then note the next one."""
        s = track.schedule
        while True:
            tick = s.next_after_ms(track.marker_ms)
            now = track.estimate()
            if tick is None or tick > now:
                track.next_ms = tick
                return
            boundary = now - s.grace_ms
            if tick >= boundary:
                reply = await self._tick(track, tick, tick, True)
            else:
                catch_up = s.missed == "catch_up"
                reply = await self._tick(track, tick, boundary, catch_up)
                if reply.code in (1, 4):
                    log.warning(
                        "schedule %s: ticks from %s to %s were missed (no leader ran); %s",
                        s.name,
                        ms_to_datetime(tick).isoformat(),
                        ms_to_datetime(boundary).isoformat(),
                        "enqueued one job to catch up" if catch_up else "skipped (missed='skip')",
                    )
            if reply.code == -1:  # not due yet on Redis' clock
                track.next_ms = tick
                return
