"""Who is out there: the registry of live workers and the set of known queues.

Each running worker publishes a small record (host, pid, queues with their concurrency,
start time, jobs done, jobs running, recent jobs per second, running or draining) in
``P:{workers}:info`` and its deadline in ``P:{workers}:ids``.  It refreshes both every
heartbeat (``lease_timeout / 4``); the deadline is the refresh time plus
``lease_timeout``, so a worker that was SIGKILLed or lost its machine drops out of every
listing within ``lease_timeout``, the same time after which its jobs are recovered.  A
clean shutdown removes the record after the drain (a draining worker stays listed, with
state ``draining``, until its jobs are finished or requeued).

Queue names are kept in the set ``P:{queues}``: a worker adds the queues it serves when
it starts, and a producer adds a queue the first time it enqueues to it in a process
(one extra command per queue per process, never one per enqueue).  Tools list queues
from this set, never with ``KEYS``.

Times are Redis ``TIME``, so records compare across machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .arity import pieces
from .broker import TRANSIENT_ERRORS
from .keys import RegistryKeys
from .payload import dumps, loads
from .reply import text

if TYPE_CHECKING:
    from .extensions import RunView
    from .scripts import Scripts

__all__ = ("WorkerRecord", "WorkerRegistry", "queues", "worker_beat", "workers_list")

log = logging.getLogger("aioworker.registry")

#: Outcomes counted as "jobs done" in a worker's record.
DONE_OUTCOMES = ("complete", "retry", "dead", "cancel")


# -- typed wrappers of the registry scripts ------------------------------------------


async def worker_beat(
    scripts: Scripts, rk: RegistryKeys, worker_id: str, ttl_ms: int, record: bytes
) -> int:
    """Publish or refresh a worker's record (``ttl_ms`` 0 removes it); returns Redis time."""
    reply = await scripts.run(
        "worker_beat", [rk.workers, rk.worker_info], [worker_id, ttl_ms, record]
    )
    return int(reply)


async def workers_list(
    scripts: Scripts, rk: RegistryKeys
) -> tuple[int, list[tuple[str, int, bytes]]]:
    """Records of live workers: ``(now_ms, [(id, deadline_ms, record json), ...])``."""
    now, flat = await scripts.run("workers_list", [rk.workers, rk.worker_info], [])
    out = [
        (text(flat[i]), int(float(flat[i + 1])), _b(flat[i + 2])) for i in range(0, len(flat), 3)
    ]
    return int(now), out


