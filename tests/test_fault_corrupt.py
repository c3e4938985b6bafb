"""A corruptor against three real workers: every job completes once or is dead-lettered
with a reason, no loop dies, nothing is stranded.

While three ``aioworker run`` processes work through 5,000 jobs (plain, delayed and of
fair-share groups), the corruptor replaces each queue key that ``keys.py`` documents, one
at a time, by a value of a wrong type for a short window (atomically: the real key is
renamed aside and put back), and writes garbage into hash fields (attempt counts, job
records, checkpoints, group counters) of jobs in flight.  Afterwards every job has either
completed exactly once or is a dead letter with an error message, the workers are still
alive and run new jobs, and every id in ``:jobs`` is in exactly one list or sorted set.
A failing loop (a fetch refused while a key is of the wrong type) is restarted by the
supervisor; a refused ack, lease renewal or checkpoint is repeated until accepted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from aioworker import JobStatus, Worker
from aioworker.keys import QueueKeys
from tests.apps import corrupt_app
from tests.scriptkit import places_of, text
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

figures = logging.getLogger("tests.fault_corrupt")

APP = "tests.apps.corrupt_app:worker"
JOBS = 5_000
WINDOW_S = 0.25
WRONG = {"list": "hash", "zset": "string", "hash": "list", "string": "zset", "none": "string"}

# atomically set a key aside and put a wrong-typed value in its place, and back
_CORRUPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
local kind = ARGV[1]
if kind == 'string' then redis.call('SET', KEYS[1], 'garbage')
elseif kind == 'hash' then redis.call('HSET', KEYS[1], 'garbage', 'x')
elseif kind == 'list' then redis.call('RPUSH', KEYS[1], 'garbage')
else redis.call('ZADD', KEYS[1], 1, 'garbage') end
return 1
"""
_RESTORE = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end
return 1
"""


@pytest.fixture
async def producer(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = corrupt_app.build(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


def _documented_keys(k: QueueKeys) -> list[str]:
    """The queue's keys of ``keys.py`` that live while jobs run (per-job result and done
    keys, locks and schedules are corrupted separately or not used by this app)."""
    names: tuple[str, ...] = (
        "ready",
        "scheduled",
        "active",
        "dead",
        "jobs",
        "attempts",
        "leases",
        "state",
    )
    names += ("errors", "wake", "cancel", "batch_outbox", "batch_claims", "fair", "groups")
    names += ("group_of",)
    return [getattr(k, name) for name in names]


async def _corrupt_keys(r: aioredis.Redis, k: QueueKeys, log: list[str]) -> None:
    for key in _documented_keys(k):
        kind = text(await r.type(key))
        wrong = WRONG[kind]
        await r.eval(_CORRUPT, 2, key, f"{key}:aside", wrong)
        log.append(f"{key} -> {wrong}")
        await asyncio.sleep(WINDOW_S)
        await r.eval(_RESTORE, 2, key, f"{key}:aside")
        await asyncio.sleep(WINDOW_S / 2)


async def _corrupt_fields(r: aioredis.Redis, k: QueueKeys, log: list[str]) -> set[str]:
    """Garbage in hash fields of jobs in flight; returns the ids whose record it broke."""
    broken: set[str] = set()
    rng = random.Random(7)
    for _ in range(6):
        ready = [text(x) for x in await r.lrange(k.ready, -200, -1)]  # not fetched yet
        active = [text(x) for x in await r.zrange(k.active, 0, 200)]  # type: ignore[arg-type]
        if ready:
            job_id = rng.choice(ready)
            await r.hset(k.attempts, job_id, "many")
            log.append(f"attempts[{job_id}]")
            job_id = rng.choice(ready)
            await r.hset(k.jobs, job_id, b"garbage without a stamp")
            broken.add(job_id)
            log.append(f"jobs[{job_id}]")
            job_id = rng.choice(ready)
            await r.hset(k.state, job_id, b"{not json")
            log.append(f"state[{job_id}]")
        if active:
            job_id = rng.choice(active)
            done = k.done(job_id)
            await r.eval(_CORRUPT, 2, done, f"{done}:aside", "string")
            log.append(f"done:{job_id}")
            await asyncio.sleep(WINDOW_S)
            await r.eval(_RESTORE, 2, done, f"{done}:aside")
        for field in ("floor", "plain", "s:g1", "r:g2", "t:g3"):
            await r.hset(k.groups, field, "garbage")
        log.append("groups counters")
        await asyncio.sleep(WINDOW_S)
    return broken


async def _eventually_settled(
    producer: Worker, spawn_worker: WorkerSpawner, procs: list[Any], timeout_s: float
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


async def test_a_corruptor_loses_and_doubles_no_job_and_kills_no_loop(
    spawn_worker: WorkerSpawner, producer: Worker, redis_url: str, prefix: str
) -> None:
    env = {"AIOWORKER_REDIS_URL": redis_url, "TEST_PREFIX": prefix}
    k = QueueKeys(prefix, "default")
    work = producer.tasks["work"]
    specs = [work.call(n, 0.05) for n in range(JOBS - 1000)]
    specs += [work.options(delay=0.5 + n % 30 / 10).call(n, 0.05) for n in range(500)]
    specs += [work.options(group=f"g{n % 5}").call(n, 0.05) for n in range(500)]
    handles = await producer.enqueue_many(specs)
    ids = [h.id for h in handles]
    procs = [spawn_worker(APP, env=env) for _ in range(3)]
    log: list[str] = []
    async with aioredis.Redis.from_url(redis_url) as r:
        broken = await _corrupt_fields(r, k, log)
        await _corrupt_keys(r, k, log)
        await r.hdel(k.groups, "floor", "plain", "s:g1", "r:g2", "t:g3")

        await _eventually_settled(producer, spawn_worker, procs, 15)
        alive = [p.poll() is None for p in procs]
        runs = {
            text(key): int(v) for key, v in (await r.hgetall(corrupt_app.runs_key(prefix))).items()
        }
        statuses = [await h.status() for h in handles]
        completed = [i for i, s in zip(ids, statuses, strict=True) if s is JobStatus.COMPLETE]
        dead = [i for i, s in zip(ids, statuses, strict=True) if s is JobStatus.DEAD]
        doubled = [i for i in completed if runs.get(i, 0) != 1]
        reasons = {i: (await producer.job(i).info()).error for i in dead}
        records = [text(x) for x in await r.hkeys(k.jobs)]
        stranded = [i for i, at in (await places_of(r, k, records)).items() if len(at) != 1]
        figures.warning(
            f"corruptions: {len(log)}; completed {len(completed)}, dead {len(dead)}, "
            f"other {JOBS - len(completed) - len(dead)}, doubled {len(doubled)}, "
            f"stranded {len(stranded)}, workers alive {alive}"
        )

        assert all(alive), [spawn_worker.output(p)[-3000:] for p in procs]
        assert len(completed) + len(dead) == JOBS
        notes = [
            line
            for out in (spawn_worker.output(p) for p in procs)
            for line in out.splitlines()
            if "recovered" in line or "lease lost" in line
        ]
        assert doubled == [], ({i: runs.get(i, 0) for i in doubled}, notes[:20])
        assert all(err and err.get("message") for err in reasons.values()), reasons
        # a broken record is dead with that reason (unless the job was leased before the
        # corruptor got to it: then it ran and completed once)
        assert broken & set(dead), (broken, reasons)
        for job_id in broken & set(dead):
            assert "corrupt record" in str((reasons[job_id] or {}).get("message")), reasons[job_id]
        assert stranded == []

        # the workers still run new jobs
        more = await producer.enqueue_many([work.call(n, 0.0) for n in range(100)])
        assert [await h.result(timeout=30) for h in more] == list(range(100))
        for out in (spawn_worker.output(p) for p in procs):
            assert "Task exception was never retrieved" not in out
