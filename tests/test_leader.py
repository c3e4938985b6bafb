"""Leader election in one process: election, step-down, takeover, loss, and singletons."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

import pytest
import redis

from aioworker import ConfigError, Leadership, LeadershipLost, Worker
from aioworker.keys import LeaderKeys
from tests.redis_procs import RedisFactory, RedisProcess

Make = Callable[..., Worker]


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def url(request: pytest.FixtureRequest) -> str:
    """The same tests on one Redis and on the three-master cluster."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def make(url: str, prefix: str) -> AsyncIterator[Make]:
    """Build workers of the test's prefix (one per simulated process); all closed after."""
    made: list[Worker] = []

    def build(redis_url: str | None = None) -> Worker:
        w = Worker(redis_url or url, prefix=prefix)
        made.append(w)
        return w

    yield build
    for w in made:
        await w.close()


async def test_one_of_two_is_elected_and_the_other_takes_over_when_it_steps_down(
    make: Make,
) -> None:
    a, b = make().leader("reports", ttl=5), make().leader("reports", ttl=5)
    assert await a.try_acquire()
    assert a.is_leader and a.term >= 1
    assert not await b.try_acquire()
    assert not await b.acquire(max_wait=0.3)
    assert not b.is_leader
    waiter = asyncio.create_task(b.acquire())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await a.release()
    assert not a.is_leader
    assert await asyncio.wait_for(waiter, 5)
    # a follower polls every min(ttl / 4, 1 s): a step-down is taken over within that
    assert time.monotonic() - started < 2.5
    assert b.is_leader and b.term == a.term + 1
    await b.release()


async def test_context_manager_elects_runs_the_body_and_steps_down(make: Make) -> None:
    w = make()
    async with w.leader("sync", ttl=5) as lead:
        assert lead.is_leader
        other = make().leader("sync", ttl=5)
        assert not await other.try_acquire()
    assert not lead.is_leader
    assert await other.try_acquire()
    await other.release()


async def test_a_dead_leaders_lease_is_taken_over_within_the_failover_bound(
    make: Make,
) -> None:
    # a holder that died without stepping down: its lease simply runs out
    lead = make().leader("ingest", ttl=2)
    dead = make().leader("ingest", ttl=2)
    assert await dead.try_acquire()
    # simulate the death: stop renewing without releasing
    assert dead._renewer is not None
    dead._renewer.cancel()
    started = time.monotonic()
    assert await asyncio.wait_for(lead.acquire(), 10)
    took = time.monotonic() - started
    # never before the dead holder's lease ran out, and within ttl + one poll (+ slack)
    assert 1.0 < took < 2 + 0.5 + 1.5
    assert lead.term == dead.term + 1
    await lead.release()


async def test_a_leader_whose_lease_was_taken_has_its_body_cancelled(
    make: Make, url: str, prefix: str
) -> None:
    w = make()
    reached_end = False
    started = time.monotonic()
    with pytest.raises(LeadershipLost):
        async with w.leader("jobs", ttl=1.5) as lead:
            # another process takes the lease (as after a long stall of this one)
            await w.client.broker.scripts.run(
                "leader_release", [LeaderKeys(prefix, "jobs").lease], [lead.token]
            )
            usurper = make().leader("jobs", ttl=30)
            assert await usurper.try_acquire()
            await asyncio.sleep(10)
            reached_end = True
    await usurper.release()
    assert not reached_end
    assert lead.lost.is_set() and not lead.is_leader
    assert time.monotonic() - started < 1.5  # noticed at the next renewal (ttl / 3)


async def test_a_leader_that_cannot_reach_redis_steps_down_before_its_lease_ends(
    redis_proc: RedisProcess, prefix: str
) -> None:
    w = Worker(redis_proc.url, prefix=prefix)
    try:
        ttl = 2.0
        with pytest.raises(LeadershipLost):
            async with w.leader("jobs", ttl=ttl) as lead:
                redis_proc.stop(signal.SIGKILL)
                lost_at = time.monotonic()
                await asyncio.sleep(30)
        # it stopped counting itself the leader no later than its lease could have ended
        assert time.monotonic() - lost_at <= ttl + 0.5
        assert lead.lost.is_set()
    finally:
        with suppress(Exception):
            await w.close()


async def test_a_leader_whose_renewals_redis_refuses_steps_down_and_can_lead_again(
    redis_factory: RedisFactory, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    w = Worker(server.url, prefix=prefix, cluster=False)
    try:
        lead = w.leader("jobs", ttl=1.0)

        async def body() -> None:
            async with lead:
                # an ACL edit takes scripts away: every renewal is refused, not retried away
                admin.execute_command("ACL", "SETUSER", "default", "-eval", "-evalsha")  # type: ignore[no-untyped-call]
                await asyncio.sleep(30)

        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(body(), 10)
        assert lead.lost.is_set() and not lead.is_leader
        assert "Redis refused the renewal" in caplog.text
        admin.execute_command("ACL", "SETUSER", "default", "+@all")  # type: ignore[no-untyped-call]
        again = w.leader("jobs", ttl=1.0)
        assert await again.acquire(max_wait=5)  # the refused lease expired; no one holds it
        await again.release()
    finally:
        await w.close()
        admin.close()


async def test_bad_names_and_ttls_are_refused(make: Make) -> None:
    w = make()
    with pytest.raises(ValueError, match="invalid leadership name"):
        w.leader("a b")
    with pytest.raises(ConfigError, match=r"ttl must be at least 0\.5 s"):
        w.leader("ok", ttl=0.1)
    assert isinstance(w.leader("ok"), Leadership)


async def test_singleton_runs_on_one_process_at_a_time_and_moves_on_shutdown(
    make: Make,
) -> None:
    running: list[str] = []
    overlap: list[tuple[str, ...]] = []

    def build(tag: str) -> Worker:
        w = make()

        @w.singleton("loop", ttl=2)
        async def work(lead: Leadership) -> None:
            running.append(tag)
            try:
                if len(running) > 1:
                    overlap.append(tuple(running))
                await asyncio.sleep(3600)
            finally:
                running.remove(tag)

        return w

    workers = {tag: build(tag) for tag in ("a", "b", "c")}
    runs = {tag: asyncio.create_task(w.run(handle_signals=False)) for tag, w in workers.items()}
    try:
        for _ in range(100):
            if running:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        assert len(running) == 1
        first = running[0]
        # shut the leader down: it steps down and another one takes over quickly
        runs[first].cancel()
        with suppress(asyncio.CancelledError):
            await runs[first]
        started = time.monotonic()
        for _ in range(100):
            if running:
                break
            await asyncio.sleep(0.05)
        assert len(running) == 1 and running[0] != first
        assert time.monotonic() - started < 1.5  # a step-down, not a 2 s lease expiry
        assert overlap == []
    finally:
        for task in runs.values():
            task.cancel()
        await asyncio.gather(*runs.values(), return_exceptions=True)
