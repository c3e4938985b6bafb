"""End to end on a three-master Redis Cluster: every queue's keys live in that queue's slot."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis.asyncio
from redis.crc import key_slot

from aioworker import Backoff, JobContext, JobDead, JobStatus, Retry, Worker
from tests.redis_procs import HOST, node_command


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _slot_owners(port: int) -> dict[int, int]:
    """Map every slot to the port of the master serving it."""
    owners: dict[int, int] = {}
    for entry in node_command(port, "CLUSTER", "SLOTS"):
        for slot in range(int(entry[0]), int(entry[1]) + 1):
            owners[slot] = int(entry[2][1])
    return owners


def _queues_one_per_node(owners: dict[int, int], prefix: str) -> dict[int, str]:
    """One queue name per master, chosen so the queue's hash tag lands on that master.

    The names start with the test's prefix: the cluster is shared by the whole run, and
    hash tags of other tests must not land in this test's slots by name.
    """
    by_port: dict[int, str] = {}
    for i in range(10_000):
        name = f"{prefix}-q{i}"
        by_port.setdefault(owners[key_slot(name.encode())], name)
        if len(by_port) == len(set(owners.values())):
            return by_port
    raise AssertionError("no queue names found for every node")


async def _delete_keys(ports: list[int], prefix: str) -> None:
    for port in ports:
        async with redis.asyncio.Redis(host=HOST, port=port) as node:
            async for key in node.scan_iter(match=f"{prefix}:*", count=1000):
                await node.delete(key)


async def _keys_by_node(ports: list[int], prefix: str) -> dict[int, dict[str, int]]:
    """Every key of ``prefix`` on each node, with the slot the node computes for it."""
    found: dict[int, dict[str, int]] = {}
    for port in ports:
        async with redis.asyncio.Redis(host=HOST, port=port) as node:
            keys: dict[str, int] = {}
            async for raw in node.scan_iter(match=f"{prefix}:*", count=1000):
                key = raw.decode()
                slot = await node.execute_command("CLUSTER", "KEYSLOT", key)  # type: ignore[no-untyped-call]
                keys[key] = int(slot)
            found[port] = keys
    return found


@pytest.mark.cluster
async def test_worker_runs_queues_on_every_node_and_keeps_each_queue_in_its_slot(
    redis_cluster_url: str, prefix: str
) -> None:
    owners = _slot_owners(_port_of(redis_cluster_url))
    node_of_queue = {q: port for port, q in _queues_one_per_node(owners, prefix).items()}
    queues = list(node_of_queue)
    assert len(queues) == 3
    q_add, q_flaky, q_doomed = queues

    runs: Counter[str] = Counter()
    ran_at_ms: dict[str, int] = {}
    worker = Worker(
        redis_cluster_url,
        prefix=prefix,
        queues=dict.fromkeys(queues, 10),
        lease_timeout=2,
        result_ttl=120,
        shutdown_grace=5,
        backoff=Backoff(base_s=0.05, jitter=False),
    )

    @worker.task(queue=q_add)
    async def add(ctx: JobContext, a: int, b: int) -> int:
        runs[ctx.job_id] += 1
        ran_at_ms[ctx.job_id] = await worker.client.broker.redis_time_ms()
        return a + b

    @worker.task(queue=q_flaky, retries=2)
    async def flaky(ctx: JobContext, n: int) -> list[int]:
        runs[ctx.job_id] += 1
        if ctx.attempt == 1:
            raise Retry(delay=0.05)
        return [n, ctx.attempt]

    @worker.task(queue=q_doomed, retries=1)
    async def doomed(ctx: JobContext) -> None:
        runs[ctx.job_id] += 1
        await ctx.checkpoint({"attempt": ctx.attempt})
        raise ValueError(f"attempt {ctx.attempt} failed")

    try:
        # bulk enqueue touching all three nodes, one script call per queue
        adds = await worker.enqueue_many(
            [add.options(queue=q).call(i, 100) for i in range(4) for q in queues]
        )
        assert all(h.created for h in adds)
        flaky_job = await flaky.enqueue(7)
        doomed_job = await doomed.enqueue()
        before_delay_ms = await worker.client.broker.redis_time_ms()
        delayed = await add.options(queue=q_doomed, delay=0.5).enqueue(1, 1)
        assert await delayed.status() is JobStatus.SCHEDULED

        stats = await asyncio.wait_for(worker.run(burst=True, handle_signals=False), 60)

        assert worker.client.broker.is_cluster is True
        assert stats == {"complete": 14, "retry": 2, "dead": 1, "requeue": 0, "defer": 0, "lost": 0}
        for n, handle in enumerate(adds):
            assert await handle.result(timeout=5) == n // 3 + 100
            assert handle.queue == queues[n % 3]
        assert await flaky_job.result(timeout=5) == [7, 2]
        with pytest.raises(JobDead) as dead:
            await doomed_job.result(timeout=5)
        assert dead.value.error["message"] == "attempt 2 failed"
        assert await delayed.result(timeout=5) == 2
        assert ran_at_ms[delayed.id] >= before_delay_ms + 500
        # exactly which job ran how often: adds once, the retried and the dead one twice
        expected = {h.id: 1 for h in adds} | {flaky_job.id: 2, doomed_job.id: 2, delayed.id: 1}
        assert dict(runs) == expected
        for q in queues:
            want_dead = 1 if q == q_doomed else 0
            assert await worker.client.counts(q) == {
                "ready": 0,
                "scheduled": 0,
                "active": 0,
                "dead": want_dead,
            }

        later = await add.options(queue=q_add, delay=3600).enqueue(0, 0)
        assert await later.status() is JobStatus.SCHEDULED

        # every key the library made sits in its queue's slot, on the node serving it
        found = await _keys_by_node(sorted(set(owners.values())), prefix)
        kinds: dict[str, set[str]] = {q: set() for q in queues}
        for port, keys in found.items():
            for key, slot in keys.items():
                tag = key[len(prefix) + 2 : key.index("}")]
                if tag in ("queues", "workers"):  # the registries: tags of their own
                    assert slot == key_slot(tag.encode()) and owners[slot] == port, key
                    continue
                assert key.startswith(f"{prefix}:{{{tag}}}:"), key
                assert tag in queues, key
                assert slot == key_slot(tag.encode()), key
                assert owners[slot] == port == node_of_queue[tag], key
                kinds[tag].add(key.split(":")[2])
        assert {"result", "done"} <= kinds[q_add] and "scheduled" in kinds[q_add]
        assert {"result", "done"} <= kinds[q_flaky]
        assert {"dead", "jobs", "attempts", "errors", "state", "result"} <= kinds[q_doomed]
        assert len({node_of_queue[q] for q in queues if kinds[q]}) == 3

        # reviving the dead letter works across the cluster too (the script drops its result)
        assert await worker.client.retry_dead(q_doomed) == 1
        assert await doomed_job.status() is JobStatus.QUEUED
        counts = await worker.client.counts(q_doomed)
        assert (counts["ready"], counts["dead"]) == (1, 0)
    finally:
        await worker.close()
        await _delete_keys(sorted(set(owners.values())), prefix)


async def test_broker_detects_a_single_node_is_not_a_cluster(redis_url: str, prefix: str) -> None:
    worker = Worker(redis_url, prefix=prefix)
    try:
        await worker.client.broker.connect()
        assert worker.client.broker.is_cluster is False
    finally:
        await worker.close()


@pytest.mark.cluster
async def test_an_idle_fetch_waits_and_fetches_in_one_round_trip_on_the_cluster(
    redis_cluster_url: str, prefix: str
) -> None:
    from aioworker.broker import Broker
    from aioworker.keys import QueueKeys

    broker = Broker(redis_cluster_url)
    await broker.connect()
    assert broker.is_cluster
    owners = _slot_owners(_port_of(redis_cluster_url))
    payload = b'{"t":"tests.task","a":[],"k":{}}'
    try:
        for queue in _queues_one_per_node(owners, prefix).values():
            k = QueueKeys(prefix, queue)
            halt = k.halt("w1")
            waiting = asyncio.create_task(
                broker.scripts.fetch(k, 10, 60_000, "w1:1", halt=halt, wait_s=10.0)
            )
            await asyncio.sleep(0.2)
            assert not waiting.done()
            assert await broker.scripts.enqueue(k, [("a", payload, 0, 0)]) == [True]
            reply = await asyncio.wait_for(waiting, 5.0)
            assert [j.id for j in reply.jobs] == ["a"]

            # a stopping worker's wait is woken and leases nothing
            waiting = asyncio.create_task(
                broker.scripts.fetch(k, 10, 60_000, "w1:2", halt=halt, wait_s=10.0)
            )
            await asyncio.sleep(0.2)
            await broker.halt(halt)
            reply = await asyncio.wait_for(waiting, 5.0)
            assert reply.jobs == []
    finally:
        await broker.close()
        await _delete_keys(sorted(set(owners.values())), prefix)
