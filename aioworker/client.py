"""The producer side: enqueue jobs and look them up (used by tasks, the worker and the CLI)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

from . import arity
from .bounds import MAX_MS, check_job_id, check_retries, check_seconds
from .broker import TRANSIENT_ERRORS, Broker
from .errors import DuplicateJob, EnqueueError
from .handle import JobHandle
from .job import JobSpec
from .keys import QueueKeys, RegistryKeys, validate_name
from .payload import encode_spec
from .registry import queues as register_queues
from .scripts import EnqueueChunk, StatusReply
from .tracing import trace_context

__all__ = ("CHUNK_BYTES", "CHUNK_JOBS", "MAX_ARGS", "Client", "new_ids")

#: Most jobs per enqueue script call.  Each call is atomic and holds Redis for
#: milliseconds (about 4 for 2,000 plain jobs), so a bulk enqueue never stalls other
#: clients for long.
CHUNK_JOBS = 2000
#: A call takes no more jobs once its payloads add up to this many bytes (large
#: payloads: the call stays short, and far below Redis's 512 MB limit per argument).
CHUNK_BYTES = 4 << 20
#: A call takes no more jobs once one more could take its command over this many words
#: (:data:`aioworker.arity.MAX_ARGS`, the limit of ElastiCache Serverless): 2,000 plain
#: jobs fit in one call, about 1,990 with chosen ids, 570 unique ones.
MAX_ARGS = arity.MAX_ARGS


class Client:
    """Enqueues jobs and reads their status through a :class:`Broker`.

    :param broker: the Redis connection.
    :param prefix: key prefix shared by producers and workers.
    :param max_payload_bytes: the largest encoded argument payload accepted.
    """

    def __init__(self, broker: Broker, prefix: str, max_payload_bytes: int) -> None:
        self.broker = broker
        self.prefix = prefix
        self.max_payload_bytes = max_payload_bytes
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()  # queues added to the queue registry

    def keys(self, queue: str) -> QueueKeys:
        """The keys of a queue; every queue name this client uses passes here first.

        :raises ConfigError: for a name that breaks the naming rule (see
            :func:`~aioworker.keys.validate_name`).
        """
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, validate_name("queue", queue))
        return k

    async def enqueue(self, specs: Sequence[JobSpec]) -> list[JobHandle[Any]]:
        """Enqueue jobs: script calls of up to :data:`CHUNK_JOBS` jobs (or
        :data:`CHUNK_BYTES` of payloads, or :data:`MAX_ARGS` words), all queues at once.

        Every payload is encoded and checked before anything is sent.  The jobs of one
        queue go in order, one call per chunk, each chunk atomic.

        :returns: one handle per spec, in order.
        :raises EnqueueError: for an option out of the bounds of :mod:`aioworker.bounds`
            (nothing is enqueued).
        :raises PayloadError: if arguments cannot be encoded (nothing is enqueued).
        :raises PayloadTooLarge: if a payload is over the limit (nothing is enqueued).
        :raises DuplicateJob: if a unique job's key was held and its policy says to raise
            (raised after the whole batch was sent; the others were enqueued).
        """
        extra = trace_context()
        max_bytes = self.max_payload_bytes
        fresh_ids = new_ids(len(specs))
        ids: list[str] = []
        chunks: dict[str, list[EnqueueChunk]] = {}  # per queue, in order
        order: dict[str, list[int]] = {}  # per queue, the index of each of its specs
        for n, spec in enumerate(specs):
            check_spec(spec)
            payload = encode_spec(spec, max_bytes, extra)
            queue = spec.queue
            queue_chunks = chunks.get(queue)
            if queue_chunks is None:
                queue_chunks = chunks[queue] = [EnqueueChunk(self.keys(queue))]
                order[queue] = []
            chunk = queue_chunks[-1]
            if len(chunk.ids) >= CHUNK_JOBS or chunk.payload_bytes >= CHUNK_BYTES or chunk.full():
                chunk = EnqueueChunk(self.keys(queue))
                queue_chunks.append(chunk)
            order[queue].append(n)
            fresh = not spec.job_id
            job_id = spec.job_id or fresh_ids[n]
            ids.append(job_id)
            u = spec.unique
            if u is None or u.mode == "running":  # while_running takes its lock when it runs
                chunk.add(job_id, payload, spec.at_ms, spec.delay_ms, spec.group or "", fresh=fresh)
            else:
                chunk.add(
                    job_id,
                    payload,
                    spec.at_ms,
                    spec.delay_ms,
                    spec.group or "",
                    u.mode,
                    u.key,
                    u.ttl_ms,
                    u.extend,
                    u.max_wait_ms,
                    fresh,
                )
        created: list[bool | str] = [True] * len(specs)

        async def one_queue(queue: str) -> None:
            flags: list[bool | str] = []
            for chunk in chunks[queue]:
                flags += await self.broker.scripts.enqueue_chunk(chunk)
            for n, flag in zip(order[queue], flags, strict=True):
                created[n] = flag

        await self.broker.connect()
        if not self._registered.issuperset(chunks):
            await self.register_queues(list(chunks))
        if len(chunks) == 1:
            await one_queue(next(iter(chunks)))
        else:
            await asyncio.gather(*(one_queue(q) for q in chunks))
        handles: list[JobHandle[Any]] = []
        duplicate: DuplicateJob | None = None
        for job_id, spec, flag in zip(ids, specs, created, strict=True):
            if isinstance(flag, str):  # a unique job whose key another job holds
                handles.append(JobHandle(self, flag, spec.queue, False))
                if duplicate is None and spec.unique is not None and spec.unique.raise_on_duplicate:
                    duplicate = DuplicateJob(spec.unique.key, flag, spec.queue)
            else:
                handles.append(JobHandle(self, job_id, spec.queue, flag))
        if duplicate is not None:
            duplicate.handles = handles
            raise duplicate
        return handles

    async def register_queues(self, names: Sequence[str] | dict[str, Any]) -> None:
        """Add queue names to the queue registry (once per name per process).

        A failure here never fails an enqueue: the names are tried again next time.
        """
        new = [q for q in names if q not in self._registered]
        if new:
            try:
                await register_queues(self.broker.scripts, RegistryKeys(self.prefix), new)
            except TRANSIENT_ERRORS:
                return
            self._registered.update(new)

    def job(self, job_id: str, queue: str) -> JobHandle[Any]:
        """A handle to an existing job."""
        return JobHandle(self, job_id, queue, created=False)

    async def status_reply(self, queue: str, job_id: str) -> StatusReply:
        return await self.broker.scripts.status(self.keys(queue), job_id)

    async def wait_done(self, queue: str, job_id: str, timeout_s: float) -> None:
        await self.broker.wait_done(self.keys(queue), job_id, timeout_s)

    async def retry_dead(self, queue: str, job_ids: Sequence[str] | None = None) -> int:
        """Move dead-lettered jobs back to the queue with fresh attempts.

        :param job_ids: the jobs to revive; ``None`` revives every dead job of the queue.
        :returns: how many were moved.
        """
        k = self.keys(queue)
        if job_ids is None:
            moved = 0
            while ids := await self.broker.dead_ids(k, 500):
                # revive removes every id it is given from the dead set, so this ends
                moved += await self.broker.scripts.revive(k, ids)
            return moved
        return await self.broker.scripts.revive(k, list(job_ids))

    async def counts(self, queue: str) -> dict[str, int]:
        """Ready, scheduled, active and dead job counts of a queue."""
        return await self.broker.counts(self.keys(queue))


def new_ids(n: int) -> list[str]:
    """``n`` job ids of 128 random bits each (32 hex digits, like ``uuid4().hex``), from
    one read of the OS random source: unique across processes and hosts."""
    digits = os.urandom(16 * n).hex()
    return [digits[i : i + 32] for i in range(0, 32 * n, 32)]


def check_spec(spec: JobSpec) -> None:
    """Check the options of a spec (built by hand or by ``Task.call``).

    :raises EnqueueError: for a value out of bounds, naming the option.
    """
    if spec.job_id is not None:
        check_job_id(spec.job_id)
    if spec.retries is not None:
        check_retries(spec.retries)
    if spec.timeout_s is not None:
        check_seconds(spec.timeout_s, "timeout", positive=True)
    for option, ms in (("delay_ms", spec.delay_ms), ("at_ms", spec.at_ms)):
        if isinstance(ms, bool) or not isinstance(ms, int) or not ms >= 0:
            raise EnqueueError(f"{option} must be a whole number of ms >= 0, got {ms!r}")
    if spec.delay_ms > MAX_MS:
        raise EnqueueError(f"delay_ms must be at most 100 years ({MAX_MS:,} ms)")
    if spec.at_ms and spec.at_ms > time.time() * 1000 + MAX_MS:
        raise EnqueueError("at_ms must be at most 100 years from now")
