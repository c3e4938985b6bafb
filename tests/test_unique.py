"""Unique jobs, debounce and throttle, on one Redis and on the 3-master cluster."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import sys
import time
from typing import Any

import orjson
import pytest

from aioworker import (
    ConfigError,
    Debounce,
    DuplicateJob,
    EnqueueError,
    JobContext,
    JobHandle,
    JobStatus,
    Retry,
    Throttle,
    Unique,
)
from aioworker.unique import args_key
from tests.apps import unique_app
from tests.worker_kit import MakeWorker, burst, running
from tests.worker_procs import WorkerSpawner


@pytest.fixture(params=["single", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """The URL of the single-node server, then of the cluster."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    value: str = request.getfixturevalue(name)
    return value


@pytest.fixture
def worker_url(url: str) -> str:
    """``make_worker`` builds its workers on this module's ``url``."""
    return url


async def wait_status(handle: JobHandle[Any], status: JobStatus) -> None:
    for _ in range(1000):
        if await handle.status() is status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {handle.id} never became {status}")


@pytest.mark.slow
async def test_50_concurrent_enqueues_from_several_processes_run_the_job_once(
    url: str, prefix: str, spawn_worker: WorkerSpawner
) -> None:
    start_at = time.time() + 3.0
    env = {"AIOWORKER_REDIS_URL": url, "TEST_PREFIX": prefix}
    argv = [sys.executable, "-m", "tests.apps.unique_app", "10", str(start_at)]
    procs = [spawn_worker.spawn(argv, env=env) for _ in range(5)]
    replies: list[list[Any]] = []
    for proc in procs:
        assert await spawn_worker.wait_exit(proc) == 0, spawn_worker.output(proc)
        replies += orjson.loads(spawn_worker.output(proc).strip().splitlines()[-1])

    assert len(replies) == 50
    assert sum(1 for _, created in replies if created) == 1
    (job_id,) = {job_id for job_id, _ in replies}

    w = unique_app.build(url, prefix)
    try:
        unique_app.RUNS.clear()
        stats = await burst(w, timeout_s=30)
        assert [(job_id, 42)] == unique_app.RUNS
        assert stats["complete"] == 1
        # released by the success: the next enqueue creates a new job
        again = await w.enqueue("report", 42)
        assert again.created and again.id != job_id
    finally:
        await w.close()


