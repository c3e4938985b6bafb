"""Leader election: one process at a time holds a named leadership, as a lease in Redis.

- **Acquire**: ``SET NX PX`` of a random token (``lua/leader_acquire.lua``); every
  election increments a counter, the *term*, that work done as the leader can carry as a
  fencing token.
- **Renew**: every ``ttl / 3`` the holder extends the lease, fenced by its token
  (``lua/leader_renew.lua``): a lease that expired or was taken is never taken back.
- **Lose**: the holder counts its lease as valid until ``ttl`` after it *sent* the last
  successful acquire or renew, which is before Redis started the expiry clock.  If no
  renewal succeeds by then (Redis unreachable, another holder), it steps down on its own
  at that moment: :attr:`Leadership.lost` is set and the body of ``async with`` is
  cancelled with :class:`LeadershipLost` — before any other process can have been elected.
- **Step down**: leaving ``async with`` (or :meth:`Leadership.release`) deletes the lease
  if the token still holds it, so a follower takes over within its next poll.
- **Fail over**: followers poll every ``min(ttl / 4, 1 s)``; when a leader dies without
  stepping down, its lease expires at most ``ttl`` after its last renewal and a follower
  is elected at most one poll later: failover within ``ttl + min(ttl / 4, 1 s)``.

A process that stalls longer than ``ttl`` (a blocked event loop, a paused VM) can still
believe it leads for a moment after waking; compare :attr:`Leadership.term` where that
matters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from .broker import TRANSIENT_ERRORS, Broker
from .cron_scripts import leader_acquire, leader_release, leader_renew
from .errors import ConfigError, LeadershipLost
from .keys import LeaderKeys, validate_name
from .supervisor import restarting

if TYPE_CHECKING:
    from .host import Host

__all__ = ("Leadership", "run_singleton")

log = logging.getLogger("aioworker.leader")

_OWNER = f"{socket.gethostname()}:{os.getpid()}"
_RETRYABLE: tuple[type[BaseException], ...] = (TimeoutError, *TRANSIENT_ERRORS)


class Leadership:
    """A claim of this process on the leadership ``name``.

    Use it as ``async with worker.leader("name") as lead:``: entering waits until this
    process is elected; the body is cancelled with :class:`LeadershipLost` if the lease is
    lost; leaving steps down.

    :param broker: the Redis connection.
    :param prefix: the key prefix.
    :param name: the leadership's name (one leader per name and prefix).
    :param ttl: seconds the lease lasts without renewal (the failover bound's main part).
    :ivar term: the election number of this holder's lease (0 before it was elected).
    :ivar lost: set when this process stops being the leader without stepping down.
    """

    def __init__(self, broker: Broker, prefix: str, name: str, *, ttl: float = 10.0) -> None:
        validate_name("leadership", name)
        if ttl < 0.5:
            raise ConfigError(f"leadership {name!r}: ttl must be at least 0.5 s")
        self.broker = broker
        self.name = name
        self.keys = LeaderKeys(prefix, name)
        self.ttl_s = float(ttl)
        self.ttl_ms = int(self.ttl_s * 1000)
        self.renew_s = self.ttl_s / 3
        self.poll_s = min(self.ttl_s / 4, 1.0)
        self.token = f"{_OWNER}:{uuid.uuid4().hex[:8]}"
        self.term = 0
        self.lost = asyncio.Event()
        self._held = False
        self._valid_until = 0.0  # time.monotonic() up to which the lease surely holds
        self._renewer: asyncio.Task[None] | None = None
        self._host: asyncio.Task[object] | None = None
        self._cancelled = False

    def __repr__(self) -> str:
        state = f"leader term {self.term}" if self.is_leader else "follower"
        return f"<Leadership {self.name!r} {state}>"

    @property
    def is_leader(self) -> bool:
        """True while this process holds the lease and its validity has not run out."""
        return self._held and time.monotonic() < self._valid_until

    # -- acquire / release -----------------------------------------------------------

    async def try_acquire(self) -> bool:
        """Take the leadership if it is free (one attempt).

        :returns: True if this process is now the leader (renewed in the background).
        :raises BrokerUnavailable: if Redis cannot be reached at all.
        """
        sent = time.monotonic()
        held, term, _ = await leader_acquire(
            self.broker.scripts, self.keys, self.token, self.ttl_ms
        )
        if not held:
            return False
        self._valid_until = sent + self.ttl_s
        if not self._held:
            self._held = True
            self.term = int(term)
            self.lost.clear()
            log.info(
                "%s is now the leader of %r (term %d, lease %.1f s)",
                _OWNER,
                self.name,
                self.term,
                self.ttl_s,
            )
            self._renewer = restarting(f"leader:{self.name}", self._renew_loop)
        return True

    async def acquire(self, max_wait: float | None = None) -> bool:
        """Wait until this process is elected, polling every ``min(ttl / 4, 1 s)``.

        Redis outages while waiting are retried, not raised.

        :param max_wait: give up after this many seconds (None waits for ever).
        :returns: True once elected, False if ``max_wait`` passed first.
        """
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while True:
            try:
                if await self.try_acquire():
                    return True
            except TRANSIENT_ERRORS as exc:
                log.debug("leadership %r: cannot reach Redis (%s); retrying", self.name, exc)
            wait_s = self.poll_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                wait_s = min(wait_s, left)
            await asyncio.sleep(wait_s)

    async def release(self) -> None:
        """Step down: stop renewing and delete the lease if this token still holds it.

        Errors reaching Redis are logged, not raised (the lease then simply expires).
        """
        was_held, self._held = self._held, False
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer is not asyncio.current_task():
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
        if not was_held:
            return
        try:
            async with asyncio.timeout(2.0):
                await leader_release(self.broker.scripts, self.keys, self.token)
        except _RETRYABLE as exc:
            log.warning(
                "leadership %r: could not step down (%s); the lease expires in %.1f s",
                self.name,
                exc,
                self.ttl_s,
            )
            return
        log.info("%s stepped down as the leader of %r (term %d)", _OWNER, self.name, self.term)

    # -- renewal ---------------------------------------------------------------------

    async def _renew_loop(self) -> None:
        # restarted after an unexpected error: the next renewal is never later than the
        # lease's validity, so a holder that cannot renew still steps down in time
        while self._held:
            await asyncio.sleep(min(self.renew_s, max(self._valid_until - time.monotonic(), 0)))
            if not await self._renew():
                return

    async def _renew(self) -> bool:
        """Renew once, retrying through errors until the lease's validity runs out."""
        while True:
            sent = time.monotonic()
            left = self._valid_until - sent
            if left <= 0:
                self._lose("its lease could not be renewed in time")
                return False
            try:
                async with asyncio.timeout(left):
                    ok = await leader_renew(self.broker.scripts, self.keys, self.token, self.ttl_ms)
            except _RETRYABLE as exc:
                log.warning("leadership %r: renewal failed (%s); retrying", self.name, exc)
                await asyncio.sleep(min(0.2, max(self._valid_until - time.monotonic(), 0)))
                continue
            except Exception:  # refused (ACL, a key of the wrong type): not renewed either
                log.exception("leadership %r: Redis refused the renewal; retrying", self.name)
                await asyncio.sleep(min(0.2, max(self._valid_until - time.monotonic(), 0)))
                continue
            if not ok:
                self._lose("its lease expired or was taken over")
                return False
            self._valid_until = sent + self.ttl_s
            return True

    def _lose(self, why: str) -> None:
        self._held = False
        self.lost.set()
        log.warning("%s lost the leadership of %r (term %d): %s", _OWNER, self.name, self.term, why)
        if self._host is not None and not self._host.done():
            self._cancelled = True
            self._host.cancel()

    # -- context manager -------------------------------------------------------------

    async def __aenter__(self) -> Leadership:
        try:
            await self.acquire()
        except BaseException:
            await self.release()  # cancelled right after an election: do not keep the lease
            raise
        self._host = asyncio.current_task()
        self._cancelled = False
        if self.lost.is_set():  # lost between the acquire and here
            raise LeadershipLost(f"lost the leadership of {self.name!r} right after election")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        host, self._host = self._host, None
        await self.release()
        if self._cancelled and exc_type is asyncio.CancelledError and host is not None:
            self._cancelled = False
            if host.uncancel() == 0:
                raise LeadershipLost(
                    f"lost the leadership of {self.name!r} (term {self.term})"
                ) from exc


Body = Callable[[Leadership], Awaitable[None]]


async def run_singleton(host: Host, name: str, fn: Body, *, ttl: float) -> None:
    """Run ``fn(leadership)`` on whichever process leads ``name``, for ever.

    Followers wait to be elected; a leader that loses its lease has ``fn`` cancelled and
    goes back to waiting.  If ``fn`` raises, the error is logged and it is run again a
    second later (still as the leader if the lease holds); if it returns, the process
    steps down and this ends.
    """
    broker = host.client.broker
    prefix = host.settings.prefix
    while True:
        lead = Leadership(broker, prefix, name, ttl=ttl)
        try:
            async with lead:
                await fn(lead)
            return
        except LeadershipLost:
            continue
        except Exception:
            log.exception("singleton %r failed; running it again in 1 s", name)
        await asyncio.sleep(1.0)
