"""Supervised loops: a failure is logged at once, the loop restarts, a loop that keeps
failing turns /livez unhealthy and then stops the worker."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from aioworker import ConfigError, JobContext, Worker, WorkerUnhealthy
from aioworker.extensions import RunContext
from aioworker.keys import RegistryKeys
from aioworker.runtime import Runtime
from aioworker.supervisor import Supervisor
from tests.redis_procs import RedisFactory
from tests.worker_kit import running
from tests.worker_procs import WorkerSpawner


@pytest.fixture
def loop_errors() -> Iterator[list[dict[str, Any]]]:
    """What reaches the event loop's exception handler ("Task exception was never
    retrieved" among them) while the test runs."""
    loop = asyncio.get_event_loop()
    seen: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
    finally:
        with warnings.catch_warnings():  # sockets other tests left to the collector
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()  # a task destroyed with its exception unread reports it now
        loop.set_exception_handler(old)


async def until(check: Any, what: str, tries: int = 400) -> None:
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


async def test_a_failing_loop_is_logged_at_once_and_restarted(
    caplog: pytest.LogCaptureFixture, loop_errors: list[dict[str, Any]]
) -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) <= 3:
            raise RuntimeError(f"boom {len(runs)}")

    sup = Supervisor()
    with caplog.at_level(logging.ERROR, logger="aioworker.worker"):
        task = sup.spawn("flaky", flaky)
        await asyncio.wait_for(task, 10)
    assert runs == [0, 1, 2, 3]  # three failures, then a run that returned
    failures = [r for r in caplog.records if "background loop flaky failed" in r.getMessage()]
    assert len(failures) == 3
    assert all(r.levelno == logging.ERROR and r.exc_info is not None for r in failures)
    assert "boom 1" in caplog.text
    assert sup.failing() == {} and sup.liveness() is None
    assert loop_errors == []


async def test_a_loop_failing_for_long_is_unhealthy_then_asks_to_exit() -> None:
    reasons: list[str] = []

    async def broken() -> None:
        raise ConnectionAbortedError("never works")

    sup = Supervisor(unhealthy_after_s=0.2, exit_after_s=0.6, on_exit=reasons.append)
    task = sup.spawn("broken", broken)
    try:
        assert sup.liveness() is None
        await until(lambda: sup.liveness() is not None, "unhealthy")
        assert "loop broken failing for" in str(sup.liveness())
        await until(lambda: reasons, "asked to exit")
        await asyncio.sleep(0.5)  # still failing: asked once only
        assert len(reasons) == 1 and reasons[0].startswith("loop broken failing for")
    finally:
        await sup.stop()
    assert task.cancelled()


async def test_a_loop_that_recovers_is_healthy_again() -> None:
    runs: list[int] = []
    forever = asyncio.Event()

    async def recovers() -> None:
        runs.append(1)
        if len(runs) < 4:
            raise RuntimeError("not yet")
        await forever.wait()

    sup = Supervisor(unhealthy_after_s=0.05, exit_after_s=60, healthy_run_s=0.2)
    sup.spawn("recovers", recovers)
    try:
        await until(lambda: sup.liveness() is not None, "unhealthy")
        await until(lambda: len(runs) == 4, "restarted a fourth time")
        await until(lambda: sup.liveness() is None, "healthy again once it runs well")
    finally:
        await sup.stop()


