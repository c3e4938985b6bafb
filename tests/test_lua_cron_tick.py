"""The cron_tick and cron_state scripts: one job per tick, whoever calls and whenever."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.cron_scripts import cron_state, cron_tick
from tests.scriptkit import PAYLOAD, Kit, open_kit

NAME = "nightly"


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def _started(kit: Kit, marker_ms: int) -> None:
    """A schedule whose marker is at ``marker_ms``."""
    await kit.r.hset(kit.k.cron(NAME), "last", marker_ms)


async def tick(
    kit: Kit, tick_ms: int, marker_ms: int | None = None, job: bool = True
) -> tuple[int, int]:
    """Run cron_tick for ``tick_ms``; returns (code, marker)."""
    job_id = f"cron:{NAME}:{tick_ms}" if job else ""
    reply = await cron_tick(
        kit.scripts,
        kit.k,
        NAME,
        tick_ms,
        tick_ms if marker_ms is None else marker_ms,
        job_id,
        PAYLOAD,
    )
    return reply.code, reply.marker_ms


async def test_a_due_tick_is_enqueued_once_and_moves_the_marker(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 5000)
    assert await tick(kit, now - 1000) == (1, now - 1000)
    assert await kit.ready() == [f"cron:{NAME}:{now - 1000}"]
    stamp, _, body = (await kit.hash(kit.k.jobs))[f"cron:{NAME}:{now - 1000}"].partition(b"|")
    assert body == PAYLOAD and int(stamp) >= now
    assert await kit.wake_tokens() == 1
    state = await kit.hash(kit.k.cron(NAME))
    assert state == {"last": str(now - 1000).encode(), "job": f"cron:{NAME}:{now - 1000}".encode()}


async def test_the_same_tick_again_changes_nothing_even_after_its_job_and_result_are_gone(
    kit: Kit,
) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 5000)
    assert (await tick(kit, now - 1000))[0] == 1
    # the job ran and its result expired: only the marker remembers the tick
    await kit.r.delete(kit.k.jobs, kit.k.ready, kit.k.wake)
    before = await kit.snapshot()
    assert await tick(kit, now - 1000) == (0, now - 1000)
    assert await tick(kit, now - 2000) == (0, now - 1000)  # an older tick, e.g. a stale leader
    assert await kit.snapshot() == before


async def test_a_tick_not_yet_due_on_redis_time_changes_nothing(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 5000)
    before = await kit.snapshot()
    reply = await cron_tick(
        kit.scripts, kit.k, NAME, now + 60_000, now + 60_000, f"cron:{NAME}:x", PAYLOAD
    )
    assert reply.code == -1 and reply.marker_ms == now - 5000
    assert now <= reply.now_ms < now + 60_000
    assert await kit.snapshot() == before


async def test_an_existing_job_id_moves_the_marker_without_a_second_job(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 5000)
    await kit.enqueue(f"cron:{NAME}:{now - 1000}")
    assert await tick(kit, now - 1000) == (2, now - 1000)
    assert await kit.ready() == [f"cron:{NAME}:{now - 1000}"]


async def test_skipping_moves_the_marker_past_missed_ticks_without_a_job(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 600_000)
    assert await tick(kit, now - 500_000, marker_ms=now - 60_000, job=False) == (4, now - 60_000)
    assert await kit.hash(kit.k.jobs) == {}
    assert (await kit.hash(kit.k.cron(NAME)))["last"] == str(now - 60_000).encode()
    # every tick up to the new marker is now taken care of
    assert await tick(kit, now - 70_000) == (0, now - 60_000)


async def test_a_catch_up_job_covers_missed_ticks_with_one_job(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 600_000)
    assert await tick(kit, now - 500_000, marker_ms=now - 60_000) == (1, now - 60_000)
    assert await kit.ready() == [f"cron:{NAME}:{now - 500_000}"]
    assert await tick(kit, now - 400_000) == (0, now - 60_000)


async def test_a_paused_schedule_skips_its_ticks(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 5000)
    await cron_state(kit.scripts, kit.k, NAME, "pause")
    assert await tick(kit, now - 1000) == (3, now - 1000)
    assert await kit.hash(kit.k.jobs) == {}
    assert await kit.ready() == []


async def test_a_schedule_whose_state_vanished_starts_again_from_now(kit: Kit) -> None:
    before = await kit.now_ms()
    code, marker = await tick(kit, before - 1000)
    assert code == 0 and marker >= before
    assert await kit.hash(kit.k.jobs) == {}


async def test_state_init_keeps_an_existing_marker(kit: Kit) -> None:
    before = await kit.now_ms()
    first = await cron_state(kit.scripts, kit.k, NAME, "init")
    assert first.marker_ms >= before and first.paused_ms == -1 and first.job_id == ""
    await _started(kit, before - 9000)
    again = await cron_state(kit.scripts, kit.k, NAME, "init")
    assert again.marker_ms == before - 9000


async def test_pause_keeps_its_first_time_and_resume_raises_the_marker_to_now(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 50_000)
    paused = await cron_state(kit.scripts, kit.k, NAME, "pause")
    assert paused.paused_ms >= now and paused.marker_ms == now - 50_000
    again = await cron_state(kit.scripts, kit.k, NAME, "pause")
    assert again.paused_ms == paused.paused_ms
    resumed = await cron_state(kit.scripts, kit.k, NAME, "resume")
    assert resumed.paused_ms == -1
    assert resumed.marker_ms == resumed.now_ms >= now
    # ticks that fell in the pause are never run late
    assert (await tick(kit, now - 1000))[0] == 0


async def test_get_changes_nothing(kit: Kit) -> None:
    now = await kit.now_ms()
    await _started(kit, now - 50_000)
    before = await kit.snapshot()
    st = await cron_state(kit.scripts, kit.k, NAME, "get")
    assert (st.marker_ms, st.paused_ms, st.job_id) == (now - 50_000, -1, "")
    assert await kit.snapshot() == before
