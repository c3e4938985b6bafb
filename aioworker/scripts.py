"""The Lua scripts in ``aioworker/lua/``: loading, and one typed wrapper per script.

Each wrapper builds the script's ``KEYS``/``ARGV`` exactly as its header documents and
turns the reply into Python values.  Running a script (EVALSHA with an EVAL fallback) is
the broker's job, passed in as ``run``; this module never talks to Redis itself.

The core scripts' wrappers are here; a feature module (limiters, batches, cron) keeps
the typed wrappers of its own scripts beside its code and calls :meth:`Scripts.run`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from .arity import Arg, pieces
from .enqueue_chunk import EnqueueChunk, EnqueueItem
from .keys import QueueKeys
from .reply import text

log = logging.getLogger("aioworker.worker")

__all__ = (
    "Arg",
    "EnqueueChunk",
    "EnqueueItem",
    "FetchReply",
    "FetchedJob",
    "LuaScript",
    "Scripts",
    "StatusReply",
)


@dataclass(frozen=True, slots=True)
class LuaScript:
    """One script file: its name, source and SHA1."""

    name: str
    source: str
    sha: str

    @classmethod
    def load(cls, name: str) -> LuaScript:
        """Load ``lua/<family>/<name>.lua`` (or ``lua/<name>.lua``) behind the shared guards
        of ``lua/_guards.lua``.

        :raises KeyError: if no script has that name.
        """
        source = _guards() + _script_files()[name].read_text("utf-8")
        return cls(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


@functools.cache
def _script_files() -> dict[str, Traversable]:
    """Script name -> its file, over ``lua/`` and its family folders one level down (a
    script is named by its file name alone, so names are unique across families)."""
    lua = resources.files("aioworker").joinpath("lua")
    found: dict[str, Traversable] = {}
    for entry in (*lua.iterdir(), *(f for d in lua.iterdir() if d.is_dir() for f in d.iterdir())):
        name = entry.name
        if entry.is_file() and name.endswith(".lua") and not name.startswith("_"):
            stem = name.removesuffix(".lua")
            if stem in found:
                raise RuntimeError(f"two Lua scripts are named {stem!r}")
            found[stem] = entry
    return found


@functools.cache
def _guards() -> str:
    """The type and value checks every script may call before its first write."""
    return resources.files("aioworker").joinpath("lua/_guards.lua").read_text("utf-8")


Runner = Callable[[LuaScript, Sequence[str], Sequence[Arg]], Awaitable[Any]]
#: Runs a script right behind a BLPOP on the same connection: (wait keys, timeout_s,
#: script, keys, args) -> the script's reply.
WaitRunner = Callable[
    [Sequence[str], float, LuaScript, Sequence[str], Sequence[Arg]], Awaitable[Any]
]


_CREATED, _HELD = ord("1"), ord("h")  # flags in the enqueue script's reply


@dataclass(frozen=True, slots=True)
class FetchedJob:
    id: str
    record: bytes
    attempt: int
    state: bytes


@dataclass(frozen=True, slots=True)
class FetchReply:
    """What one fetch did (see the header of ``lua/fetch.lua``).

    :ivar dropped: ids taken from the queue that had no record (nothing to run).
    :ivar buried: ids that could not be leased (attempt count not an integer):
        dead-lettered with the reason "corrupt record: ...".
    """

    now_ms: int
    next_due_ms: int
    pending: int
    recovered: list[str]
    jobs: list[FetchedJob]
    dropped: list[str] = field(default_factory=list)
    buried: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StatusReply:
    where: str
    result: bytes
    record: bytes
    attempts: bytes
    error: bytes
    state: bytes
    score: bytes


class Scripts:
    """Typed wrappers, one per ``lua/<name>.lua``, named like the file."""

    NAMES = (
        "enqueue",
        "fetch",
        "complete",
        "retry",
        "dead",
        "dead_trim",
        "buried",
        "requeue",
        "checkpoint",
        "extend",
        "revive",
        "status",
    )

    def __init__(self, run: Runner, run_after_wait: WaitRunner) -> None:
        self._run = run
        self._run_after_wait = run_after_wait
        self._lua = {name: LuaScript.load(name) for name in self.NAMES}

    def all(self) -> list[LuaScript]:
        return list(self._lua.values())

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run ``lua/<name>.lua`` (loaded on first use) for a feature module's wrapper."""
        script = self._lua.get(name)
        if script is None:
            script = self._lua[name] = LuaScript.load(name)
        return await self._run(script, keys, args)

    async def enqueue(
        self, k: QueueKeys, jobs: Sequence[tuple[str, bytes, int, int]]
    ) -> list[bool]:
        """jobs: (id, payload, at_ms, delay_ms). Returns created flags."""
        reply = await self.enqueue_items(k, [EnqueueItem(*job) for job in jobs])
        return [x is True for x in reply]

    async def enqueue_items(self, k: QueueKeys, items: Sequence[EnqueueItem]) -> list[bool | str]:
        """Enqueue jobs with unique and group options.

        :returns: per item True (created), False (its id existed), or the id of the job
            holding its unique lock (nothing created).
        """
        flags: list[bool | str] = []
        chunk = EnqueueChunk(k)
        for item in items:
            if chunk.full():
                flags += await self.enqueue_chunk(chunk)
                chunk = EnqueueChunk(k)
            chunk.add(*item)
        return flags + await self.enqueue_chunk(chunk)

    async def enqueue_chunk(self, chunk: EnqueueChunk) -> list[bool | str]:
        """Enqueue the jobs of a chunk in one call; returns like :meth:`enqueue_items`."""
        flags, *holders = await self._run(self._lua["enqueue"], chunk.keys(), chunk.args())
        if isinstance(flags, str):  # a client that decodes replies
            flags = flags.encode()
        if flags.count(b"1") == len(flags):
            return [True] * len(flags)
        held = iter(holders)
        return [text(next(held)) if f == _HELD else f == _CREATED for f in flags]

    async def fetch(
        self,
        k: QueueKeys,
        max_jobs: int,
        lease_ms: int,
        token: str,
        *,
        halt: str | None = None,
        wait_s: float | None = None,
    ) -> FetchReply:
        """Lease up to ``max_jobs`` jobs.

        :param halt: this worker's halt list (``QueueKeys.halt``): nothing is leased
            while it holds a token.
        :param wait_s: first block up to this long for a token on the queue's wake list
            or on ``halt``, in the same round trip (the fetch runs on the server as soon
            as the BLPOP returns); needs ``halt``.
        """
        keys = [k.ready, k.scheduled, k.active, k.jobs, k.attempts, k.leases, k.state, k.paused]
        keys += [k.fair, k.groups, k.group_of, k.dead, k.errors, k.batch_outbox]
        if halt is not None:
            keys.append(halt)
        args: list[Arg] = [max_jobs, lease_ms, token]
        if wait_s is None:
            reply = await self._run(self._lua["fetch"], keys, args)
        else:
            if halt is None:
                raise ValueError("a fetch that waits first needs the worker's halt key")
            waits = [k.wake, halt]
            reply = await self._run_after_wait(waits, wait_s, self._lua["fetch"], keys, args)
        now, next_due, pending, recovered, flat, dropped, buried = reply
        jobs = [
            FetchedJob(text(flat[i]), flat[i + 1], int(flat[i + 2]), flat[i + 3])
            for i in range(0, len(flat), 4)
        ]
        out = FetchReply(
            int(now),
            int(next_due),
            int(pending),
            [text(r) for r in recovered],
            jobs,
            [text(d) for d in dropped],
            [text(b) for b in buried],
        )
        if out.dropped:
            log.warning(
                "queue %s held %d job id(s) without a record, dropped: %s",
                k.queue,
                len(out.dropped),
                " ".join(out.dropped[:20]),
            )
        if out.buried:
            log.error(
                "queue %s: dead-lettered %d job(s) whose record is corrupt: %s",
                k.queue,
                len(out.buried),
                " ".join(out.buried[:20]),
            )
        return out

    async def complete(
        self,
        k: QueueKeys,
        result_ttl_ms: int,
        done: Sequence[tuple[str, str, bytes] | tuple[str, str, bytes, str]],
    ) -> list[bool]:
        """done: (id, token, result json[, batch id]). Returns recorded flags.

        More jobs than fit in one command are acked in several calls, each atomic."""
        flags: list[bool] = []
        for piece in pieces(done, 11, 6):  # 10 keys + the TTL; 2 keys + 4 args per job
            keys = [k.active, k.jobs, k.attempts, k.leases, k.state, k.errors, k.batch_outbox]
            args: list[Arg] = [result_ttl_ms]
            for item in piece:
                job_id = item[0]
                keys += [k.result(job_id), k.done(job_id)]
                args += [job_id, item[1], item[2], item[3] if len(item) == 4 else ""]
            keys += [k.wake, k.group_of, k.groups]
            reply = await self._run(self._lua["complete"], keys, args)
            flags += [bool(x) for x in reply]
        return flags

    async def retry(
        self,
        k: QueueKeys,
        job_id: str,
        token: str,
        delay_ms: int,
        error: bytes,
        count_attempt: bool = True,
    ) -> bool:
        keys = [k.active, k.scheduled, k.ready, k.leases, k.errors, k.attempts, k.wake]
        keys += [k.group_of, k.groups]
        args: list[Arg] = [job_id, token, delay_ms, error, 1 if count_attempt else 0]
        return bool(await self._run(self._lua["retry"], keys, args))

    async def dead(
        self,
        k: QueueKeys,
        job_id: str,
        token: str,
        error: bytes,
        result: bytes,
        result_ttl_ms: int,
        max_dead: int,
        dead_ttl_ms: int,
        batch: str = "",
    ) -> bool:
        """batch: the batch id of a batch child ('' for none), for the batch outbox."""
        keys = [
            k.active,
            k.dead,
            k.leases,
            k.errors,
            k.jobs,
            k.attempts,
            k.state,
            k.result(job_id),
            k.done(job_id),
            k.batch_outbox,
            k.group_of,
            k.groups,
        ]
        args: list[Arg] = [
            job_id,
            token,
            error,
            result,
            result_ttl_ms,
            max_dead,
            dead_ttl_ms,
            batch,
        ]
        return bool(await self._run(self._lua["dead"], keys, args))

    async def dead_trim(self, k: QueueKeys, max_dead: int, dead_ttl_ms: int) -> int:
        """Forget dead letters older than ``dead_ttl_ms`` and beyond ``max_dead``.

        :returns: how many were forgotten (at most 2,000 per call).
        """
        keys = [k.dead, k.jobs, k.attempts, k.state, k.errors, k.group_of]
        return int(await self._run(self._lua["dead_trim"], keys, [max_dead, dead_ttl_ms]))

    async def requeue(self, k: QueueKeys, job_id: str, token: str, state: bytes = b"") -> bool:
        keys = [k.active, k.ready, k.leases, k.attempts, k.state, k.wake, k.group_of, k.groups]
        return bool(await self._run(self._lua["requeue"], keys, [job_id, token, state]))

    async def checkpoint(self, k: QueueKeys, job_id: str, token: str, state: bytes) -> bool:
        keys = [k.leases, k.state]
        return bool(await self._run(self._lua["checkpoint"], keys, [job_id, token, state]))

    async def extend(
        self, k: QueueKeys, lease_ms: int, held: Sequence[tuple[str, str]]
    ) -> list[str]:
        """held: (id, token). Returns the ids whose lease was lost."""
        lost: list[str] = []
        for piece in pieces(held, 3, 2):  # 2 keys + the lease; id and token per job
            args: list[Arg] = [lease_ms]
            for job_id, token in piece:
                args += [job_id, token]
            reply = await self._run(self._lua["extend"], [k.active, k.leases], args)
            lost += [text(x) for x in reply]
        return lost

    async def buried(self, k: QueueKeys, job_ids: Sequence[str], result_ttl_ms: int) -> int:
        """Record the result and done marker of jobs the fetch dead-lettered as corrupt.

        :returns: how many were recorded (in several calls for many ids, each atomic).
        """
        recorded = 0
        for piece in pieces(job_ids, 3, 3):  # 2 keys + the ttl; 2 keys + the id per job
            keys = [k.dead, k.errors]
            for job_id in piece:
                keys += [k.result(job_id), k.done(job_id)]
            recorded += int(await self._run(self._lua["buried"], keys, [result_ttl_ms, *piece]))
        return recorded

    async def revive(self, k: QueueKeys, job_ids: Sequence[str]) -> int:
        """Returns how many were moved (in several calls, each atomic, for many ids)."""
        moved = 0
        for piece in pieces(job_ids, 8, 3):  # 8 keys; 2 keys + the id per job
            keys = [k.dead, k.ready, k.jobs, k.attempts, k.errors, k.wake]
            for job_id in piece:
                keys += [k.result(job_id), k.done(job_id)]
            keys += [k.group_of, k.groups]
            moved += int(await self._run(self._lua["revive"], keys, list(piece)))
        return moved

    async def status(self, k: QueueKeys, job_id: str) -> StatusReply:
        keys = [
            k.result(job_id),
            k.active,
            k.scheduled,
            k.dead,
            k.jobs,
            k.attempts,
            k.errors,
            k.state,
        ]
        where, *rest = await self._run(self._lua["status"], keys, [job_id])
        return StatusReply(text(where), *rest)