async def test_a_fetch_loop_denied_by_redis_logs_keeps_going_and_recovers(
    redis_factory: RedisFactory,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    loop_errors: list[dict[str, Any]],
) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    worker = Worker(
        server.url, prefix=prefix, queues={"default": 4}, lease_timeout=5, cluster=False,
        loop_unhealthy_after=0.3,
    )  # fmt: skip
    done: list[int] = []
    runtimes: list[Runtime] = []

    @worker.task(name="work")
    async def work(ctx: JobContext, n: int) -> None:
        done.append(n)

    @worker.service
    async def grab(rt: RunContext) -> None:
        assert isinstance(rt, Runtime)  # the test looks inside the run it serves
        runtimes.append(rt)
        await asyncio.Event().wait()

    try:
        await worker.enqueue_many([work.call(n) for n in range(5)])
        with caplog.at_level(logging.ERROR, logger="aioworker.worker"):
            async with running(worker):
                await until(lambda: len(done) == 5, "the first jobs ran")
                rt = runtimes[0]
                # an operator's ACL edit takes scripts away from the worker's user
                admin.execute_command("ACL", "SETUSER", "default", "-eval", "-evalsha")  # type: ignore[no-untyped-call]
                await until(lambda: "background loop fetch:default failed" in caplog.text, "log")
                await until(lambda: rt.liveness() is not None, "/livez unhealthy")
                assert "fetch:default" in str(rt.liveness())
                assert "lacks" in caplog.text or "ACL permission" in caplog.text
                admin.execute_command("ACL", "SETUSER", "default", "+@all")  # type: ignore[no-untyped-call]
                await worker.enqueue_many([work.call(n) for n in range(5, 10)])
                await until(lambda: len(done) == 10, "the loop restarted and ran new jobs")
        assert sorted(done) == list(range(10))
        assert loop_errors == []
        assert "never retrieved" not in caplog.text
    finally:
        await worker.close()
        admin.close()


async def test_a_service_that_keeps_failing_stops_the_worker_unhealthy(
    redis_url: str, prefix: str, loop_errors: list[dict[str, Any]]
) -> None:
    worker = Worker(redis_url, prefix=prefix, loop_unhealthy_after=0.1, loop_exit_after=0.5)
    done: list[int] = []

    @worker.task(name="work")
    async def work(ctx: JobContext, n: int) -> None:
        done.append(n)

    @worker.service
    async def broken(rt: RunContext) -> None:
        raise RuntimeError("this service never works")

    try:
        await worker.enqueue_many([work.call(n) for n in range(20)])
        with pytest.raises(WorkerUnhealthy, match=r"loop service:\d+:broken failing for"):
            await asyncio.wait_for(worker.run(handle_signals=False), 20)
        assert sorted(done) == list(range(20))  # jobs ran meanwhile, none was lost
        assert await worker.client.counts("default") == {
            "ready": 0,
            "scheduled": 0,
            "active": 0,
            "dead": 0,
        }
        assert loop_errors == []
    finally:
        await worker.close()


