"""Busy/idle hooks: called once per transition, never flapping, and never stopping the worker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any

import pytest

from aioworker import ConfigError, JobContext, Worker
from aioworker.hooks import BusyTracker
from tests.worker_kit import MakeWorker, burst


class Recorder:
    """Hooks and job markers appending to one ordered list of events."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.changed = asyncio.Event()

    def note(self, event: str) -> None:
        self.events.append(event)
        self.changed.set()

    async def on_busy(self) -> None:
        self.note("busy")

    async def on_idle(self) -> None:
        self.note("idle")

    async def wait_count(self, event: str, n: int) -> None:
        await self.wait_for(lambda: self.events.count(event) == n, f"{event} #{n}")

    def hooks(self) -> list[str]:
        return [e for e in self.events if e in ("busy", "idle")]

    async def wait_for(self, check: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting until {what}: {self.events}"
            self.changed.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 0.05)


async def failing_hook() -> None:
    raise RuntimeError("platform API refused")


@pytest.fixture
async def tracked() -> AsyncIterator[tuple[BusyTracker, Recorder]]:
    rec = Recorder()
    tracker = BusyTracker([rec.on_busy], [rec.on_idle], idle_delay_s=0.3)
    tracker.start()
    try:
        yield tracker, rec
    finally:
        await tracker.stop()


# -- BusyTracker alone ---------------------------------------------------------------


async def test_busy_is_reported_once_for_overlapping_jobs(
    tracked: tuple[BusyTracker, Recorder],
) -> None:
    tracker, rec = tracked
    tracker.job_started()
    tracker.job_started()
    await rec.wait_for(lambda: rec.events == ["busy"], "busy is reported")
    tracker.job_started()
    tracker.job_finished()
    await asyncio.sleep(0.5)  # longer than the idle delay: two jobs still run
    assert rec.events == ["busy"]
    tracker.job_finished()
    tracker.job_finished()
    await rec.wait_for(lambda: rec.events == ["busy", "idle"], "idle is reported")
    await asyncio.sleep(0.5)
    assert rec.events == ["busy", "idle"]


async def test_idle_waits_for_the_idle_delay(tracked: tuple[BusyTracker, Recorder]) -> None:
    tracker, rec = tracked
    tracker.job_started()
    await rec.wait_for(lambda: rec.events == ["busy"], "busy is reported")
    finished = time.monotonic()
    tracker.job_finished()
    await rec.wait_for(lambda: "idle" in rec.events, "idle is reported")
    assert time.monotonic() - finished >= 0.29  # the tracker's idle delay
    assert rec.events == ["busy", "idle"]


async def test_back_to_back_jobs_do_not_flap(tracked: tuple[BusyTracker, Recorder]) -> None:
    tracker, rec = tracked
    for _ in range(5):  # gaps much shorter than the idle delay
        tracker.job_started()
        await asyncio.sleep(0.05)
        tracker.job_finished()
        await asyncio.sleep(0.05)
    await rec.wait_for(lambda: "idle" in rec.events, "idle is reported")
    await asyncio.sleep(0.4)
    assert rec.events == ["busy", "idle"]


async def test_busy_again_after_idle_reports_a_new_transition(
    tracked: tuple[BusyTracker, Recorder],
) -> None:
    tracker, rec = tracked
    for n in (1, 2):
        tracker.job_started()
        await rec.wait_count("busy", n)
        tracker.job_finished()
        await rec.wait_count("idle", n)
    assert rec.events == ["busy", "idle", "busy", "idle"]


async def test_stop_while_busy_reports_idle_once() -> None:
    rec = Recorder()
    tracker = BusyTracker([rec.on_busy], [rec.on_idle], idle_delay_s=30)
    tracker.start()
    tracker.job_started()
    await rec.wait_for(lambda: rec.events == ["busy"], "busy is reported")
    await tracker.stop()
    assert rec.events == ["busy", "idle"]
    await tracker.stop()
    assert rec.events == ["busy", "idle"]


async def test_stop_when_never_busy_reports_nothing() -> None:
    rec = Recorder()
    tracker = BusyTracker([rec.on_busy], [rec.on_idle], idle_delay_s=0.1)
    tracker.start()
    await asyncio.sleep(0.2)
    await tracker.stop()
    assert rec.events == []


async def test_without_hooks_no_background_task_is_started() -> None:
    tracker = BusyTracker([], [])
    before = asyncio.all_tasks()
    tracker.start()
    tracker.job_started()
    assert not tracker.enabled
    assert asyncio.all_tasks() == before
    tracker.job_finished()
    await tracker.stop()


async def test_a_failing_hook_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="aioworker")
    rec = Recorder()
    tracker = BusyTracker([failing_hook, rec.on_busy], [failing_hook, rec.on_idle], 0.1)
    tracker.start()
    try:
        for n in (1, 2):
            tracker.job_started()
            await rec.wait_count("busy", n)
            tracker.job_finished()
            await rec.wait_count("idle", n)
    finally:
        await tracker.stop()
    assert rec.events == ["busy", "idle", "busy", "idle"]
    failures = [r for r in caplog.records if "hook" in r.getMessage()]
    assert [r.getMessage().split()[0] for r in failures] == ["on_busy", "on_idle"] * 2
    for record in failures:
        assert record.exc_info is not None
        assert "platform API refused" in str(record.exc_info[1])