async def queues(scripts: Scripts, rk: RegistryKeys, add: Sequence[str] = ()) -> list[str]:
    """Register queue names (when ``add`` is given) or list every registered name."""
    if add:
        for piece in pieces(add, 1, 1):
            await scripts.run("queues", [rk.queues], list(piece))
        return []
    reply = await scripts.run("queues", [rk.queues], [])
    # bytes that are not UTF-8 decode to lone surrogates, which fail the naming rule
    return sorted(x.decode(errors="surrogateescape") if isinstance(x, bytes) else x for x in reply)


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# -- the record -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """What a worker publishes about itself (decoded from the registry).

    :ivar id: ``<hostname>:<pid>:<random>``; lease tokens of its jobs start with it.
    :ivar queues: queue name -> how many of its jobs this worker runs at once.
    :ivar concurrency: the process-wide cap, or None.
    :ivar started_ms: when it started (Redis time).
    :ivar seen_ms: its last refresh (Redis time).
    :ivar jobs_done: jobs it finished (complete, retried, dead-lettered or cancelled).
    :ivar running: jobs it runs now.
    :ivar jobs_per_s: jobs done per second over its last refresh period.
    :ivar state: ``running`` or ``draining``.
    :ivar outcomes: its counters by outcome.
    """

    id: str
    hostname: str
    pid: int
    queues: dict[str, int]
    concurrency: int | None
    started_ms: int
    seen_ms: int
    jobs_done: int
    running: int
    jobs_per_s: float
    state: str
    outcomes: dict[str, int]

    @classmethod
    def decode(cls, worker_id: str, raw: bytes) -> WorkerRecord:
        d: dict[str, Any] = loads(raw)
        return cls(
            id=worker_id,
            hostname=str(d.get("host", "?")),
            pid=int(d.get("pid", 0)),
            queues={str(k): int(v) for k, v in dict(d.get("queues") or {}).items()},
            concurrency=d.get("concurrency"),
            started_ms=int(d.get("started_ms", 0)),
            seen_ms=int(d.get("seen_ms", 0)),
            jobs_done=int(d.get("done", 0)),
            running=int(d.get("running", 0)),
            jobs_per_s=float(d.get("rate", 0.0)),
            state=str(d.get("state", "running")),
            outcomes={str(k): int(v) for k, v in dict(d.get("outcomes") or {}).items()},
        )


def owner_of(token: str) -> str:
    """The id of the worker holding a lease token (tokens are ``<worker id>:<sequence>``)."""
    return token.rpartition(":")[0] if ":" in token else token


# -- the worker side ------------------------------------------------------------------


class WorkerRegistry:
    """Publishes one runtime's record while it runs, and removes it at a clean exit.

    :param runtime: the run it describes.
    """

    def __init__(self, runtime: RunView) -> None:
        self.runtime = runtime
        self.keys = RegistryKeys(runtime.settings.prefix)
        self.ttl_ms = runtime.settings.lease_ms
        # every heartbeat, but at most once a second (short leases in tests and demos)
        self.interval_s = min(max(runtime.settings.heartbeat_s, 1.0), self.ttl_ms / 2000)
        self.started_ms = 0
        self._task: asyncio.Task[None] | None = None
        self._last: tuple[float, int] | None = None
        self._rate = 0.0
        self._seen_ms = 0

    def _done(self) -> int:
        stats = self.runtime.stats
        return sum(int(stats.get(k, 0)) for k in DONE_OUTCOMES)

    def record(self) -> bytes:
        """The record as published now (json)."""
        rt = self.runtime
        now = time.monotonic()
        done = self._done()
        if self._last is not None and now - self._last[0] >= 0.5:
            self._rate = (done - self._last[1]) / (now - self._last[0])
            self._last = (now, done)
        elif self._last is None:
            self._last = (now, done)
        return dumps(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "queues": dict(rt.limits),
                "concurrency": rt.total,
                "started_ms": self.started_ms,
                "seen_ms": self._seen_ms,
                "done": done,
                "running": len(rt.running),
                "rate": round(self._rate, 3),
                "state": "draining" if rt.stopping else "running",
                "outcomes": dict(rt.stats),
            }
        )

    async def start(self) -> None:
        """Register the queues, publish the first record, and keep it fresh.

        The worker is already fetching: if Redis cannot take the record now (an outage,
        a refused write), the loop registers it later instead of failing the worker.
        """
        try:
            await self._register()
        except Exception as exc:
            log.warning("worker %s not registered yet, retrying: %s", self.runtime.worker_id, exc)
        # supervised: a refresh Redis refuses is logged and the loop restarts with backoff
        self._task = self.runtime.spawn("registry", self._loop)

    async def _register(self) -> None:
        started_ms = await self.runtime.broker.redis_time_ms()
        await queues(self.runtime.broker.scripts, self.keys, self.runtime.queues)
        self.started_ms = self._seen_ms = started_ms
        await self._beat()

    async def _beat(self) -> None:
        self._seen_ms = await worker_beat(
            self.runtime.broker.scripts,
            self.keys,
            self.runtime.worker_id,
            self.ttl_ms,
            self.record(),
        )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            # the runtime logs Redis outages; the record refreshes once it is back
            with contextlib.suppress(*TRANSIENT_ERRORS):
                await (self._beat() if self.started_ms else self._register())

    async def stop(self) -> None:
        """Stop refreshing and remove the record (a failure here only delays its expiry)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if not self.started_ms:
            return  # never published
        with contextlib.suppress(*TRANSIENT_ERRORS):
            await worker_beat(
                self.runtime.broker.scripts, self.keys, self.runtime.worker_id, 0, b""
            )
