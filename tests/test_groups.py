"""Fair sharing between groups: round-robin order, caps, rate limits and progress counts."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import pytest

from aioworker import (
    ConfigError,
    EnqueueError,
    GroupProgress,
    GroupRateLimit,
    Groups,
    JobContext,
    JobStatus,
    Window,
)
from aioworker.admin import Admin
from tests.scriptkit import LEASE_MS, PAYLOAD, open_kit
from tests.worker_kit import MakeWorker, running, running_all


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


async def until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def wait_running(groups: Groups, group: str, n: int) -> None:
    for _ in range(1000):
        if (await groups.progress(group)).running == n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"group {group} never had {n} running jobs")


async def test_a_small_group_finishes_long_before_a_large_backlog(
    make_worker: MakeWorker,
) -> None:
    w = make_worker(queues={"default": 20})
    order: list[tuple[str, int]] = []

    @w.task(group=lambda company, n: company)
    async def work(ctx: JobContext, company: str, n: int) -> None:
        order.append((company, n))

    await w.enqueue_many([work.call("A", n) for n in range(5_000)])
    async with running(w):
        await until(lambda: len(order) >= 100)
        at_b = len(order)
        await w.enqueue_many([work.call("B", n) for n in range(50)])
        await until(lambda: len(order) == 5_050)

    a_index = [i for i, (g, _) in enumerate(order) if g == "A"]
    b_index = [i for i, (g, _) in enumerate(order) if g == "B"]
    assert sorted(n for g, n in order if g == "A") == list(range(5_000))
    assert sorted(n for g, n in order if g == "B") == list(range(50))
    # B's 50 jobs take turns with A's backlog: all done long before A's median job
    assert b_index[-1] < a_index[len(a_index) // 2]
    assert b_index[-1] - at_b < 300
    progress = await Groups(w).progress_many(["A", "B"])
    assert progress == {
        "A": GroupProgress("A", 5_000, 0, 0, 5_000, 0),
        "B": GroupProgress("B", 50, 0, 0, 50, 0),
    }


async def test_a_group_cap_holds_across_workers_and_is_reached(make_worker: MakeWorker) -> None:
    w1, w2 = make_worker(queues={"default": 10}), make_worker(queues={"default": 10})
    now: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def job(ctx: JobContext, company: str) -> None:
        now[company] += 1
        peak[company] = max(peak[company], now[company])
        await asyncio.sleep(0.03)
        now[company] -= 1

    for w in (w1, w2):
        w.task(name="job", group=lambda company: company)(job)
    groups = Groups(w1)
    await groups.set_concurrency(3, group="A")
    assert await groups.get_concurrency("A") == 3
    assert await groups.get_concurrency("B") is None

    handles = await w1.enqueue_many([w1.tasks["job"].call(c) for c in "AB" * 30])
    async with running_all(w1, w2):
        for h in handles:
            await h.result(timeout=60)
    assert peak["A"] == 3
    assert peak["B"] > 3
    assert (await groups.progress("A")).done == 30


async def test_a_rate_limit_per_group(make_worker: MakeWorker) -> None:
    w = make_worker(queues={"default": 20})
    starts: dict[str, list[float]] = {"A": [], "B": []}
    limit = Window("per-company", 4, per=1, on=w)

    @w.task(group=lambda company, n: company, gates=[GroupRateLimit(limit)])
    async def call_erp(ctx: JobContext, company: str, n: int) -> int:
        starts[company].append(time.monotonic())
        return ctx.attempt

    handles = await w.enqueue_many([call_erp.call(c, n) for n in range(6) for c in "AB"])
    async with running(w):
        attempts = [await h.result(timeout=30) for h in handles]
    assert attempts == [1] * 12  # deferred, never failed
    for times in starts.values():
        assert len(times) == 6
        times.sort()
        # never more than 4 starts of one company within a second. The window admits in
        # Redis; the start is seen here after a fetch, so allow half a second of delay
        # between admission and start on a loaded machine.
        for i in range(len(times) - 4):
            assert times[i + 4] - times[i] > 0.5
    # the two companies do not wait for each other: each company's first four start
    # before either company's fifth
    assert max(starts["A"][3], starts["B"][3]) < min(starts["A"][4], starts["B"][4])


async def test_progress_counts_running_done_dead_and_revived_jobs(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    go = asyncio.Event()
    groups = Groups(w)

    @w.task(retries=0, group="acme")
    async def step(ctx: JobContext, fail: bool) -> None:
        await go.wait()
        if fail:
            raise ValueError("no")

    await w.enqueue_many([step.call(False), step.call(False), step.call(True)])
    assert await groups.progress("acme") == GroupProgress("acme", 3, 3, 0, 0, 0)
    assert (await w.client.counts("default"))["ready"] == 3  # the fair set counts as ready
    async with running(w):
        await wait_running(groups, "acme", 3)
        assert await groups.progress("acme") == GroupProgress("acme", 3, 0, 3, 0, 0)
        go.set()
        await wait_running(groups, "acme", 0)
    assert await groups.progress("acme") == GroupProgress("acme", 3, 0, 0, 2, 1)
    assert await groups.all() == {"acme": GroupProgress("acme", 3, 0, 0, 2, 1)}

    assert await w.client.retry_dead("default") == 1
    assert await groups.progress("acme") == GroupProgress("acme", 3, 1, 0, 2, 0)
    await groups.reset("acme")
    assert await groups.progress("acme") == GroupProgress("acme", 1, 1, 0, 0, 0)
    await w.run(burst=True, handle_signals=False)
    await groups.reset("acme")
    assert await groups.all() == {}


async def test_requeue_releases_a_group_slot_and_trimmed_dead_jobs_leave_no_mapping(
    redis_url: str, prefix: str
) -> None:
    from aioworker.scripts import EnqueueItem

    async with open_kit(redis_url, prefix) as kit:
        items = [EnqueueItem(i, PAYLOAD, group="A") for i in ("a", "b")]
        await kit.scripts.enqueue_items(kit.k, items)
        await kit.fetch(2, "w1:1")
        assert await kit.scripts.requeue(kit.k, "a", "w1:1")
        assert (await kit.hash(kit.k.groups))["r:A"] == b"1"
        # a dead-letter set of one: one of the two dead letters is trimmed
        assert await kit.scripts.dead(kit.k, "b", "w1:1", b"{}", b"{}", 0, 1, LEASE_MS)
        await kit.fetch(1, "w1:2")
        assert await kit.scripts.dead(kit.k, "a", "w1:2", b"{}", b"{}", 0, 1, LEASE_MS)
        kept = set(await kit.zset(kit.k.dead))
        assert len(kept) == 1
        assert set(await kit.hash(kit.k.group_of)) == kept
        groups = await kit.hash(kit.k.groups)
        assert (groups["r:A"], groups["x:A"]) == (b"0", b"2")


async def test_bad_groups_are_refused(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(group=lambda n: "" if n else "ok")
    async def job(ctx: JobContext, n: int) -> None:
        return None

    with pytest.raises(EnqueueError, match="group function"):
        await job.enqueue(1)
    with pytest.raises(ConfigError):
        job.options(group="")
    with pytest.raises(ConfigError):
        w.task(name="bad", group=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        await Groups(w).set_concurrency(0)


async def test_cancelled_grouped_jobs_leave_their_counts_and_free_their_slot(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()
    groups, admin = Groups(w), Admin(w)
    await groups.set_concurrency(1, group="A")

    @w.task(group="A")
    async def hang(ctx: JobContext, n: int) -> int:
        if n == 1:
            await asyncio.Event().wait()  # runs until cancelled
        return n

    first, second, third = await w.enqueue_many([hang.call(n) for n in (1, 2, 3)])
    assert (await admin.cancel("default", third.id)).outcome == "cancelled"
    assert await groups.progress("A") == GroupProgress("A", 2, 2, 0, 0, 0, 1)
    async with running(w):
        await wait_running(groups, "A", 1)
        assert (await admin.cancel("default", first.id)).outcome == "requested"
        # the cancelled run frees the group's only slot: the second job runs
        assert await second.result(timeout=30) == 2
    assert await first.status() is JobStatus.CANCELLED
    assert await groups.progress("A") == GroupProgress("A", 1, 0, 0, 1, 0, 1)