# -- with a worker -------------------------------------------------------------------


def recording_tasks(worker: Worker, rec: Recorder) -> tuple[Any, Any]:
    """A task that may be interrupted and one that may not; both note start and end."""

    async def body(ctx: JobContext, name: str, seconds: float) -> str:
        rec.note(f"start:{name}")
        await asyncio.sleep(seconds)
        rec.note(f"end:{name}")
        return name

    plain = worker.task(name="plain")(body)

    @worker.task(name="critical", interruptible=False)
    async def critical(ctx: JobContext, name: str, seconds: float) -> str:
        return await body(ctx, name, seconds)

    return plain, critical


async def test_worker_reports_busy_then_idle_around_its_jobs(make_worker: MakeWorker) -> None:
    rec = Recorder()
    w = make_worker(queues={"default": 1}, on_busy=[rec.on_busy], on_idle=[rec.on_idle])
    plain, _ = recording_tasks(w, rec)
    for name in ("a", "b", "c"):
        await plain.enqueue(name, 0.2)

    stats = await burst(w)

    assert stats["complete"] == 3
    ev = rec.events
    assert rec.hooks() == ["busy", "idle"], ev
    assert [e for e in ev if e.startswith("end:")] == ["end:a", "end:b", "end:c"]
    assert ev.index("busy") < ev.index("end:a"), ev
    assert ev[-1] == "idle", ev


async def test_a_long_running_worker_goes_idle_and_busy_again(make_worker: MakeWorker) -> None:
    rec = Recorder()
    w = make_worker(on_busy=[rec.on_busy], on_idle=[rec.on_idle])
    plain, _ = recording_tasks(w, rec)
    run = asyncio.create_task(w.run(handle_signals=False))
    try:
        first = await plain.enqueue("a", 0.1)
        assert await first.result(timeout=10) == "a"
        await rec.wait_for(lambda: rec.hooks() == ["busy", "idle"], "idle after the first job")
        assert rec.events.index("idle") > rec.events.index("end:a")
        second = await plain.enqueue("b", 0.1)
        assert await second.result(timeout=10) == "b"
        await rec.wait_for(lambda: rec.hooks() == ["busy", "idle"] * 2, "idle after the second")
    finally:
        run.cancel()
        with suppress(asyncio.CancelledError):
            await run
    # already idle when stopped: nothing more is reported
    assert rec.hooks() == ["busy", "idle", "busy", "idle"]
    ev = rec.events
    assert ev.index("start:b") > ev.index("idle"), ev


async def test_protect_non_interruptible_ignores_interruptible_jobs(
    make_worker: MakeWorker,
) -> None:
    rec = Recorder()
    w = make_worker(on_busy=[rec.on_busy], on_idle=[rec.on_idle], protect="non_interruptible")
    plain, critical = recording_tasks(w, rec)
    await plain.enqueue("p1", 0.2)
    await plain.enqueue("p2", 0.2)
    stats = await burst(w)
    assert stats["complete"] == 2
    assert rec.hooks() == []

    await critical.enqueue("c", 0.2)
    await plain.enqueue("p3", 0.2)
    stats = await burst(w)
    assert stats["complete"] == 2
    ev = rec.events
    assert rec.hooks() == ["busy", "idle"], ev
    assert ev.index("busy") < ev.index("end:c") < ev.index("idle"), ev


async def test_protect_any_counts_interruptible_jobs(make_worker: MakeWorker) -> None:
    rec = Recorder()
    w = make_worker(on_busy=[rec.on_busy], on_idle=[rec.on_idle], protect="any")
    plain, _ = recording_tasks(w, rec)
    await plain.enqueue("p", 0.2)
    await burst(w)
    assert rec.hooks() == ["busy", "idle"]


async def test_failing_hooks_do_not_stop_the_worker(
    make_worker: MakeWorker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aioworker")
    rec = Recorder()
    w = make_worker(on_busy=[failing_hook, rec.on_busy], on_idle=[failing_hook, rec.on_idle])
    plain, _ = recording_tasks(w, rec)
    jobs = [await plain.enqueue(name, 0.1) for name in ("a", "b")]

    stats = await burst(w)

    assert stats == {"complete": 2, "retry": 0, "dead": 0, "requeue": 0, "defer": 0, "lost": 0}
    assert [await j.result(timeout=5) for j in jobs] == ["a", "b"]
    assert rec.hooks() == ["busy", "idle"]
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 2, failed
    assert failed[0].startswith("on_busy hook") and failed[1].startswith("on_idle hook")


def test_protect_rejects_unknown_values(redis_url: str) -> None:
    bad: Any = "always"
    with pytest.raises(ConfigError, match="protect"):
        Worker(redis_url, protect=bad)
