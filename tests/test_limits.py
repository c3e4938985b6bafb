"""Limiters used directly: try_acquire, acquire/wait with max_wait, keys, binding, leases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException

from aioworker import GCRA, Bucket, Concurrent, ConfigError, Points, RateLimited, Window, Worker
from aioworker.limits import Admission
from tests.limitkit import LimitKit, limit_url, open_limit_kit

__all__ = ("limit_url",)


@pytest.fixture
async def kit(limit_url: str, prefix: str) -> AsyncIterator[LimitKit]:
    async with open_limit_kit(limit_url, prefix) as k:
        yield k


class Counted(Concurrent):
    """Counts the script calls it makes."""

    calls = 0

    async def attempt(self, **kwargs: Any) -> Admission:
        self.calls += 1
        return await super().attempt(**kwargs)


class CountedBucket(Bucket):
    calls = 0

    async def attempt(self, **kwargs: Any) -> Admission:
        self.calls += 1
        return await super().attempt(**kwargs)


async def test_acquire_waits_until_the_window_has_room(kit: LimitKit) -> None:
    w = Window("api", 2, per=0.5, on=kit.broker, prefix=kit.prefix)
    first = await w.try_acquire()
    assert first
    assert await w.try_acquire()
    ran = False
    async with w.acquire(max_wait=5) as third:
        ran = True
    assert ran
    # admitted only once the first unit had left the window
    assert third.redis_time_us >= first.redis_time_us + 500_000


async def test_acquire_gives_up_after_max_wait_without_running_the_block(kit: LimitKit) -> None:
    b = CountedBucket("mail", 1, per=3600, on=kit.broker, prefix=kit.prefix)
    assert await b.try_acquire()
    ran = False
    with pytest.raises(RateLimited) as info:
        async with b.acquire(max_wait=0.2):
            ran = True
    assert not ran
    assert info.value.limiter == "mail"
    assert info.value.waited_s >= 0.2
    assert info.value.retry_after_s > 0
    b.calls = 0
    with pytest.raises(RateLimited):
        await b.wait(max_wait=0)
    assert b.calls == 1  # max_wait=0 asks once


async def test_a_concurrent_waiter_sleeps_on_the_wake_list_until_a_release(
    kit: LimitKit,
) -> None:
    c = Counted("stripe", 1, on=kit.broker, prefix=kit.prefix)
    holder = await c.try_acquire()
    assert holder
    released = asyncio.Event()

    async def waiter() -> bool:
        async with c.acquire(max_wait=20):
            return released.is_set()

    task = asyncio.create_task(waiter())
    await asyncio.sleep(1.5)
    assert not task.done()
    released.set()
    assert await c.release(holder)
    assert await asyncio.wait_for(task, 5) is True
    # 1.5 s of waiting: one try, then one per second of blocking at most, and the wake-up
    assert c.calls <= 4


async def test_a_crashed_holders_slot_comes_back_when_its_lease_lapses(kit: LimitKit) -> None:
    c = Concurrent("erp", 1, lease=0.5, on=kit.broker, prefix=kit.prefix)
    crashed = await c.try_acquire()  # never renewed, never released
    assert crashed
    assert not await c.try_acquire()
    taken = await c.wait(max_wait=10)
    assert taken.redis_time_us >= crashed.redis_time_us + 500_000
    assert await c.release(crashed) is False
    assert await c.release(taken) is True


async def test_an_async_with_hold_is_renewed_while_the_block_runs(kit: LimitKit) -> None:
    c = Concurrent("erp", 1, lease=0.9, on=kit.broker, prefix=kit.prefix)
    async with c.acquire() as hold:
        for _ in range(4):
            await asyncio.sleep(0.5)
            assert not await c.try_acquire(), "the hold lapsed while its block ran"
        assert c.renewer.holds() == {"erp": [hold.token]}
    assert c.renewer.holds() == {}
    other = await c.try_acquire()
    assert other
    assert await c.release(other)


async def test_the_hold_is_released_when_the_block_raises(kit: LimitKit) -> None:
    c = Concurrent("erp", 1, on=kit.broker, prefix=kit.prefix)
    with pytest.raises(KeyError):
        async with c.acquire():
            raise KeyError("boom")
    assert await c.try_acquire()


async def test_keyed_limiters_are_separate_names_of_the_same_kind(kit: LimitKit) -> None:
    erp = Bucket("erp", 1, per=3600, on=kit.broker, prefix=kit.prefix)
    a, b = erp.key("tenant-a"), erp.key(42)
    assert (a.name, b.name) == ("erp:tenant-a", "erp:42")
    assert isinstance(a, Bucket)
    assert await a.try_acquire()
    assert await b.try_acquire()
    assert await erp.try_acquire()
    assert not await a.try_acquire()
    assert not await erp.key("tenant-a").try_acquire()
    with pytest.raises(ValueError, match="limiter"):
        erp.key("has space")


async def test_every_kind_admits_and_refuses_through_the_same_api(kit: LimitKit) -> None:
    limiters = [
        Concurrent("c", 1, on=kit.broker, prefix=kit.prefix),
        Bucket("b", 1, per=60, on=kit.broker, prefix=kit.prefix),
        Window("w", 1, per=60, on=kit.broker, prefix=kit.prefix),
        GCRA("g", 1, per=60, on=kit.broker, prefix=kit.prefix),
        Points("p", 1, per=60, on=kit.broker, prefix=kit.prefix),
    ]
    for lim in limiters:
        first, second = await lim.try_acquire(), await lim.try_acquire()
        assert (bool(first), bool(second)) == (True, False), lim
        assert first.limiter == lim.name
        assert 0 < second.retry_after_s <= 60


def test_an_unbound_limiter_explains_how_to_give_it_a_redis() -> None:
    w = Window("x", 1, per=1)
    assert not w.bound
    with pytest.raises(ConfigError, match="on=worker"):
        w.keys  # noqa: B018


async def test_a_limiter_on_a_worker_uses_the_url_the_worker_ends_up_with(
    limit_url: str, prefix: str
) -> None:
    worker = Worker("redis://127.0.0.1:1/0", prefix=prefix)
    w = Window("x", 1, per=60, on=worker)
    assert w.keys.log == f"{prefix}:{{limit:x}}:log"
    worker.configure(redis_url=limit_url)  # as the CLI does after importing the app
    try:
        assert await w.try_acquire()
        assert not await w.bind(worker).try_acquire()
    finally:
        await worker.close()


@pytest.mark.parametrize(
    "build",
    [
        lambda: Window("x", 0, per=1),
        lambda: Bucket("x", 1, per=0),
        lambda: GCRA("x", 1, per=1, burst=0),
        lambda: Points("x", -1, per=1),
        lambda: Concurrent("x", 1, lease=0.01),
        lambda: Concurrent("x{y}", 1),
    ],
)
def test_bad_settings_are_rejected_when_the_limiter_is_built(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


async def test_a_fastapi_endpoint_answers_429_when_over_the_limit(
    limit_url: str, prefix: str
) -> None:
    search = Window("search", 2, per=60, on=limit_url, prefix=prefix)
    app = FastAPI()

    @app.get("/search")
    async def run_search() -> dict[str, str]:
        try:
            async with search.acquire(max_wait=0):
                return {"result": "ok"}
        except RateLimited as exc:
            raise HTTPException(
                429, headers={"Retry-After": str(int(exc.retry_after_s) + 1)}
            ) from exc

    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            codes = [(await client.get("/search")).status_code for _ in range(3)]
            last = await client.get("/search")
    finally:
        await search.close()
    assert codes == [200, 200, 429]
    assert last.status_code == 429
    assert 1 <= int(last.headers["retry-after"]) <= 61
