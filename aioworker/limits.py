"""Distributed rate limiters and concurrency caps, shared by every process on one Redis.

Each limiter has a name (``"stripe"``, ``"erp"``); every process that uses the same name
and prefix on the same Redis shares one limit.  ``limiter.key("tenant-42")`` gives the
limiter of the name ``"<name>:tenant-42"`` (per-tenant limits: thousands of names, each
in its own cluster slot, each expiring when idle).

Exact semantics (times are Redis ``TIME``, so clock skew between machines does not matter):

- :class:`Concurrent` ``(name, limit, lease=30)``: at most ``limit`` holds at once.  A
  hold lasts until released, or until its lease lapses without renewal (a crashed
  holder's slot comes back after at most ``lease``).  ``async with`` renews the lease
  while the block runs.
- :class:`Bucket` ``(name, limit, per)``: at most ``limit`` units in each fixed window
  ``[k * per, (k + 1) * per)`` of Redis time (windows aligned to the epoch).
- :class:`Window` ``(name, limit, per)``: at most ``limit`` units in *any* interval of
  length ``per`` (a sliding log, exact to the microsecond).
- :class:`GCRA` ``(name, limit, per, burst=1)``: a smooth rate of ``limit`` per ``per``
  (one unit every ``per / limit``) with bursts of up to ``burst`` units: for any admitted
  calls ``i..j``, ``units(i..j) <= burst + (t_j - t_i) * limit / per``.
- :class:`Points` ``(name, points, per)``: a budget of ``points`` that refills
  continuously at ``points`` per ``per``; each call costs ``cost`` points, admitted when
  the points left cover it: ``cost(i..j) <= points + (t_j - t_i) * points / per``.

Every acquire is one Lua script call (``lua/limit_<kind>.lua``) that either admits or
answers how long until a slot is expected for this caller.  :meth:`Limiter.try_acquire`
asks once; :meth:`Limiter.acquire` (``async with``) and :meth:`Limiter.wait` wait up to
``max_wait`` and raise :class:`~aioworker.errors.RateLimited`.  Waiting for a
:class:`Concurrent` slot blocks on the limiter's wake list (a release pushes a token), with
a timeout of at most a second, so there is no polling loop.

Limiters work inside jobs and outside workers alike (a FastAPI endpoint, a script): build
them ``on=`` a :class:`~aioworker.worker.Worker` (its Redis and prefix), a
:class:`~aioworker.broker.Broker`, or a Redis URL.  On a task, ``worker.task(rate_limit=...)``
defers over-limit jobs instead of running them (see :mod:`aioworker.limit_gates`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar, Self

from .arity import pieces
from .broker import Broker
from .errors import ConfigError, RateLimited
from .keys import LimiterKeys, validate_name
from .limit_base import Admission, Backend, Renewer, Source, new_id
from .reply import texts
from .scripts import Arg
from .timeunits import Seconds, to_ms, to_seconds

__all__ = (
    "GCRA",
    "Admission",
    "Bucket",
    "Concurrent",
    "Limiter",
    "Points",
    "RateLimiter",
    "Window",
)

#: Longest block on a Concurrent limiter's wake list before trying again (crashed holders'
#: slots come back without a release, so a waiter must look again now and then).
WAKE_WAIT_S = 1.0
#: How long a waiter nobody hears from again keeps its place in the queue of waiters.
FORGET_MS = 3_600_000


class Limiter:
    """A named limit stored in Redis; see the module docstring for each kind's semantics.

    :param name: the name every process shares (1-200 characters, no braces or spaces).
    :param on: a Worker, a Broker or a Redis URL; may be left out on a task's
        ``rate_limit`` (the task's worker is used) and given later with :meth:`bind`.
    :param prefix: the key prefix with a Broker or URL (default ``aioworker``).
    """

    script: ClassVar[str] = ""

    def __init__(self, name: str, *, on: Source | None = None, prefix: str | None = None) -> None:
        self.name = validate_name("limiter", name)
        self._backend = Backend(on, prefix) if on is not None else None
        self._keys: LimiterKeys | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- binding and keys ------------------------------------------------------------

    @property
    def bound(self) -> bool:
        """True when the limiter knows its Redis (built with ``on=`` or :meth:`bind`)."""
        return self._backend is not None

    def bind(self, on: Source, *, prefix: str | None = None) -> Self:
        """The same limiter on a Worker, a Broker or a Redis URL."""
        other = copy.copy(self)
        other._backend = Backend(on, prefix)
        other._keys = None
        return other

    def key(self, key: str | int) -> Self:
        """The limiter of the name ``"<name>:<key>"`` (same kind and limits).

        :raises ValueError: if the key holds braces, spaces or newlines, or is too long.
        """
        other = copy.copy(self)
        other.name = validate_name("limiter", f"{self.name}:{key}")
        other._keys = None
        return other

    @property
    def keys(self) -> LimiterKeys:
        """The Redis keys of this limiter's name."""
        if self._keys is None:
            self._keys = LimiterKeys(self._require().prefix, self.name)
        return self._keys

    @property
    def broker(self) -> Broker:
        """The connection the limiter uses.

        :raises ConfigError: if the limiter has no Redis yet.
        """
        return self._require().broker

    def _require(self) -> Backend:
        if self._backend is None:
            raise ConfigError(
                f"limiter {self.name!r} has no Redis: build it with on=worker (or a Broker or "
                "URL), or use limiter.bind(...)"
            )
        return self._backend

    async def close(self) -> None:
        """Close the connection if the limiter opened it itself (built from a URL)."""
        backend = self._backend
        if backend is not None and backend.owned:
            await backend.broker.close()

    # -- acquiring -------------------------------------------------------------------

    async def try_acquire(self, *, cost: int = 1) -> Admission:
        """Ask once: admitted now, or refused with the seconds until a slot is expected.

        :param cost: units taken (Points: points spent; Concurrent: must be 1).
        :raises ValueError: for a cost this limiter can never admit.
        :raises BrokerUnavailable: if Redis cannot be reached.
        """
        return await self.attempt(cost=cost)

    async def wait(self, *, max_wait: Seconds | None = None, cost: int = 1) -> Admission:
        """Wait until admitted (without a block to run; a Concurrent hold must be released).

        :param max_wait: give up after this long (None waits as long as it takes; 0 asks once).
        :raises RateLimited: if not admitted within ``max_wait``.
        """
        limit_s = None if max_wait is None else to_seconds(max_wait)
        max_wait_ms = 0 if limit_s is None else max(to_ms(limit_s), 1)
        forget_ms = FORGET_MS if limit_s is None else max(2 * max_wait_ms, 60_000)
        waiter, token = new_id(), new_id()
        start = time.monotonic()
        while True:
            adm = await self.attempt(
                cost=cost, waiter=waiter, max_wait_ms=max_wait_ms, forget_ms=forget_ms, token=token
            )
            if adm:
                return adm
            left = None if limit_s is None else limit_s - (time.monotonic() - start)
            if left is not None and left <= 0:
                raise RateLimited(self.name, adm.retry_after_s, time.monotonic() - start)
            # a little jitter, so waiters told the same moment do not all come back at once
            pause = adm.retry_after_s * (1 + 0.05 * random.random()) + 0.001
            await self._pause(pause if left is None else min(pause, left))

    @contextlib.asynccontextmanager
    async def acquire(
        self, *, max_wait: Seconds | None = None, cost: int = 1
    ) -> AsyncIterator[Admission]:
        """``async with limiter.acquire(max_wait=5): ...``: wait for a slot, run the block.

        A Concurrent hold is renewed while the block runs and released when it ends.

        :param max_wait: give up after this long (None waits as long as it takes).
        :param cost: units taken (Points: points spent).
        :raises RateLimited: if not admitted within ``max_wait`` (the block does not run).
        """
        adm = await self.wait(max_wait=max_wait, cost=cost)
        self._held(adm)
        try:
            yield adm
        finally:
            await self._done(adm)

    async def attempt(
        self,
        *,
        cost: int = 1,
        waiter: str = "",
        max_wait_ms: int = 0,
        forget_ms: int = FORGET_MS,
        token: str = "",
    ) -> Admission:
        """One script call (the building block of the public methods and of task gates).

        :param waiter: an id to track across calls ('' for none): the waiter's place in
            line shapes its wait estimate, and its refusals are timed from the first one.
        :param max_wait_ms: once the waiter has been refused this long, its clock restarts
            (the caller gives up); 0 for never.
        :param forget_ms: waiters not heard from for this long lose their place.
        :param token: the hold token, for Concurrent.
        """
        self._check_cost(cost)
        token = token or new_id()
        keys, args = self._call(cost, token)
        args = [*args, waiter, max_wait_ms, forget_ms]
        reply = await self.broker.scripts.run(self.script, keys, args)
        admitted, retry_ms, now_us, waited_ms = (int(x) for x in reply)
        return Admission(
            admitted=bool(admitted),
            retry_after_s=retry_ms / 1000,
            redis_time_us=now_us,
            waited_s=waited_ms / 1000,
            limiter=self.name,
            token=token if admitted and isinstance(self, Concurrent) else "",
        )

    # -- per kind --------------------------------------------------------------------

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        """The script's keys and leading arguments (before waiter, max wait, forget)."""
        raise NotImplementedError

    def _check_cost(self, cost: int) -> None:
        most = self._most()
        if not 1 <= cost <= most:
            raise ValueError(f"cost must be between 1 and {most} for {self!r}, got {cost}")

    def _most(self) -> int:
        raise NotImplementedError

    async def _pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def _held(self, adm: Admission) -> None:
        """The block of ``acquire`` starts (rate limiters keep nothing to renew)."""

    async def _done(self, adm: Admission) -> None:
        """The block of ``acquire`` ended (rate limiters keep nothing to give back)."""


def _positive(what: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


def _period_ms(per: Seconds) -> int:
    ms = to_ms(per)
    if ms < 1:
        raise ConfigError(f"per must be at least 1 ms, got {per!r}")
    return ms


class RateLimiter(Limiter):
    """A limiter of ``limit`` units per ``per`` seconds (the kinds below say how)."""

    def __init__(
        self,
        name: str,
        limit: int,
        per: Seconds,
        *,
        on: Source | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(name, on=on, prefix=prefix)
        self.limit = _positive("limit", limit)
        self.per_ms = _period_ms(per)

    def _most(self) -> int:
        return self.limit


class Bucket(RateLimiter):
    """At most ``limit`` units in each fixed window of ``per`` seconds (epoch-aligned).

    A burst of up to ``2 * limit`` can pass around a window boundary; use :class:`Window`
    when that matters.
    """

    script = "limit_bucket"

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        k = self.keys
        return [k.bucket, k.waits], [self.limit, self.per_ms, cost]


class Window(RateLimiter):
    """At most ``limit`` units in any interval of ``per`` seconds (sliding, exact).

    Keeps one entry per admitted unit for ``per`` seconds: memory grows with ``limit``.
    """

    script = "limit_window"

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        k = self.keys
        return [k.log, k.waits], [self.limit, self.per_ms, cost, token]


class GCRA(RateLimiter):
    """A smooth rate of ``limit`` per ``per`` seconds with bursts of up to ``burst`` units.

    Calls are spaced ``per / limit`` apart on average; after an idle spell up to ``burst``
    pass at once.  Stores one number per name.
    """

    script = "limit_gcra"

    def __init__(
        self,
        name: str,
        limit: int,
        per: Seconds,
        *,
        burst: int = 1,
        on: Source | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(name, limit, per, on=on, prefix=prefix)
        self.burst = _positive("burst", burst)
        # rounded up: the rate is never above the one asked for
        self.interval_us = max(-(-self.per_ms * 1000 // self.limit), 1)

    def _most(self) -> int:
        return self.burst

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        k = self.keys
        return [k.tat, k.waits], [self.interval_us, self.burst, cost]


class Points(RateLimiter):
    """A budget of ``points`` refilled continuously at ``points`` per ``per`` seconds;
    each call spends ``cost`` points (``acquire(cost=5)``)."""

    script = "limit_points"

    def __init__(
        self,
        name: str,
        points: int,
        per: Seconds,
        *,
        on: Source | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(name, points, per, on=on, prefix=prefix)
        self.points = self.limit

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        k = self.keys
        return [k.points, k.waits], [self.points, self.per_ms, cost]


class Concurrent(Limiter):
    """At most ``limit`` holders at once; each hold has a lease of ``lease`` seconds.

    ``async with limiter.acquire():`` renews the hold while the block runs and releases it
    at the end.  A holder that crashes stops renewing: its slot comes back when the lease
    lapses.  Holds taken with :meth:`try_acquire` or :meth:`wait` are released with
    :meth:`release` (and renewed with :meth:`extend` if they outlive the lease).
    """

    script = "limit_concurrent"

    def __init__(
        self,
        name: str,
        limit: int,
        *,
        lease: Seconds = 30.0,
        on: Source | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(name, on=on, prefix=prefix)
        self.limit = _positive("limit", limit)
        self.lease_ms = to_ms(lease)
        if self.lease_ms < 100:
            raise ConfigError(f"lease must be at least 0.1 s, got {lease!r}")
        self.renewer = Renewer()  # shared with keyed copies

    def _most(self) -> int:
        return 1

    def _call(self, cost: int, token: str) -> tuple[list[str], list[Arg]]:
        k = self.keys
        return [k.holders, k.since, k.waits], [self.limit, token, self.lease_ms]

    async def release(self, hold: Admission | str) -> bool:
        """Give a hold back and wake one waiter.

        :returns: False if it held no slot any more (released before, or its lease lapsed
            and the slot was taken back).
        """
        token = hold.token if isinstance(hold, Admission) else hold
        released, _ = await self.release_to_waiters(token)
        return released

    async def release_to_waiters(self, token: str) -> tuple[bool, list[str]]:
        """Release a hold (see :meth:`release`).

        :returns: whether it freed a slot, and the ids of the oldest tracked waiters, one
            per free slot (task gates bring those jobs forward).
        """
        if not token:
            return False, []
        self.renewer.discard(self, token)
        k = self.keys
        released, waiters = await self.broker.scripts.run(
            "limit_release", [k.holders, k.since, k.wake, k.waits], [token, self.limit]
        )
        return bool(released), texts(waiters)

    async def extend(self, tokens: Sequence[str], lease: Seconds | None = None) -> list[str]:
        """Renew the leases of holds of this name.

        :returns: the tokens that hold no slot any more.
        """
        lease_ms = self.lease_ms if lease is None else to_ms(lease)
        k = self.keys
        lost: list[str] = []
        for piece in pieces(tokens, 3, 1):  # 2 keys + the lease; one token each
            reply = await self.broker.scripts.run(
                "limit_extend", [k.holders, k.since], [lease_ms, *piece]
            )
            lost += texts(reply)
        return lost

    async def _pause(self, seconds: float) -> None:
        # a release pushes a token; crashed holders' slots come back without one
        await self.broker.wait_token(self.keys.wake, min(seconds, WAKE_WAIT_S))

    def _held(self, adm: Admission) -> None:
        self.renewer.add(self, adm.token)

    async def _done(self, adm: Admission) -> None:
        await self.release(adm)
