"""Every script leaves every job in exactly one place, whatever it finds in Redis.

For each script that touches a queue's job structures, and for each key it is given, the
key is replaced by a value of every wrong type (the real one is set aside and put back
afterwards): the call must either fail with ``WRONGTYPE aioworker: key <k> is a <t>,
expected <u>`` having changed nothing, or succeed (a key it only replaces or tests for
existence); either way every job id with a record is afterwards in exactly one of the
lists and sorted sets of ``keys.py`` (:func:`where_is`).  Fields holding garbage (attempt
counts, group counters, schedule markers) either make the job a dead letter with the
reason "corrupt record: ..." or count as missing; they never fail a call half-way.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio
from redis.exceptions import ResponseError

from aioworker import admin, cancellation, cron_scripts
from aioworker.batch_scripts import BatchScripts
from aioworker.broker import Broker
from aioworker.groups import check_group
from aioworker.keys import QueueKeys
from aioworker.scripts import Arg, EnqueueItem, LuaScript, Scripts
from tests.scriptkit import PAYLOAD, places_of, text, where_is

TOKEN = "w:1"
LEASE_MS = 60_000
DAY_MS = 86_400_000
ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'
RESULT = b'{"s":"dead","n":1,"t":"tests.task"}'
WRONG = ("string", "hash", "list", "zset", "set")
IDS = ("a1", "a2", "d1", "r1", "r2", "s1", "g1")


@dataclass(slots=True)
class Case:
    """One test's Redis, keys and scripts; ``seen`` collects the keys of each call."""

    r: redis.asyncio.Redis
    k: QueueKeys
    scripts: Scripts
    seen: list[str]
    touched: set[str]

    async def drop(self) -> None:
        """Delete every key the case's scripts were given (and backups of them)."""
        keys = [*self.touched, *(f"{key}:backup" for key in self.touched)]
        await self.r.delete(*keys)


@pytest.fixture(scope="module")
async def broker(redis_url: str) -> AsyncIterator[Broker]:
    b = Broker(redis_url)
    await b.connect()
    yield b
    await b.close()


@pytest.fixture(scope="module")
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        yield r


def _case(broker: Broker, r: redis.asyncio.Redis) -> Case:
    seen: list[str] = []
    touched: set[str] = set()
    real = broker.scripts

    async def run(script: LuaScript, keys: Any, args: Any) -> Any:
        seen.extend(keys)
        touched.update(keys)
        return await real.run(script.name, keys, args)

    async def run_after_wait(
        waits: Any, timeout_s: float, script: LuaScript, keys: Any, args: Sequence[Arg]
    ) -> Any:
        return await run(script, keys, args)

    k = QueueKeys(f"inv-{uuid.uuid4().hex[:10]}", "q")
    case = Case(r, k, Scripts(run, run_after_wait), seen, touched)
    touched.update(getattr(k, name) for name in ("ready", "scheduled", "active", "dead", "fair"))
    touched.update((k.jobs, k.cancel, k.wake))
    return case


async def assert_invariant(c: Case) -> None:
    records = {text(x) for x in await c.r.hkeys(c.k.jobs)}
    places = await places_of(c.r, c.k, sorted(records | set(IDS)))
    for job_id, where in places.items():
        if job_id in records:
            assert len(where) == 1, f"job {job_id} is in {where}"
        else:
            assert where == [], f"finished job {job_id} is still in {where}"


async def snapshot(c: Case) -> dict[str, Any]:
    """Every key the case's scripts were given: its type and its whole content."""
    pipe = c.r.pipeline(transaction=False)
    for key in sorted(c.touched):
        pipe.type(key)
    kinds = [text(kind) for kind in await pipe.execute()]
    keys = [key for key, kind in zip(sorted(c.touched), kinds, strict=True) if kind != "none"]
    kinds = [kind for kind in kinds if kind != "none"]
    for key, kind in zip(keys, kinds, strict=True):
        if kind == "string":
            pipe.get(key)
        elif kind == "list":
            pipe.lrange(key, 0, -1)
        elif kind == "zset":
            pipe.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            pipe.hgetall(key)
        else:
            pipe.smembers(key)
    return dict(zip(keys, zip(kinds, await pipe.execute(), strict=True), strict=True))


async def setup(c: Case) -> None:
    """a1, a2 leased to TOKEN; d1 dead; r1, r2 ready; s1 scheduled; g1 of group g in fair;
    a cancel request, an outbox entry and a schedule."""
    s, k = c.scripts, c.k
    await s.enqueue_items(k, [EnqueueItem(i, PAYLOAD) for i in ("a1", "a2", "d1")])
    await s.fetch(k, 3, LEASE_MS, TOKEN)
    await s.dead(k, "d1", TOKEN, ERROR, RESULT, LEASE_MS, 100, DAY_MS)
    await s.enqueue_items(
        k,
        [
            EnqueueItem("r1", PAYLOAD),
            EnqueueItem("r2", PAYLOAD),
            EnqueueItem("s1", PAYLOAD, delay_ms=3_600_000),
            EnqueueItem("g1", PAYLOAD, group="g"),
        ],
    )
    await c.r.hset(k.cancel, "a2", 1)
    await BatchScripts(s).batch_outbox_push(k, ["b|a1|ok"])
    await cron_scripts.cron_state(s, k, "c", "init")
    await c.r.hset(k.cron("c"), "last", 0)
    c.seen.clear()