async def test_until_started_is_released_when_a_worker_starts_the_job(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    started, go = asyncio.Event(), asyncio.Event()
    runs: list[int] = []

    @w.task(unique="until_started")
    async def sync(ctx: JobContext, account: int) -> int:
        runs.append(account)
        started.set()
        await go.wait()
        return account

    first = await sync.enqueue(1)
    dup = await sync.enqueue(1)
    other = await sync.enqueue(2)  # another key
    assert (first.created, dup.created, dup.id, other.created) == (True, False, first.id, True)

    async with running(w):
        await asyncio.wait_for(started.wait(), 10)
        await wait_status(first, JobStatus.RUNNING)
        second = await sync.enqueue(1)
        assert second.created and second.id != first.id
        go.set()
        assert await second.result(timeout=10) == 1
        assert await first.result(timeout=10) == 1
        assert await other.result(timeout=10) == 2
    assert sorted(runs) == [1, 1, 2]


async def test_until_succeeded_is_kept_across_retries_and_released_on_success(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    failed = asyncio.Event()
    runs: list[int] = []

    @w.task(unique=Unique("until_succeeded", ttl=60))
    async def charge(ctx: JobContext, order: int) -> int:
        runs.append(ctx.attempt)
        if ctx.attempt == 1:
            failed.set()
            raise Retry(delay=0.5)
        return order

    first = await charge.enqueue(7)
    async with running(w):
        await asyncio.wait_for(failed.wait(), 10)
        await wait_status(first, JobStatus.SCHEDULED)
        during_retry = await charge.enqueue(7)
        assert (during_retry.created, during_retry.id) == (False, first.id)
        assert await first.result(timeout=10) == 7
        after = await charge.enqueue(7)
        assert after.created and after.id != first.id
        assert await after.result(timeout=10) == 7
    assert runs == [1, 2, 1, 2]  # each job failed once, then succeeded


async def test_until_succeeded_is_released_when_the_job_is_dead_lettered(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()

    @w.task(retries=0, unique="until_succeeded")
    async def doomed(ctx: JobContext, n: int) -> None:
        raise ValueError("no")

    first = await doomed.enqueue(1)
    assert not (await doomed.enqueue(1)).created
    await burst(w, timeout_s=30)
    assert await first.status() is JobStatus.DEAD
    again = await doomed.enqueue(1)
    assert again.created and again.id != first.id


async def test_while_running_runs_one_at_a_time_without_using_attempts(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(queues={"default": 10})
    spans: dict[int, tuple[float, float]] = {}

    @w.task()
    async def export(ctx: JobContext, n: int) -> int:
        begin = time.monotonic()
        await asyncio.sleep(0.2)
        spans[n] = (begin, time.monotonic())
        return ctx.attempt

    policy = Unique("while_running", key="account-9")
    handles = [await export.options(unique=policy).enqueue(n) for n in range(3)]
    assert all(h.created for h in handles)  # while_running never refuses an enqueue
    free = await export.enqueue(99)  # not unique: runs beside them

    await burst(w, timeout_s=30)

    assert [await h.result(timeout=1) for h in handles] == [1, 1, 1]  # no attempt used
    assert await free.result(timeout=1) == 1
    locked = sorted(spans[n] for n in range(3))
    for (_, end), (begin, _) in itertools.pairwise(locked):
        assert begin >= end  # one at a time
    # the free job ran beside the first locked one, not after the three of them
    assert spans[99][0] < locked[1][0]


async def test_a_lock_lapses_after_its_ttl(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(unique=Unique(ttl=0.3))
    async def ping(ctx: JobContext, n: int) -> None:
        return None

    first = await ping.enqueue(1)
    assert (await ping.enqueue(1)).id == first.id
    await asyncio.sleep(0.5)
    later = await ping.enqueue(1)
    assert later.created and later.id != first.id


async def test_debounce_runs_once_with_the_latest_arguments(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[str] = []

    @w.task(unique=Debounce(0.3))
    async def reindex(ctx: JobContext, text: str) -> str:
        runs.append(text)
        return text

    handles = [await reindex.enqueue(f"v{i}") for i in range(5)]
    assert [h.created for h in handles] == [True, False, False, False, False]
    assert {h.id for h in handles} == {handles[0].id}
    assert await handles[0].status() is JobStatus.SCHEDULED
    await burst(w, timeout_s=30)
    assert runs == ["v4"]
    assert await handles[0].result(timeout=1) == "v4"


async def test_throttle_runs_once_with_the_first_arguments(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[str] = []

    @w.task(unique=Throttle(30, key="digest"))
    async def digest(ctx: JobContext, text: str) -> str:
        runs.append(text)
        return text

    handles = [await digest.enqueue(f"v{i}") for i in range(5)]
    assert [h.created for h in handles] == [True, False, False, False, False]
    await burst(w, timeout_s=30)
    assert runs == ["v0"]
    # still inside the window after the run: nothing new
    assert not (await digest.enqueue("v5")).created
    await burst(w, timeout_s=30)
    assert runs == ["v0"]


async def test_a_duplicate_raises_when_asked(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(unique=Unique(on_duplicate="raise"))
    async def send(ctx: JobContext, to: str) -> None:
        return None

    first = await send.enqueue("a@b.c")
    with pytest.raises(DuplicateJob) as caught:
        await send.enqueue("a@b.c")
    assert (caught.value.job_id, caught.value.queue) == (first.id, "default")

    with pytest.raises(DuplicateJob) as caught:
        await w.enqueue_many([send.call("a@b.c"), send.call("x@y.z")])
    handles = caught.value.handles
    assert [(h.id == first.id, h.created) for h in handles] == [(True, False), (False, True)]
    assert await handles[1].status() is JobStatus.QUEUED


async def test_explicit_keys_are_shared_by_tasks_and_key_functions_see_the_arguments(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()

    @w.task(unique=Unique(key=lambda account, **_: f"acct-{account}"))
    async def sync(ctx: JobContext, account: int, full: bool = False) -> None:
        return None

    @w.task()
    async def repair(ctx: JobContext, account: int) -> None:
        return None

    first = await sync.enqueue(5)
    assert (await sync.enqueue(5, full=True)).id == first.id
    assert (await repair.options(unique=Unique(key="acct-5")).enqueue(5)).id == first.id
    assert (await sync.enqueue(6)).created


def test_default_key_normalises_arguments() -> None:
    async def fn(
        ctx: JobContext, a: int, b: int = 2, *, opts: dict[str, int] | None = None
    ) -> None:
        return None

    sig = inspect.signature(fn)
    key = args_key("t", sig, (1,), {})
    assert key == args_key("t", sig, (1, 2), {})
    assert key == args_key("t", sig, (), {"b": 2, "a": 1})
    assert args_key("t", sig, (1,), {"opts": {"x": 1, "y": 2}}) == args_key(
        "t", sig, (1,), {"opts": {"y": 2, "x": 1}}
    )
    assert key != args_key("t", sig, (1, 3), {})
    assert key != args_key("other", sig, (1,), {})
    assert key.startswith("t:")


async def test_bad_unique_options_are_refused(make_worker: MakeWorker) -> None:
    w = make_worker()
    with pytest.raises(ConfigError):
        Unique("until_done")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Unique(ttl=0)
    with pytest.raises(ConfigError):
        Debounce(1, max_wait=0.5)

    @w.task(unique=Debounce(1))
    async def later(ctx: JobContext) -> None:
        return None

    @w.task(unique=Unique(key=lambda n: ""))
    async def blank(ctx: JobContext, n: int) -> None:
        return None

    with pytest.raises(EnqueueError, match="no delay"):
        await later.options(delay=5).enqueue()
    with pytest.raises(EnqueueError, match="returned ''"):
        await blank.enqueue(1)
    with pytest.raises(ConfigError):
        w.task(name="x", unique=42)  # type: ignore[arg-type]
