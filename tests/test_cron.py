"""Periodic jobs in one process: registration, ticks, pause/resume/run-now, missed ticks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio

from aioworker import (
    ConfigError,
    CronExpressionError,
    CronTick,
    JobContext,
    UnknownScheduleError,
    Worker,
    tick_of,
)
from aioworker.cron import CronHost, Missed
from aioworker.keys import QueueKeys
from aioworker.ticker import Ticker
from tests.apps import cron_app

Raw = redis.asyncio.Redis | redis.asyncio.RedisCluster


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def url(request: pytest.FixtureRequest) -> str:
    """The same tests on one Redis and on the three-master cluster."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def raw(url: str) -> AsyncIterator[Raw]:
    """A plain client of the test's Redis, to read what the jobs recorded."""
    client: Raw
    async with redis.asyncio.Redis.from_url(url) as probe:
        cluster = bool((await probe.info("cluster")).get("cluster_enabled"))
    client = (
        redis.asyncio.RedisCluster.from_url(url) if cluster else redis.asyncio.Redis.from_url(url)
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def app(url: str, prefix: str) -> AsyncIterator[Worker]:
    w = cron_app.build(url, prefix)
    try:
        yield w
    finally:
        await w.close()


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run(handle_signals=False))
    try:
        yield
    finally:
        # a graceful stop lets running jobs finish: cancelling run() would interrupt them
        # mid-command, and an interrupted job runs again in full (at-least-once)
        worker.stop()
        with suppress(asyncio.CancelledError):
            await task
        await cron_app.close_clients()


async def recorded(raw: Raw, prefix: str, kind: str = "ticks") -> dict[str, int]:
    data = await raw.hgetall(cron_app.runs_key(prefix, kind))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in data.items()}


def tick_times(runs: dict[str, int]) -> list[int]:
    return sorted(int(k) for k in runs if not k.startswith("now:"))


async def wait_until(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


# -- registration --------------------------------------------------------------------


async def job(ctx: JobContext) -> None:
    """A periodic job that does nothing."""


async def job_with_args(ctx: JobContext, region: str, full: bool = False) -> str:
    return region


def test_registration_errors_are_clear(redis_url: str) -> None:
    w = Worker(redis_url)
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({}, ConfigError, "give a cron expression or every=seconds"),
        ({"expr": "* * * * *", "every": 5}, ConfigError, "exactly one"),
        ({"expr": "* * * *"}, CronExpressionError, "expected 5 fields"),
        ({"expr": "0 0 30 2 *"}, ConfigError, "never fires"),
        ({"expr": "@daily", "tz": "Mars/Olympus"}, ConfigError, "unknown time zone 'Mars/Olympus'"),
        ({"every": 0.5}, ConfigError, "at least 1 second"),
        ({"every": 5, "tz": "UTC"}, ConfigError, "tz applies to cron expressions"),
        ({"every": 5, "missed": "later"}, ConfigError, "missed must be 'skip' or 'catch_up'"),
        ({"every": 5, "name": "has space"}, ValueError, "invalid schedule name"),
    ]
    for kwargs, exc, message in cases:
        with pytest.raises(exc) as info:
            w.cron(**kwargs)(job)
        assert message in str(info.value), kwargs
    with pytest.raises(ConfigError, match="arguments do not fit"):
        w.cron(every=5, name="a1", args=(1, 2, 3))(job_with_args)
    w.cron(every=5, name="dup")(job)
    with pytest.raises(ConfigError, match="a schedule named 'dup' is already registered"):
        w.cron(every=5, name="dup")(w.task(name="other")(job))
    assert list(w.scheduler.schedules) == ["dup"]
    # one scheduler service however many schedules
    assert sum(getattr(svc, "__self__", None) is w.scheduler for svc in w.services) == 1