Call = Callable[[Case], Awaitable[Any]]

CALLS: dict[str, Call] = {
    "fetch": lambda c: c.scripts.fetch(c.k, 10, LEASE_MS, "w:2", halt=c.k.halt("w")),
    "enqueue": lambda c: c.scripts.enqueue_items(
        c.k,
        [
            EnqueueItem("n1", PAYLOAD),
            EnqueueItem("n2", PAYLOAD, delay_ms=60_000),
            EnqueueItem("n3", PAYLOAD, group="g"),
            EnqueueItem("n4", PAYLOAD, unique_mode="start", unique_key="u", lock_ttl_ms=9000),
        ],
    ),
    "complete": lambda c: c.scripts.complete(
        c.k, LEASE_MS, [("a1", TOKEN, b"1", ""), ("a2", TOKEN, b"2", "b")]
    ),
    "retry": lambda c: c.scripts.retry(c.k, "a1", TOKEN, 0, ERROR, count_attempt=False),
    "retry_later": lambda c: c.scripts.retry(c.k, "a1", TOKEN, 60_000, ERROR),
    "dead": lambda c: c.scripts.dead(c.k, "a1", TOKEN, ERROR, RESULT, LEASE_MS, 1, 1, "b"),
    "requeue": lambda c: c.scripts.requeue(c.k, "a1", TOKEN, b'{"u":1}'),
    "checkpoint": lambda c: c.scripts.checkpoint(c.k, "a1", TOKEN, b'{"u":1}'),
    "extend": lambda c: c.scripts.extend(c.k, LEASE_MS, [("a1", TOKEN), ("r1", "x")]),
    "revive": lambda c: c.scripts.revive(c.k, ["d1"]),
    "status": lambda c: c.scripts.status(c.k, "a1"),
    "dead_trim": lambda c: c.scripts.dead_trim(c.k, 0, DAY_MS),
    "cancel_queued": lambda c: cancellation.cancel(c.scripts, c.k, "r1", LEASE_MS),
    "cancel_grouped": lambda c: cancellation.cancel(c.scripts, c.k, "g1", LEASE_MS),
    "cancel_running": lambda c: cancellation.cancel(c.scripts, c.k, "a1", LEASE_MS),
    "cancel_done": lambda c: cancellation.cancel_done(c.scripts, c.k, "a2", TOKEN, RESULT, 9000),
    "cancel_poll": lambda c: cancellation.cancel_poll(c.scripts, c.k),
    "purge": lambda c: admin.purge(c.scripts, c.k, ["d1"]),
    "pause": lambda c: admin.pause(c.scripts, c.k, False),
    "batch_outbox": lambda c: BatchScripts(c.scripts).batch_outbox_claim(c.k, 10, 9000, []),
    "cron_tick": lambda c: cron_scripts.cron_tick(c.scripts, c.k, "c", 1, 1, "t1", PAYLOAD),
    "cron_state": lambda c: cron_scripts.cron_state(c.scripts, c.k, "c", "resume"),
    "group_cap": lambda c: c.scripts.run("group_cap", [c.k.groups, c.k.wake], ["c:g", 2]),
    "group_reset": lambda c: c.scripts.run("group_reset", [c.k.groups], [check_group("g")]),
}


async def _keys_of(broker: Broker, raw: redis.asyncio.Redis, name: str) -> list[str]:
    c = _case(broker, raw)
    await setup(c)
    await CALLS[name](c)
    return list(dict.fromkeys(c.seen))


async def _write_wrong(r: redis.asyncio.Redis, key: str, kind: str) -> None:
    if kind == "string":
        await r.set(key, "garbage")
    elif kind == "hash":
        await r.hset(key, "garbage", "1")
    elif kind == "list":
        await r.rpush(key, "garbage")
    elif kind == "zset":
        await r.zadd(key, {"garbage": 1})
    else:
        await r.sadd(key, "garbage")


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_wrong_typed_key_fails_the_call_cleanly_or_changes_nothing_of_the_jobs(
    broker: Broker, raw: redis.asyncio.Redis, name: str, request: pytest.FixtureRequest
) -> None:
    refused = 0
    for key in await _keys_of(broker, raw, name):
        for kind in WRONG:
            c = _case(broker, raw)
            await setup(c)
            key = key.replace(key.split(":{", 1)[0], c.k.prefix, 1)
            actual = text(await c.r.type(key))
            if actual == kind:
                continue
            backup = f"{key}:backup"
            if actual != "none":
                await c.r.rename(key, backup)
            await _write_wrong(c.r, key, kind)
            c.touched.update((key, backup))
            before = await snapshot(c)
            try:
                await CALLS[name](c)
            except ResponseError as exc:
                refused += 1
                expected = f"WRONGTYPE aioworker: key {key} is a {kind}, expected "
                assert str(exc).startswith(expected), (name, key, kind, str(exc))
                assert await snapshot(c) == before, f"{name} wrote before refusing ({key})"
                await c.r.delete(key)
                if actual != "none":
                    await c.r.rename(backup, key)
            else:
                # a key the script only replaces (SET, DEL) or tests for existence
                if text(await c.r.type(key)) == kind and actual != "none":
                    await c.r.delete(key)
                    await c.r.rename(backup, key)
                await c.r.delete(backup)
            await assert_invariant(c)
            await c.drop()
    assert refused > 0


