"""Topology faults on a cluster with replicas, under load: no job is lost, and every job that
ran twice did so only because its lease expired.

Two real ``aioworker run`` processes work through 2,000 jobs on a six-node cluster (three
masters, one replica each) while the master that holds the queue's slot is failed over to its
replica (``CLUSTER FAILOVER``), or while that slot is migrated to another master key batch by
key batch (``SETSLOT IMPORTING/MIGRATING``, ``MIGRATE ... KEYS``, ``SETSLOT NODE``), which
answers ``ASK`` and ``TRYAGAIN`` to the workers' scripts while it lasts. Every run is counted
on a separate server (``tests/apps/counted.py``), so a run is counted even if the cluster
forgot it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from aioworker import JobStatus, Worker
from aioworker.keys import QueueKeys
from tests.apps import counted
from tests.redis_procs import RedisFactory, RedisProcess
from tests.redis_topologies import ReplicatedCluster
from tests.scriptkit import text
from tests.worker_procs import WorkerSpawner

pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(240)]

figures = logging.getLogger("tests.fault_cluster")

APP = "tests.apps.counted:worker"
JOBS = 2_000
JOB_S = 0.1
# runs counted before the fault is provoked, so it lands while jobs are in flight
FAULT_AFTER_RUNS = 300


@dataclass(frozen=True)
class Tally:
    """What happened to every job of a run."""

    completed: int
    lost: list[str]
    duplicated: dict[str, int]
    recovered: set[str]


@pytest.fixture
def counter(redis_factory: RedisFactory) -> RedisProcess:
    """The server the app counts runs on, apart from the cluster."""
    return redis_factory()


@pytest.fixture
async def producer(
    redis_cluster_replicated: ReplicatedCluster, prefix: str
) -> AsyncIterator[Worker]:
    w = counted.build(redis_cluster_replicated.url, prefix)
    try:
        yield w
    finally:
        await w.close()


def queue_slot(prefix: str) -> int:
    """The cluster slot of the default queue's keys."""
    return key_slot(QueueKeys(prefix, "default").ready.encode())


async def _runs_counted(counter: aioredis.Redis, prefix: str) -> int:
    return sum(int(v) for v in (await counter.hgetall(counted.runs_key(prefix))).values())


async def _settled(
    producer: Worker,
    spawn_worker: WorkerSpawner,
    procs: list[subprocess.Popen[bytes]],
    timeout_s: float,
) -> None:
    """Wait until no job is left to run; fail once nothing moved for ``timeout_s``."""
    last, since = None, time.monotonic()
    while True:
        counts = await producer.client.counts("default")
        if counts["ready"] + counts["scheduled"] + counts["active"] == 0:
            return
        if counts != last:
            last, since = counts, time.monotonic()
        if time.monotonic() - since > timeout_s:
            tails = [spawn_worker.output(p)[-4000:] for p in procs]
            raise AssertionError(f"jobs never settled: {counts}; workers said: {tails}")
        await asyncio.sleep(0.2)


async def run_under_fault(
    fault: Callable[[], object],
    *,
    producer: Worker,
    spawn_worker: WorkerSpawner,
    cluster: ReplicatedCluster,
    counter: RedisProcess,
    prefix: str,
) -> Tally:
    """Enqueue the jobs, start two workers, provoke ``fault`` (in a thread) mid-run, and tally.

    :returns: what happened to every job.
    """
    env = {
        "AIOWORKER_REDIS_URL": cluster.url,
        "TEST_PREFIX": prefix,
        "TEST_COUNTER_URL": counter.url,
    }
    task = producer.tasks["count"]
    handles = await producer.enqueue_many([task.call(n, JOB_S) for n in range(JOBS)])
    procs = [spawn_worker(APP, env=env) for _ in range(2)]
    async with aioredis.Redis.from_url(counter.url) as c:
        deadline = time.monotonic() + 60
        while await _runs_counted(c, prefix) < FAULT_AFTER_RUNS:
            assert time.monotonic() < deadline, [spawn_worker.output(p)[-3000:] for p in procs]
            await asyncio.sleep(0.05)
        await asyncio.to_thread(fault)
        await _settled(producer, spawn_worker, procs, 30)
        statuses = [await h.status() for h in handles]
        runs = {text(k): int(v) for k, v in (await c.hgetall(counted.runs_key(prefix))).items()}
        recovered = {text(x) for x in await c.smembers(counted.recovered_key(prefix))}
    alive = [p.poll() is None for p in procs]
    assert all(alive), [spawn_worker.output(p)[-3000:] for p in procs]
    for out in (spawn_worker.output(p) for p in procs):
        assert "Task exception was never retrieved" not in out
        assert "internal error while handling its outcome" not in out
    done = [h.id for h, s in zip(handles, statuses, strict=True) if s is JobStatus.COMPLETE]
    lost = [h.id for h, s in zip(handles, statuses, strict=True) if s is not JobStatus.COMPLETE]
    tally = Tally(
        completed=len(done),
        lost=lost,
        duplicated={i: n for i, n in runs.items() if n > 1},
        recovered=recovered,
    )
    figures.warning(
        "%s: jobs %d, completed %d, lost %d, duplicated %d (recovered after a lease expiry %d)",
        getattr(fault, "__name__", "fault"),
        JOBS,
        tally.completed,
        len(tally.lost),
        len(tally.duplicated),
        len(tally.recovered),
    )
    return tally


async def test_failover_of_the_queues_master_under_load_loses_no_job(
    redis_cluster_replicated: ReplicatedCluster,
    counter: RedisProcess,
    producer: Worker,
    spawn_worker: WorkerSpawner,
    prefix: str,
) -> None:
    cluster = redis_cluster_replicated
    master = cluster.owner_of_slot(queue_slot(prefix))
    replica = cluster.replica_of(master)

    def failover() -> None:
        cluster.failover(replica)

    tally = await run_under_fault(
        failover,
        producer=producer,
        spawn_worker=spawn_worker,
        cluster=cluster,
        counter=counter,
        prefix=prefix,
    )
    assert cluster.owner_of_slot(queue_slot(prefix)) == replica
    assert tally.lost == []
    assert tally.completed == JOBS
    # a job runs again only when its lease expired and it was recovered as a later attempt
    assert set(tally.duplicated) <= tally.recovered, tally.duplicated


async def test_migrating_the_queues_slot_under_load_loses_no_job(
    redis_cluster_replicated: ReplicatedCluster,
    counter: RedisProcess,
    producer: Worker,
    spawn_worker: WorkerSpawner,
    prefix: str,
) -> None:
    cluster = redis_cluster_replicated
    slot = queue_slot(prefix)
    source = cluster.owner_of_slot(slot)
    target = next(port for port in cluster.master_ports() if port != source)
    moved: list[int] = []

    def migrate() -> None:
        moved.append(cluster.migrate_slot(slot, target, batch=20, pause_s=0.05))

    tally = await run_under_fault(
        migrate,
        producer=producer,
        spawn_worker=spawn_worker,
        cluster=cluster,
        counter=counter,
        prefix=prefix,
    )
    figures.warning("keys migrated with the slot: %d", moved[0])
    assert moved[0] > 0
    assert cluster.owner_of_slot(slot) == target
    assert tally.lost == []
    assert tally.completed == JOBS
    assert set(tally.duplicated) <= tally.recovered, tally.duplicated