def test_a_schedule_registers_a_task_and_can_wrap_an_existing_one(redis_url: str) -> None:
    w = Worker(redis_url, queues={"default": 5, "reports": 5})
    t = w.cron("0 3 1 * *", tz="Asia/Tokyo", queue="reports")(job)
    assert w.tasks[t.name] is t and t.queue == "reports"
    report = w.task(name="report")(job_with_args)
    w.cron("0 * * * *", name="hourly", args=("eu",))(report)
    w.cron("0 0 * * *", name="daily", args=("eu",), kwargs={"full": True})(report)
    s = w.scheduler.get("daily")
    assert s.task is report and s.args == ("eu",) and s.kwargs == {"full": True}
    assert s.payload == b'{"t":"report","a":["eu"],"k":{"full":true}}'
    assert w.scheduler.get(t.name).tz_name == "Asia/Tokyo"
    with pytest.raises(UnknownScheduleError, match="no schedule named 'nope'"):
        w.scheduler.get("nope")


def test_a_worker_is_what_the_scheduler_takes() -> None:
    host: CronHost = Worker()  # checked by mypy: the Worker satisfies the protocol
    assert host.settings.prefix == "aioworker"


def test_tick_of_reads_the_tick_from_the_job_id() -> None:
    at = datetime(2024, 5, 1, 3, tzinfo=UTC)
    ms = int(at.timestamp() * 1000)
    assert tick_of(f"cron:nightly:{ms}") == CronTick("nightly", at, manual=False)
    assert tick_of(f"cron:a:b:{ms}:now-1f2e3d4c") == CronTick("a:b", at, manual=True)
    assert tick_of("9f2c0d") is None
    assert tick_of("cron:x:notanumber") is None


async def test_list_shows_every_schedule_with_its_next_run(app: Worker) -> None:
    infos = await app.scheduler.list()
    assert [i.name for i in infos] == ["every-second", "monthly-tokyo"]
    every, monthly = infos
    now = datetime.now(UTC)
    assert every.schedule == "every 1 s" and every.tz == "-" and every.missed == "skip"
    assert every.next_run is not None and every.next_run.microsecond == 0
    assert now - timedelta(seconds=2) < every.next_run <= now + timedelta(seconds=2)
    tokyo = ZoneInfo("Asia/Tokyo")
    local = now.astimezone(tokyo)
    expected = local.replace(day=1, hour=3, minute=0, second=0, microsecond=0)
    if expected <= local:
        expected = (expected + timedelta(days=32)).replace(day=1)
    assert monthly.next_run == expected
    assert (monthly.schedule, monthly.tz, monthly.missed) == ("0 3 1 * *", "Asia/Tokyo", "catch_up")
    assert monthly.task == "monthly" and monthly.queue == "default"
    assert not monthly.paused and monthly.last_job_id is None


# -- running ---------------------------------------------------------------------------


async def test_ticks_run_once_each_and_pause_resume_and_run_now_work(
    app: Worker, raw: Raw, prefix: str
) -> None:
    sched = app.scheduler
    async with running(app):
        await wait_until(lambda: _count(raw, prefix, 3))
        paused = await sched.pause("every-second")
        assert paused.paused and paused.next_run is None
        await asyncio.sleep(0.5)  # a tick enqueued just before the pause may still run
        before_pause = await recorded(raw, prefix)
        manual = await sched.run_now("every-second")
        assert manual.id.startswith("cron:every-second:") and ":now-" in manual.id
        await asyncio.sleep(2.5)
        during = await recorded(raw, prefix)
        # no tick ran while paused; the manual run did, once
        assert {k: v for k, v in during.items() if not k.startswith("now:")} == before_pause
        assert during[f"now:{manual.id}"] == 1
        resumed = await sched.resume("every-second")
        assert not resumed.paused and resumed.last_tick is not None
        await wait_until(lambda: _count(raw, prefix, len(before_pause) + 2))
        info = await sched.info("every-second")
    after = await recorded(raw, prefix)
    ticks = tick_times(after)
    assert all(n == 1 for n in after.values()), after
    assert await recorded(raw, prefix, "reruns") == {}
    first_batch = tick_times(before_pause)
    assert first_batch == list(range(first_batch[0], first_batch[-1] + 1000, 1000))
    # ticks after the resume start after it: the paused ones were skipped, never run late
    later = [t for t in ticks if t > first_batch[-1]]
    assert resumed.last_tick is not None
    assert later and later[0] > int(resumed.last_tick.timestamp() * 1000)
    assert later == list(range(later[0], later[-1] + 1000, 1000))
    assert info.last_job_id is not None and info.last_job_id.startswith("cron:every-second:")


