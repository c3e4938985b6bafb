"""Shared tools of the Lua script tests: a broker, one queue's keys and a raw Redis client.

Each script test drives a script through ``Broker.scripts`` and then reads Redis directly,
so it can assert exactly which keys changed.  :meth:`Kit.snapshot` captures every key of
the test's prefix, for the "returns 0 and changes nothing" contracts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio

from aioworker.broker import Broker
from aioworker.keys import QueueKeys
from aioworker.scripts import FetchedJob, FetchReply, Scripts

__all__ = (
    "LEASE_MS",
    "PAYLOAD",
    "Kit",
    "open_kit",
    "places_of",
    "raw_bytes",
    "text",
    "where_is",
)

#: A payload as the client encodes it (the scripts never look inside).
PAYLOAD = b'{"t":"tests.task","a":[1],"k":{}}'
#: A lease long enough never to expire during a test unless the test wants it to.
LEASE_MS = 60_000

Snapshot = dict[bytes, tuple[bytes, Any, bool]]


def text(value: bytes | str) -> str:
    """A reply of the raw client (bytes) as text."""
    return value.decode() if isinstance(value, bytes) else value


def raw_bytes(value: bytes | str) -> bytes:
    """A reply of the raw client as bytes (it never decodes, so this only narrows the type)."""
    return value if isinstance(value, bytes) else value.encode()


@dataclass(slots=True)
class Kit:
    """A connected broker, the keys of queue ``q`` under the test's prefix, and a raw client."""

    broker: Broker
    r: redis.asyncio.Redis
    k: QueueKeys

    @property
    def scripts(self) -> Scripts:
        return self.broker.scripts

    async def now_ms(self) -> int:
        """Redis TIME in milliseconds (the clock every script uses)."""
        seconds, micros = await self.r.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def enqueue(self, *ids: str, payload: bytes = PAYLOAD) -> None:
        """Enqueue ready jobs and drop the wake tokens, so tests see only their own effects."""
        created = await self.scripts.enqueue(self.k, [(i, payload, 0, 0) for i in ids])
        assert created == [True] * len(ids)
        await self.r.delete(self.k.wake)

    async def schedule(self, job_id: str, run_at_ms: int) -> None:
        """Enqueue a job, then move it to ``scheduled`` at ``run_at_ms`` (past or future)."""
        await self.enqueue(job_id)
        await self.r.lrem(self.k.ready, 0, job_id)
        await self.r.zadd(self.k.scheduled, {job_id: run_at_ms})

    async def fetch(self, max_jobs: int, token: str, lease_ms: int = LEASE_MS) -> FetchReply:
        return await self.scripts.fetch(self.k, max_jobs, lease_ms, token)

    async def lease(self, *ids: str, token: str = "w1:1") -> list[FetchedJob]:
        """Enqueue ``ids`` and lease exactly them to ``token``."""
        await self.enqueue(*ids)
        reply = await self.fetch(len(ids), token)
        assert [j.id for j in reply.jobs] == list(ids)
        return reply.jobs

    async def ready(self) -> list[str]:
        return [text(i) for i in await self.r.lrange(self.k.ready, 0, -1)]

    async def zset(self, key: str) -> dict[str, int]:
        pairs: list[Any] = await self.r.zrange(key, 0, -1, withscores=True)
        return {text(member): int(score) for member, score in pairs}

    async def hash(self, key: str) -> dict[str, bytes]:
        raw = await self.r.hgetall(key)
        return {text(field): raw_bytes(value) for field, value in raw.items()}

    async def get(self, key: str) -> bytes:
        """A string key's value, ``b""`` when it does not exist."""
        value = await self.r.get(key)
        return b"" if value is None else raw_bytes(value)

    async def wake_tokens(self) -> int:
        return int(await self.r.llen(self.k.wake))

    async def snapshot(self) -> Snapshot:
        """Every key of the prefix: its type, its whole content, and whether it has a TTL."""
        out: Snapshot = {}
        async for key in self.r.scan_iter(match=f"{self.k.prefix}:*", count=1000):
            kind = await self.r.type(key)
            value: Any
            if kind == b"string":
                value = await self.r.get(key)
            elif kind == b"list":
                value = await self.r.lrange(key, 0, -1)
            elif kind == b"zset":
                value = await self.r.zrange(key, 0, -1, withscores=True)
            elif kind == b"hash":
                value = await self.r.hgetall(key)
            else:
                raise AssertionError(f"unexpected {kind!r} key {key!r}")
            out[key] = (kind, value, await self.r.pttl(key) > 0)
        return out


async def where_is(r: redis.asyncio.Redis, k: QueueKeys, job_id: str) -> list[str]:
    """The job structures of ``keys.py`` that hold ``job_id``: a job with a record must be
    in exactly one, a finished one in none."""
    return (await places_of(r, k, [job_id]))[job_id]


_ZSETS = ("scheduled", "active", "dead", "fair")


async def places_of(r: redis.asyncio.Redis, k: QueueKeys, ids: list[str]) -> dict[str, list[str]]:
    """:func:`where_is` of many ids in one round trip."""
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.lpos(k.ready, job_id)
        for name in _ZSETS:
            pipe.zscore(getattr(k, name), job_id)
    found = iter(await pipe.execute())
    out = {}
    for job_id in ids:
        hits = [next(found) is not None for _ in range(1 + len(_ZSETS))]
        out[job_id] = [name for name, hit in zip(("ready", *_ZSETS), hits, strict=True) if hit]
    return out


@asynccontextmanager
async def open_kit(redis_url: str, prefix: str, queue: str = "q") -> AsyncIterator[Kit]:
    """Connect a broker and a raw client for one test; both are closed afterwards."""
    broker = Broker(redis_url)
    await broker.connect()
    r = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield Kit(broker, r, QueueKeys(prefix, queue))
    finally:
        await r.aclose()
        await broker.close()
