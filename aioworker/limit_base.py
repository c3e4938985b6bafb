"""The parts every limiter shares: the admission reply, where a limiter's keys live,
unique ids, and the renewal of Concurrent holds.  The limiters are in :mod:`aioworker.limits`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .broker import TRANSIENT_ERRORS, Broker
from .errors import ConfigError
from .host import Host
from .keys import validate_name
from .supervisor import restarting

__all__ = ("Admission", "Backend", "Renewable", "Renewer", "Source", "WorkerLike", "new_id")

log = logging.getLogger("aioworker.limits")


#: What a limiter needs of a :class:`~aioworker.worker.Worker`: its client (read on first
#: use) and its settings' prefix.
WorkerLike = Host


Source = WorkerLike | Broker | str


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of one acquire.

    :ivar admitted: True if the caller may go on (also the truth value of the admission).
    :ivar retry_after_s: when refused, seconds until a slot is expected for this caller.
    :ivar redis_time_us: Redis time of the decision, in microseconds.
    :ivar waited_s: for a tracked waiter, how long it has been refused so far.
    :ivar limiter: the limiter's full name (with its key).
    :ivar token: the hold to release, for an admitted :class:`Concurrent` acquire.
    """

    admitted: bool
    retry_after_s: float
    redis_time_us: int
    waited_s: float
    limiter: str
    token: str = ""

    def __bool__(self) -> bool:
        return self.admitted


class Backend:
    """Where a limiter's keys live: a broker and a prefix (a Worker's resolved on first use,
    so the worker's Redis URL may still change until it connects)."""

    def __init__(self, on: Source, prefix: str | None) -> None:
        self._worker: WorkerLike | None = None
        self._broker: Broker | None = None
        self.owned = False
        if isinstance(on, str):
            self._broker = Broker(on)
            self.owned = True
            self.prefix = validate_name("prefix", prefix or "aioworker")
        elif isinstance(on, Broker):
            self._broker = on
            self.prefix = validate_name("prefix", prefix or "aioworker")
        else:
            self._worker = on
            own = on.settings.prefix
            if prefix is not None and prefix != own:
                raise ConfigError("a limiter built on a Worker uses the worker's prefix")
            self.prefix = own

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            assert self._worker is not None
            self._broker = self._worker.client.broker
        return self._broker


_ids = itertools.count(1)
_PROCESS = uuid.uuid4().hex[:12]


def new_id() -> str:
    """A token unique across processes (waiter ids, hold tokens, window units)."""
    return f"{_PROCESS}.{next(_ids)}"


class Renewable(Protocol):
    """What the renewer needs of a Concurrent limiter."""

    name: str
    lease_ms: int

    async def extend(self, tokens: Sequence[str]) -> list[str]: ...


class Renewer:
    """Renews Concurrent holds while they are held: one task, one script call per name
    every third of the lease; it stops when nothing is held."""

    def __init__(self) -> None:
        self._holds: dict[str, tuple[Renewable, set[str]]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return sum(len(tokens) for _, tokens in self._holds.values())

    def add(self, limiter: Renewable, token: str) -> None:
        entry = self._holds.setdefault(limiter.name, (limiter, set()))
        entry[1].add(token)
        if self._task is None or self._task.done():
            # restarted if it fails (e.g. Redis refuses a renewal): a hold not renewed
            # lapses and its slot goes to another holder
            self._task = restarting(f"renew:{limiter.name}", self._run)

    def discard(self, limiter: Renewable, token: str) -> None:
        entry = self._holds.get(limiter.name)
        if entry is None:
            return
        entry[1].discard(token)
        if not entry[1]:
            del self._holds[limiter.name]
        if not self._holds and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while self._holds:
            interval_s = min(lim.lease_ms for lim, _ in self._holds.values()) / 3000
            await asyncio.sleep(interval_s)
            for name, (limiter, tokens) in list(self._holds.items()):
                if not tokens:
                    continue
                try:
                    lost = await limiter.extend(list(tokens))
                except TRANSIENT_ERRORS as exc:
                    log.warning("could not renew the holds of limiter %s: %s", name, exc)
                    continue
                for token in lost:
                    tokens.discard(token)
                    log.warning(
                        "limiter %s: hold %s lapsed before it was renewed (its slot may be "
                        "taken by another holder)",
                        name,
                        token,
                    )

    def holds(self) -> dict[str, Any]:
        """Names and tokens held, for diagnostics."""
        return {name: sorted(tokens) for name, (_, tokens) in self._holds.items()}