async def _count(raw: Raw, prefix: str, n: int) -> bool:
    return len(tick_times(await recorded(raw, prefix))) >= n


@pytest.mark.parametrize("missed", ["skip", "catch_up"])
async def test_ticks_missed_while_no_worker_ran(
    url: str, raw: Raw, prefix: str, missed: Missed
) -> None:
    w = Worker(url, prefix=prefix, result_ttl=1)
    w.cron(every=1, name="beat", missed=missed, grace=5)(cron_app.record)
    key = QueueKeys(prefix, "default").cron("beat")
    now_s, _ = await raw.time()
    # the last tick handled was a minute ago: no worker ran since
    marker = (int(now_s) - 60) * 1000
    await raw.hset(key, "last", str(marker))
    try:
        async with running(w):
            await wait_until(lambda: _count(raw, prefix, 4))
    finally:
        await w.close()
    # a tick whose first attempt failed on a transient error ran again as a re-run: it
    # still counts as handled once (re-runs are at-least-once execution, not doubled ticks)
    ticks = sorted(
        set(tick_times(await recorded(raw, prefix)))
        | set(tick_times(await recorded(raw, prefix, "reruns")))
    )
    old = [t for t in ticks if t < marker + 50_000]
    recent = [t for t in ticks if t >= marker + 50_000]
    if missed == "catch_up":
        assert old == [marker + 1000]  # one job for all the missed ticks: the first one's id
    else:
        assert old == []
    # ticks late by less than the grace (5 s) still ran, each once, none lost after them
    assert recent[0] <= (int(now_s) - 3) * 1000
    assert recent == list(range(recent[0], recent[-1] + 1000, 1000))
    assert all(n == 1 for n in (await recorded(raw, prefix)).values())


async def test_controls_of_an_unknown_schedule_raise(app: Worker) -> None:
    for call in (app.scheduler.pause, app.scheduler.resume, app.scheduler.run_now):
        with pytest.raises(UnknownScheduleError, match="known: every-second, monthly-tokyo"):
            await call("nope")


async def test_schedulers_that_all_believe_they_lead_still_enqueue_each_tick_once(
    url: str, raw: Raw, prefix: str
) -> None:
    # as during a failover where the old leader has not noticed yet: three processes run
    # the scheduler loop at once; only the marker's compare-and-set keeps ticks single
    workers = [cron_app.build(url, prefix) for _ in range(3)]
    loops = [
        asyncio.create_task(Ticker(w.scheduler, w.leader("cron-test")).run()) for w in workers[1:]
    ]
    try:
        async with running(workers[0]):
            await wait_until(lambda: _count(raw, prefix, 4))
            await asyncio.sleep(2.2)  # results expire after 1 s: ids alone cannot dedupe
            # a leader that froze (a long pause) wakes with an old marker in memory and
            # replays ticks whose jobs ran and whose results expired
            stale = Ticker(workers[1].scheduler, workers[1].leader("cron-test"))
            track = stale.tracks[0]
            assert track.schedule.name == "every-second"
            track.clock(await workers[1].client.broker.redis_time_ms())
            track.marker_ms = track.now_ms - 4000
            await stale._advance(track)
            await asyncio.sleep(1.2)
    finally:
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for w in workers:
            await w.close()
    runs = await recorded(raw, prefix)
    ticks = tick_times(runs)
    assert len(ticks) >= 6 and ticks == list(range(ticks[0], ticks[-1] + 1000, 1000))
    assert all(n == 1 for n in runs.values()), runs
