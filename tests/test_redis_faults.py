"""Retry-later Redis errors under load: READONLY, OOM, BUSY and NOSCRIPT while a worker
runs 80 jobs.  Every job must complete exactly once: none lost, none run twice.

Each fault is provoked on a real ``redis-server`` (its own per test) mid-run and lifted
after about a second, well inside the 5 s lease, so no lease expires and a second run of
a job would be a bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
import redis

from aioworker import BrokerBusy, JobContext, Worker
from tests.redis_procs import RedisFactory, cli_binary, node_command
from tests.worker_kit import running

pytestmark = pytest.mark.slow

JOBS = 80
FAULT_S = 1.0


def admin(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


async def run_through(
    url: str, prefix: str, fault: Callable[[Worker], Awaitable[None]], *, cluster: bool = False
) -> Counter[int]:
    """Run JOBS jobs, call ``fault`` once a fifth of them ran, and return how many times
    each job ran once all are complete."""
    worker = Worker(url, prefix=prefix, queues={"default": 4}, lease_timeout=5, cluster=cluster)
    runs: Counter[int] = Counter()

    @worker.task(name="work")
    async def work(ctx: JobContext, n: int) -> int:
        runs[n] += 1
        await asyncio.sleep(0.03)
        return n

    try:
        handles = await worker.enqueue_many([work.call(n) for n in range(JOBS)])
        async with running(worker):
            for _ in range(3000):
                if sum(runs.values()) >= JOBS // 5:
                    break
                await asyncio.sleep(0.01)
            assert len(runs) < JOBS, "the fault came too late to hit the run"
            await fault(worker)
            results = [await h.result(timeout=30) for h in handles]
        assert results == list(range(JOBS))
        counts = await worker.client.counts("default")
        assert counts == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}
        return runs
    finally:
        await worker.close()


def assert_each_once(runs: Counter[int]) -> None:
    assert sorted(runs) == list(range(JOBS)), "a job was lost"
    assert set(runs.values()) == {1}, f"jobs run twice: {[n for n, c in runs.items() if c > 1]}"


async def test_readonly_after_the_node_is_demoted_and_promoted_again(
    redis_factory: RedisFactory, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    primary, other = redis_factory(), redis_factory()
    a, b = admin(primary.port), admin(other.port)
    b.replicaof("127.0.0.1", primary.port)

    async def demote(_worker: Worker) -> None:
        # a clean switch-over: no write of the primary is lost, the worker only sees
        # READONLY (and LOADING) for a while
        a.execute_command("CLIENT", "PAUSE", 5000, "WRITE")  # type: ignore[no-untyped-call]
        target = a.info("replication")["master_repl_offset"]
        for _ in range(500):
            if b.info("replication")["master_repl_offset"] >= target:
                break
            await asyncio.sleep(0.01)
        b.replicaof("NO", "ONE")
        a.replicaof("127.0.0.1", other.port)
        a.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        await asyncio.sleep(FAULT_S)
        a.replicaof("NO", "ONE")

    try:
        with caplog.at_level(logging.ERROR, logger="aioworker"):
            runs = await run_through(primary.url, prefix, demote)
        assert_each_once(runs)
        # the worker met the demotion: a READONLY or LOADING reply, or (Valkey 9, under
        # load) the demoted node closing the connection before it could answer one
        seen = ("READONLY", "LOADING", "Connection closed by server")
        assert any(s in caplog.text for s in seen), caplog.text[-2000:]
        assert "background loop" not in caplog.text  # no loop died
    finally:
        a.close()
        b.close()


async def test_oom_at_maxmemory_then_memory_frees(
    redis_factory: RedisFactory, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    a = admin(server.port)
    a.config_set("maxmemory-policy", "noeviction")

    async def fill(worker: Worker) -> None:
        a.config_set("maxmemory", 1)
        try:
            with pytest.raises(BrokerBusy, match="OOM"):
                await worker.enqueue("work", 999_999)
            await asyncio.sleep(FAULT_S)
        finally:
            a.config_set("maxmemory", 0)

    try:
        with caplog.at_level(logging.ERROR, logger="aioworker"):
            runs = await run_through(server.url, prefix, fill)
        assert_each_once(runs)
        # the worker's scripts free memory before they add any (Redis checks OOM only at
        # a script's first write), so it may see no OOM at all; the producer did
        assert "background loop" not in caplog.text
    finally:
        a.close()


async def test_busy_while_a_long_script_runs_until_it_is_killed(
    redis_factory: RedisFactory, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = redis_factory()
    a = admin(server.port)
    a.config_set("lua-time-limit", 50)  # busy-reply-threshold on Redis 7

    async def block(_worker: Worker) -> None:
        cli = await asyncio.create_subprocess_exec(
            *(cli_binary(), "-p", str(server.port), "EVAL", "while true do end", "0"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.sleep(FAULT_S)
            while True:
                try:
                    a.script_kill()
                    break
                except redis.ResponseError:  # NOTBUSY: the script has not started yet
                    await asyncio.sleep(0.05)
        finally:
            await asyncio.wait_for(cli.wait(), 10)

    try:
        with caplog.at_level(logging.ERROR, logger="aioworker"):
            runs = await run_through(server.url, prefix, block)
        assert_each_once(runs)
        assert "BUSY" in caplog.text
        assert "background loop" not in caplog.text
    finally:
        a.close()


async def test_noscript_after_the_scripts_are_flushed(
    redis_factory: RedisFactory, prefix: str
) -> None:
    server = redis_factory()
    a = admin(server.port)
    flushes = 0

    async def flush(_worker: Worker) -> None:
        nonlocal flushes
        for _ in range(5):
            a.script_flush()
            flushes += 1
            await asyncio.sleep(FAULT_S / 5)

    try:
        runs = await run_through(server.url, prefix, flush)
        assert_each_once(runs)
        assert flushes == 5
        assert int(a.info("commandstats").get("cmdstat_eval", {}).get("calls", 0)) > 0
    finally:
        a.close()


@pytest.mark.cluster
async def test_noscript_on_every_cluster_node(redis_cluster_url: str, prefix: str) -> None:
    client = redis.RedisCluster.from_url(redis_cluster_url)
    ports = [node.port for node in client.get_nodes()]  # type: ignore[no-untyped-call]
    client.close()

    async def flush(_worker: Worker) -> None:
        for _ in range(5):
            for port in ports:
                node_command(port, "SCRIPT", "FLUSH")
            await asyncio.sleep(FAULT_S / 5)

    runs = await run_through(redis_cluster_url, prefix, flush, cluster=True)
    assert_each_once(runs)