@pytest.mark.slow
async def test_the_cli_exits_1_when_a_loop_keeps_failing(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    proc = spawn_worker(
        "tests.apps.unhealthy:worker", env={"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    )
    assert await spawn_worker.wait_exit(proc, timeout_s=30) == 1
    out = spawn_worker.output(proc)
    assert "background loop service:" in out and "this service cannot start" in out
    assert "worker stopped: loop service:" in out
    assert "never retrieved" not in out


def test_loop_limits_are_checked() -> None:
    for unhealthy, exit_after in [(0, 10), (20, 10), (float("nan"), 10)]:
        with pytest.raises(ConfigError, match="loop_unhealthy_after"):
            Worker(loop_unhealthy_after=unhealthy, loop_exit_after=exit_after)
    with pytest.raises(ValueError, match="negative"):
        Worker(loop_unhealthy_after=-1)
    assert Worker(loop_unhealthy_after=5, loop_exit_after=float("inf")).loop_exit_after_s > 5


async def test_the_registry_loop_refused_by_redis_is_restarted_and_republishes(
    redis_factory: RedisFactory,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    loop_errors: list[dict[str, Any]],
) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    worker = Worker(
        server.url, prefix=prefix, lease_timeout=2, cluster=False, loop_unhealthy_after=0.3
    )
    runtimes: list[Runtime] = []

    @worker.service
    async def grab(rt: RunContext) -> None:
        assert isinstance(rt, Runtime)  # the test looks inside the run it serves
        runtimes.append(rt)
        await asyncio.Event().wait()

    rk = RegistryKeys(prefix)

    def listed() -> bool:
        return bool(runtimes) and admin.hexists(rk.worker_info, runtimes[0].worker_id) == 1

    try:
        with caplog.at_level(logging.ERROR, logger="aioworker.worker"):
            async with running(worker):
                await until(listed, "the worker's record is published")
                rt = runtimes[0]
                admin.delete(rk.worker_info)
                admin.set(rk.worker_info, "garbage")  # every refresh is refused (WRONGTYPE)
                await until(lambda: "background loop registry failed" in caplog.text, "log")
                await until(lambda: rt.liveness() is not None, "/livez unhealthy")
                assert "registry" in str(rt.liveness())
                admin.delete(rk.worker_info)
                await until(listed, "the restarted loop republished the record")
                assert not rt.stopped.is_set()  # the worker kept running
        assert loop_errors == []
    finally:
        await worker.close()
        admin.close()


async def test_a_registry_unusable_at_start_up_is_registered_later_and_jobs_run(
    redis_factory: RedisFactory, prefix: str, loop_errors: list[dict[str, Any]]
) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    rk = RegistryKeys(prefix)
    admin.set(rk.worker_info, "garbage")  # the first record is refused (WRONGTYPE)
    worker = Worker(server.url, prefix=prefix, lease_timeout=2, cluster=False)

    @worker.task(name="double")
    async def double(ctx: JobContext, n: int) -> int:
        return 2 * n

    try:
        async with running(worker):
            handles = [await double.enqueue(n) for n in range(5)]
            assert [await h.result(timeout=10) for h in handles] == [0, 2, 4, 6, 8]
            assert admin.type(rk.worker_info) == b"string"  # still unregistered
            admin.delete(rk.worker_info)
            await until(lambda: admin.hlen(rk.worker_info) == 1, "registered once it could be")
        assert loop_errors == []
    finally:
        await worker.close()
        admin.close()


async def test_acks_refused_by_redis_are_kept_and_written_once_it_accepts_them(
    redis_factory: RedisFactory,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
    loop_errors: list[dict[str, Any]],
) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    worker = Worker(
        server.url, prefix=prefix, queues={"default": 30}, lease_timeout=5, cluster=False
    )
    runs: list[int] = []
    release = asyncio.Event()
    runtimes: list[Runtime] = []

    @worker.task(name="work")
    async def work(ctx: JobContext, n: int) -> int:
        runs.append(n)
        await release.wait()
        return n

    @worker.service
    async def grab(rt: RunContext) -> None:
        assert isinstance(rt, Runtime)  # the test looks inside the run it serves
        runtimes.append(rt)
        await asyncio.Event().wait()

    try:
        handles = await worker.enqueue_many([work.call(n) for n in range(30)])
        with caplog.at_level(logging.ERROR, logger="aioworker.worker"):
            async with running(worker):
                await until(lambda: len(runs) == 30, "all 30 jobs are running")
                rt = runtimes[0]
                # every ack of the 30 jobs finishing now is refused by an ACL edit
                admin.execute_command("ACL", "SETUSER", "default", "-eval", "-evalsha")  # type: ignore[no-untyped-call]
                release.set()
                acker = rt.outcomes.ackers["default"]
                await until(lambda: "background loop acks:default failed" in caplog.text, "log")
                assert acker.pending > 0 and rt.stats["complete"] < 30  # held, not dropped
                admin.execute_command("ACL", "SETUSER", "default", "+@all")  # type: ignore[no-untyped-call]
                await until(lambda: rt.stats["complete"] == 30, "the kept acks were written")
                results = [await h.result(timeout=5) for h in handles]
        assert results == list(range(30))
        assert sorted(runs) == list(range(30))  # each job ran once: no ack was lost
        assert await worker.client.counts("default") == {
            "ready": 0,
            "scheduled": 0,
            "active": 0,
            "dead": 0,
        }
        assert "internal error while handling its outcome" not in caplog.text
        assert loop_errors == []
    finally:
        await worker.close()
        admin.close()
