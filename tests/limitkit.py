"""Shared tools of the limiter tests: the Redis URL of either fixture, and raw key reads.

``limit_url`` runs a test once on the single node and once on the three-master cluster
(marked ``cluster``).  Import it into a test module with
``from tests.limitkit import limit_url`` and name it as a fixture parameter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.crc import key_slot

from aioworker.broker import Broker
from aioworker.limits import Limiter

__all__ = ("LimitKit", "limit_url", "open_limit_kit", "slots_of", "text")

Raw = Redis | RedisCluster


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def limit_url(request: pytest.FixtureRequest) -> str:
    """The URL of the single-node fixture, then of the cluster fixture."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url


def slots_of(keys: Sequence[str]) -> set[int]:
    """The cluster slots the keys hash to."""
    return {key_slot(k.encode()) for k in keys}


def text(value: bytes | str) -> str:
    """A raw client's reply as text."""
    return value.decode() if isinstance(value, bytes) else value


class LimitKit:
    """A connected broker for limiters, and its raw client for reading their keys."""

    def __init__(self, broker: Broker, raw: Raw, prefix: str) -> None:
        self.broker = broker
        self.raw = raw
        self.prefix = prefix

    async def now_us(self) -> int:
        """Redis TIME in microseconds (the clock every limiter script uses)."""
        if isinstance(self.raw, RedisCluster):
            seconds, micros = await self.raw.time(target_nodes=RedisCluster.RANDOM)
        else:
            seconds, micros = await self.raw.time()
        return int(seconds) * 1_000_000 + int(micros)

    async def zset(self, key: str) -> dict[str, int]:
        pairs: list[Any] = await self.raw.zrange(key, 0, -1, withscores=True)
        return {text(member): int(score) for member, score in pairs}

    async def hash(self, key: str) -> dict[str, str]:
        raw = await self.raw.hgetall(key)
        return {text(k): text(v) for k, v in raw.items()}

    async def pttl(self, key: str) -> int:
        return int(await self.raw.pttl(key))

    async def state(self, limiter: Limiter) -> dict[str, tuple[str, Any]]:
        """Every existing key of the limiter's name: its type and whole content."""
        k = limiter.keys
        out: dict[str, tuple[str, Any]] = {}
        for key in (k.holders, k.since, k.wake, k.bucket, k.log, k.tat, k.points, k.waits):
            kind = text(await self.raw.type(key))
            value: Any
            if kind == "none":
                continue
            if kind == "zset":
                value = await self.zset(key)
            elif kind == "hash":
                value = await self.hash(key)
            elif kind == "list":
                value = [text(v) for v in await self.raw.lrange(key, 0, -1)]
            else:
                value = text(await self.raw.get(key) or b"")
            out[key] = (kind, value)
        return out


@asynccontextmanager
async def open_limit_kit(url: str, prefix: str) -> AsyncIterator[LimitKit]:
    """A broker and its client for one test; closed afterwards."""
    broker = Broker(url)
    raw = await broker.connect()
    try:
        yield LimitKit(broker, raw, prefix)
    finally:
        await broker.close()