async def test_fetch_dead_letters_a_job_whose_attempt_count_is_garbage_and_leases_the_rest(
    broker: Broker, raw: redis.asyncio.Redis
) -> None:
    c = _case(broker, raw)
    await setup(c)
    await c.r.hset(c.k.attempts, "r1", "many")

    reply = await c.scripts.fetch(c.k, 10, LEASE_MS, "w:2")

    assert reply.buried == ["r1"]
    assert sorted(j.id for j in reply.jobs) == ["g1", "r2"]
    assert await where_is(c.r, c.k, "r1") == ["dead"]
    error = await c.r.hget(c.k.errors, "r1")
    assert error is not None and b"corrupt record: its attempt count is not an integer" in error
    await assert_invariant(c)
    # once: the next fetch has nothing to do with it
    again = await c.scripts.fetch(c.k, 10, LEASE_MS, "w:3")
    assert again.buried == [] and again.jobs == []


async def test_fetch_reports_ids_without_a_record_as_dropped(
    broker: Broker, raw: redis.asyncio.Redis
) -> None:
    c = _case(broker, raw)
    await setup(c)
    await c.r.hdel(c.k.jobs, "r1")
    await c.r.zadd(c.k.scheduled, {"ghost": 1})

    reply = await c.scripts.fetch(c.k, 10, LEASE_MS, "w:2")

    assert sorted(reply.dropped) == ["ghost", "r1"]
    assert await where_is(c.r, c.k, "ghost") == []
    await assert_invariant(c)


@pytest.mark.parametrize("name", ["retry", "requeue"])
async def test_giving_back_an_attempt_that_is_garbage_leaves_it_for_fetch_to_bury(
    broker: Broker, raw: redis.asyncio.Redis, name: str
) -> None:
    c = _case(broker, raw)
    await setup(c)
    await c.r.hset(c.k.attempts, "a1", "x")

    assert await CALLS[name](c)

    assert await where_is(c.r, c.k, "a1") == ["ready"]
    reply = await c.scripts.fetch(c.k, 10, LEASE_MS, "w:2")
    assert "a1" in reply.buried and await where_is(c.r, c.k, "a1") == ["dead"]
    await assert_invariant(c)


@pytest.mark.parametrize("field", ["floor", "plain", "cap", "s:g", "r:g", "c:g", "t:g", "x:g"])
@pytest.mark.parametrize("name", ["fetch", "enqueue", "cancel_grouped", "group_reset", "dead"])
async def test_a_group_counter_holding_garbage_counts_from_zero(
    broker: Broker, raw: redis.asyncio.Redis, field: str, name: str
) -> None:
    c = _case(broker, raw)
    await setup(c)
    await c.r.hset(c.k.group_of, "a1", "g")  # a1 runs in group g
    await c.r.hset(c.k.groups, field, "garbage")

    await CALLS[name](c)

    await assert_invariant(c)


async def test_a_schedule_marker_holding_garbage_starts_again_from_now(
    broker: Broker, raw: redis.asyncio.Redis
) -> None:
    c = _case(broker, raw)
    await setup(c)
    await c.r.hset(c.k.cron("c"), "last", "garbage")

    reply = await CALLS["cron_tick"](c)

    assert reply.code == 0 and reply.marker_ms == reply.now_ms
    await assert_invariant(c)


async def test_a_batch_child_buried_by_fetch_reports_its_failure_to_the_batch_outbox(
    broker: Broker, raw: redis.asyncio.Redis
) -> None:
    c = _case(broker, raw)
    child = b'{"t":"tests.task","a":[],"k":{},"b":"batch-1"}'
    await c.scripts.enqueue_items(c.k, [EnqueueItem("c1", child)])
    await c.r.hset(c.k.attempts, "c1", "1.5")

    reply = await c.scripts.fetch(c.k, 10, LEASE_MS, "w:2")

    assert reply.buried == ["c1"]
    assert await c.r.lrange(c.k.batch_outbox, 0, -1) == [b"batch-1|c1|failed"]
    assert await where_is(c.r, c.k, "c1") == ["dead"]
