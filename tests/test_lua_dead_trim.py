"""The dead_trim script and the worker's timer that runs it: dead letters expire by age
and count even while no job dies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aioworker.dead_trim import trim_dead, trim_every_s
from tests.scriptkit import PAYLOAD, Kit, open_kit
from tests.worker_kit import MakeWorker, running

ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'
DAY_MS = 86_400_000


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def _add_dead(kit: Kit, job_id: str, died_at_ms: int) -> None:
    k = kit.k
    await kit.r.hset(k.jobs, job_id, b"1|" + PAYLOAD)
    await kit.r.hset(k.attempts, job_id, 3)
    await kit.r.hset(k.state, job_id, b"cp")
    await kit.r.hset(k.errors, job_id, ERROR)
    await kit.r.hset(k.group_of, job_id, "g")
    await kit.r.zadd(k.dead, {job_id: died_at_ms})


async def test_forgets_dead_letters_older_than_the_ttl_with_all_their_data(kit: Kit) -> None:
    now = await kit.now_ms()
    await _add_dead(kit, "old", now - 2 * DAY_MS)
    await _add_dead(kit, "new", now - 1000)

    assert await kit.scripts.dead_trim(kit.k, 1000, DAY_MS) == 1

    assert await kit.zset(kit.k.dead) == {"new": now - 1000}
    for key in (kit.k.jobs, kit.k.attempts, kit.k.state, kit.k.errors, kit.k.group_of):
        assert set(await kit.hash(key)) == {"new"}


async def test_keeps_at_most_max_dead_dropping_the_oldest(kit: Kit) -> None:
    now = await kit.now_ms()
    for n in range(5):
        await _add_dead(kit, f"j{n}", now - 5000 + n)

    assert await kit.scripts.dead_trim(kit.k, 2, DAY_MS) == 3

    assert set(await kit.zset(kit.k.dead)) == {"j3", "j4"}
    assert set(await kit.hash(kit.k.jobs)) == {"j3", "j4"}


async def test_nothing_to_trim_changes_nothing(kit: Kit) -> None:
    now = await kit.now_ms()
    await _add_dead(kit, "a", now)
    before = await kit.snapshot()
    assert await kit.scripts.dead_trim(kit.k, 10, DAY_MS) == 0
    assert await kit.snapshot() == before


def test_the_timer_runs_every_tenth_of_the_ttl_between_1_and_60_s() -> None:
    assert trim_every_s(100) == 1.0
    assert trim_every_s(30_000) == 3.0
    assert trim_every_s(7 * DAY_MS) == 60.0


async def test_the_timer_trims_every_queue_and_survives_a_failed_round(kit: Kit) -> None:
    now = await kit.now_ms()
    await _add_dead(kit, "old", now - 2 * DAY_MS)
    other = type(kit.k)(kit.k.prefix, "broken")
    await kit.r.set(other.dead, "garbage")  # this queue's round fails every time
    task = asyncio.create_task(trim_dead(kit.scripts, {"broken": other, "q": kit.k}, 1000, DAY_MS))
    try:
        for _ in range(100):
            if not await kit.r.exists(kit.k.dead):
                break
            await asyncio.sleep(0.02)
        assert not task.done()
    finally:
        task.cancel()
    assert await kit.zset(kit.k.dead) == {}
    assert await kit.hash(kit.k.jobs) == {}


async def test_a_running_worker_forgets_expired_dead_letters_without_new_ones(
    kit: Kit, make_worker: MakeWorker
) -> None:
    worker = make_worker(queues={"q": 1}, dead_ttl=1)
    now = await kit.now_ms()
    await _add_dead(kit, "old", now - 5000)
    await _add_dead(kit, "fresh", now + 60_000)  # dies "later": kept
    async with running(worker):
        for _ in range(200):
            if "old" not in await kit.zset(kit.k.dead):
                break
            await asyncio.sleep(0.025)
    assert set(await kit.zset(kit.k.dead)) == {"fresh"}
    assert set(await kit.hash(kit.k.jobs)) == {"fresh"}
