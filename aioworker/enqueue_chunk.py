"""One enqueue script call under construction: the jobs of one queue packed into the
``KEYS``/``ARGV`` of ``lua/enqueue.lua`` (see its header), cut before the call would
exceed :data:`~aioworker.arity.MAX_ARGS`.  :meth:`aioworker.scripts.Scripts.enqueue_chunk`
runs it."""

from __future__ import annotations

from typing import NamedTuple

from .arity import CALL_ARGS, MAX_ARGS, Arg
from .keys import QueueKeys

__all__ = ("EnqueueChunk", "EnqueueItem")


class EnqueueItem(NamedTuple):
    """One job for the enqueue script (see the header of ``lua/enqueue.lua``); a named
    tuple, cheap to build by the ten thousand.

    :ivar group: fair-share group ('' = none).
    :ivar unique_mode: '' (none), ``start``, ``success``, ``debounce`` or ``throttle``.
    :ivar unique_key: the lock's key (its STRING is ``QueueKeys.unique(unique_key)``).
    :ivar lock_ttl_ms: the lock's TTL (debounce: beyond the job's run time).
    :ivar extend: debounce: push the pending job's run time back on each enqueue.
    :ivar max_wait_ms: debounce: latest run time after the first enqueue (0 = none).
    :ivar fresh: the id was generated for this enqueue, so no job can have it yet: the
        script skips looking for it.
    """

    id: str
    payload: bytes
    at_ms: int = 0
    delay_ms: int = 0
    group: str = ""
    unique_mode: str = ""
    unique_key: str = ""
    lock_ttl_ms: int = 0
    extend: bool = False
    max_wait_ms: int = 0
    fresh: bool = False


class EnqueueChunk:
    """The arguments of one enqueue script call for one queue, filled job by job (see
    the header of ``lua/enqueue.lua``).

    Payloads are copied into one buffer as they are added, so a bulk enqueue keeps no
    bytes object per job alive until the call (tens of thousands of small buffers held
    at once make each allocation slower).
    """

    __slots__ = ("_chosen", "_k", "_locks", "_options", "_payloads", "_sizes", "argc", "ids")

    #: Keys and arguments of the call whatever its jobs: 9 keys, 5 arguments.
    FIXED_ARGS = 14
    #: The most one job adds: a chosen id (its result key and the id), a unique lock key
    #: and the 6 option fields.
    MAX_JOB_ARGS = 9

    def __init__(self, k: QueueKeys) -> None:
        self._k = k
        self.argc = CALL_ARGS + self.FIXED_ARGS  # words of the Redis command so far
        self.ids: list[str] = []
        self._payloads = bytearray()
        self._sizes: list[str] = []  # per job: id and payload bytes, check, at_ms, delay_ms
        self._chosen: list[str] = []  # the ids that are not fresh
        self._locks: list[str] = []  # the unique lock keys
        self._options: list[Arg] = []

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def payload_bytes(self) -> int:
        return len(self._payloads)

    def full(self) -> bool:
        """Whether one more job might take the call over :data:`~aioworker.arity.MAX_ARGS`."""
        return self.argc + self.MAX_JOB_ARGS > MAX_ARGS

    def add(
        self,
        job_id: str,
        payload: bytes,
        at_ms: int = 0,
        delay_ms: int = 0,
        group: str = "",
        unique_mode: str = "",
        unique_key: str = "",
        lock_ttl_ms: int = 0,
        extend: bool = False,
        max_wait_ms: int = 0,
        fresh: bool = False,
    ) -> None:
        """Add one job; the parameters are the fields of :class:`EnqueueItem`."""
        ids = self.ids
        ids.append(job_id)
        self._payloads += payload
        id_size = len(job_id) if job_id.isascii() else len(job_id.encode())
        if fresh and not (at_ms or delay_ms):
            self._sizes.append(f"{id_size} {len(payload)} 0 0 0")
        else:
            # whole, non-negative numbers (the script reads digits only); a run time or
            # delay below 0 means now, as 0 does
            at_ms = int(at_ms) if at_ms > 0 else 0
            delay_ms = int(delay_ms) if delay_ms > 0 else 0
            check = 0 if fresh else 1
            self._sizes.append(f"{id_size} {len(payload)} {check} {at_ms} {delay_ms}")
            if not fresh:
                self._chosen.append(job_id)
                self.argc += 2
        if group or unique_mode:
            if unique_mode:
                self._locks.append(self._k.unique(unique_key))
                self.argc += 1
            self.argc += 6
            self._options += (len(ids), group, unique_mode, lock_ttl_ms)
            self._options += (1 if extend else 0, max_wait_ms)

    def keys(self) -> list[str]:
        k = self._k
        keys = [k.ready, k.scheduled, k.jobs, k.wake, k.attempts, k.dead, k.fair, k.groups]
        keys.append(k.group_of)
        keys += [k.result(job_id) for job_id in self._chosen]
        keys += self._locks
        return keys

    def args(self) -> list[Arg]:
        ids = "".join(self.ids).encode()
        args: list[Arg] = [ids, bytes(self._payloads), " ".join(self._sizes) + " "]
        args.append(len(self._chosen))
        args += self._chosen
        args.append(len(self._options) // 6)
        args += self._options
        return args
