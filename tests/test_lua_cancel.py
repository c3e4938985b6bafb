"""The cancel scripts: an operator's cancel, the workers' poll, and a worker's record of a
cancelled run (fenced by the lease)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from aioworker.cancellation import cancel, cancel_done, cancel_poll
from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


def _forgotten(h: dict[str, dict[str, bytes]], job_id: str) -> bool:
    return all(job_id not in fields for fields in h.values())


async def _hashes(kit: Kit) -> dict[str, dict[str, bytes]]:
    k = kit.k
    return {key: await kit.hash(key) for key in (k.jobs, k.attempts, k.leases, k.state, k.errors)}


async def _result(kit: Kit, job_id: str) -> dict[str, object]:
    raw = await kit.get(kit.k.result(job_id))
    return dict(orjson.loads(raw.partition(b"|")[2]))


async def test_a_queued_job_is_removed_and_marked_cancelled(kit: Kit) -> None:
    await kit.enqueue("a", "b", "c")
    assert await cancel(kit.scripts, kit.k, "b", 60_000) == ("cancelled", "queued")
    assert await kit.ready() == ["a", "c"]
    assert _forgotten(await _hashes(kit), "b")
    assert await _result(kit, "b") == {"s": "cancelled", "n": 0, "t": "tests.task"}
    assert 0 < await kit.r.pttl(kit.k.result("b")) <= 60_000
    assert await kit.r.llen(kit.k.done("b")) == 1  # result waiters wake up


async def test_a_scheduled_job_is_removed(kit: Kit) -> None:
    await kit.schedule("s", await kit.now_ms() + 60_000)
    assert await cancel(kit.scripts, kit.k, "s", 60_000) == ("cancelled", "scheduled")
    assert await kit.zset(kit.k.scheduled) == {}
    assert _forgotten(await _hashes(kit), "s")


async def test_a_running_job_gets_a_request_and_keeps_its_lease(kit: Kit) -> None:
    await kit.lease("r", token="w1:1")
    before = await kit.zset(kit.k.active)
    assert await cancel(kit.scripts, kit.k, "r", 60_000) == ("requested", "running")
    assert await kit.zset(kit.k.active) == before
    assert (await kit.hash(kit.k.leases))["r"] == b"w1:1"
    assert list(await kit.hash(kit.k.cancel)) == ["r"]
    assert await cancel_poll(kit.scripts, kit.k) == ["r"]
    assert await kit.get(kit.k.result("r")) == b""


async def test_a_job_of_a_dead_worker_is_cancelled_at_once(kit: Kit) -> None:
    await kit.lease("x")
    await kit.r.zadd(kit.k.active, {"x": await kit.now_ms() - 1})  # the lease ran out
    assert await cancel(kit.scripts, kit.k, "x", 60_000) == ("cancelled", "running")
    assert await kit.zset(kit.k.active) == {}
    assert _forgotten(await _hashes(kit), "x")
    assert (await _result(kit, "x"))["n"] == 1


async def test_dead_finished_and_missing_jobs_are_left_alone(kit: Kit) -> None:
    await kit.lease("d", "f", token="w1:1")
    assert await kit.scripts.dead(kit.k, "d", "w1:1", b"{}", b'{"s":"dead"}', 60_000, 100, 10**9)
    assert await kit.scripts.complete(kit.k, 60_000, [("f", "w1:1", b"1")]) == [True]
    snap = await kit.snapshot()
    assert await cancel(kit.scripts, kit.k, "d", 60_000) == ("dead", "dead")
    assert await cancel(kit.scripts, kit.k, "f", 60_000) == ("finished", "finished")
    assert await cancel(kit.scripts, kit.k, "nope", 60_000) == ("missing", "missing")
    assert await kit.snapshot() == snap


async def test_cancel_done_is_fenced_by_the_lease(kit: Kit) -> None:
    await kit.lease("r", token="w1:1")
    await cancel(kit.scripts, kit.k, "r", 60_000)
    snap = await kit.snapshot()
    res = b'{"s":"cancelled","n":1,"t":"tests.task"}'
    assert not await cancel_done(kit.scripts, kit.k, "r", "w2:9", res, 60_000)
    assert await kit.snapshot() == snap

    assert await cancel_done(kit.scripts, kit.k, "r", "w1:1", res, 60_000)
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.cancel) == {}
    assert _forgotten(await _hashes(kit), "r")
    assert await _result(kit, "r") == {"s": "cancelled", "n": 1, "t": "tests.task"}


async def test_poll_drops_requests_of_jobs_that_no_longer_exist(kit: Kit) -> None:
    await kit.lease("gone", "kept", token="w1:1")
    for job_id in ("gone", "kept"):
        await cancel(kit.scripts, kit.k, job_id, 60_000)
    assert await kit.scripts.complete(kit.k, 60_000, [("gone", "w1:1", b"1")]) == [True]
    assert await cancel_poll(kit.scripts, kit.k) == ["kept"]
    assert list(await kit.hash(kit.k.cancel)) == ["kept"]
