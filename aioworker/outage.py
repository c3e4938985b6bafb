"""Tracking a Redis outage: logged once when it starts and once when it ends.

Every part of the runtime that fails to reach Redis reports it here and sleeps for
:meth:`Outage.retry_delay` (backoff that grows with the outage's length); the first
success reports the end.  Right after a reconnect each stale pooled connection fails
once more: that is the same outage ending, not a new one, so it is not logged again.
"""

from __future__ import annotations

import logging
import time

from .errors import BrokerBusy

__all__ = ("Outage",)

log = logging.getLogger("aioworker.worker")


class Outage:
    """The state of the connection to Redis, as the runtime last saw it.

    :param safe_url: the Redis URL with its password masked, for the log line.
    """

    def __init__(self, safe_url: str) -> None:
        self.safe_url = safe_url
        self.since: float | None = None  # time.monotonic() when the outage began
        self._ended_at = float("-inf")
        self._quiet = False

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def down(self, exc: BaseException) -> None:
        """A call to Redis failed with a connection error or a retry-later reply."""
        if self.since is not None:
            return
        self.since = time.monotonic()
        self._quiet = self.since - self._ended_at < 5.0
        if not self._quiet:
            what = "Redis cannot serve requests now" if isinstance(exc, BrokerBusy) else ""
            log.error(
                "%s at %s (%s); retrying with backoff, running jobs go on",
                what or "lost the connection to Redis",
                self.safe_url,
                exc,
            )

    def up(self) -> None:
        """A call to Redis succeeded."""
        if self.since is not None:
            if not self._quiet:
                log.warning("reconnected to Redis after %.1f s", time.monotonic() - self.since)
            self.since = None
            self._ended_at = time.monotonic()

    def retry_delay(self) -> float:
        """Seconds to wait before trying again: 50 ms, growing to 2 s as the outage lasts."""
        if self.since is None:
            return 0.05
        return min(0.1 * 2 ** min((time.monotonic() - self.since), 5), 2.0)
