"""The operator scripts: pause, purge, queue_stats, jobs_page, and the worker and queue
registries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.admin import pause, purge
from aioworker.inspect import jobs_page, queue_stats
from aioworker.keys import RegistryKeys
from aioworker.registry import queues, worker_beat, workers_list
from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_pause_sets_the_key_and_resume_wakes_workers(kit: Kit) -> None:
    assert await pause(kit.scripts, kit.k, True) is True
    assert await pause(kit.scripts, kit.k, True) is False
    assert int(await kit.get(kit.k.paused)) > 0
    await kit.enqueue("a")
    assert (await kit.fetch(5, "w1:1")).jobs == []  # fetch honours the pause
    assert await pause(kit.scripts, kit.k, False) is True
    assert await kit.get(kit.k.paused) == b""
    assert await kit.wake_tokens() == 1
    assert await pause(kit.scripts, kit.k, False) is False
    assert [j.id for j in (await kit.fetch(5, "w1:1")).jobs] == ["a"]


async def test_purge_deletes_only_dead_jobs_with_their_data(kit: Kit) -> None:
    await kit.lease("d1", "d2", "live", token="w1:1")
    for job_id in ("d1", "d2"):
        assert await kit.scripts.dead(
            kit.k, job_id, "w1:1", b"{}", b'{"s":"dead"}', 60_000, 100, 10**9
        )
    assert await purge(kit.scripts, kit.k, ["d1", "live", "nope"]) == 1
    assert list(await kit.zset(kit.k.dead)) == ["d2"]
    assert "d1" not in await kit.hash(kit.k.jobs) and "live" in await kit.hash(kit.k.jobs)
    assert await kit.get(kit.k.result("d1")) == b""
    assert await kit.get(kit.k.result("d2")) != b""
    assert list(await kit.zset(kit.k.active)) == ["live"]


async def test_queue_stats_and_pages_read_each_state(kit: Kit) -> None:
    await kit.lease("run", token="host:1:abc:7")
    now = await kit.now_ms()
    await kit.enqueue("r0", "r1", "r2", "r3")
    await kit.schedule("due", now - 5)
    await kit.schedule("later", now + 60_000)
    s = await queue_stats(kit.scripts, kit.k)
    assert (s.ready, s.scheduled, s.running, s.dead, s.due, s.expired, s.paused) == (
        4,
        2,
        1,
        0,
        1,
        0,
        False,
    )
    page = await jobs_page(kit.scripts, kit.k, "ready", 1, 2, 0)
    assert (page.total, [j.id for j in page.jobs]) == (4, ["r1", "r2"])
    assert page.jobs[0].task == "tests.task" and page.jobs[0].args == [1]
    page = await jobs_page(kit.scripts, kit.k, "scheduled", 0, 10, 0)
    assert [j.id for j in page.jobs] == ["due", "later"]
    page = await jobs_page(kit.scripts, kit.k, "running", 0, 10, 0)
    assert [(j.id, j.worker, j.attempts) for j in page.jobs] == [("run", "host:1:abc", 1)]
    # records cut for list views still show the task
    page = await jobs_page(kit.scripts, kit.k, "ready", 1, 1, 40)
    assert (page.jobs[0].task, page.jobs[0].args) == ("tests.task", None)


async def test_worker_records_expire_at_their_deadline_and_can_be_removed(
    kit: Kit, prefix: str
) -> None:
    rk = RegistryKeys(prefix)
    await worker_beat(kit.scripts, rk, "a", 60_000, b'{"pid":1}')
    await worker_beat(kit.scripts, rk, "b", 1, b'{"pid":2}')
    await kit.r.zadd(rk.workers, {"b": await kit.now_ms() - 1})  # b's deadline passed
    _now, rows = await workers_list(kit.scripts, rk)
    assert [(i, rec) for i, _, rec in rows] == [("a", b'{"pid":1}')]
    await worker_beat(kit.scripts, rk, "c", 60_000, b"{}")  # any beat prunes the dead
    assert set(await kit.hash(rk.worker_info)) == {"a", "c"}
    await worker_beat(kit.scripts, rk, "a", 0, b"")
    assert set(await kit.hash(rk.worker_info)) == {"c"}
    assert list(await kit.zset(rk.workers)) == ["c"]


async def test_queue_registry_adds_and_lists_names(kit: Kit, prefix: str) -> None:
    rk = RegistryKeys(prefix)
    assert await queues(kit.scripts, rk) == []
    await queues(kit.scripts, rk, ["b", "a"])
    await queues(kit.scripts, rk, ["a"])
    assert await queues(kit.scripts, rk) == ["a", "b"]
