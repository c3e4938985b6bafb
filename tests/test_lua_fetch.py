"""The fetch script: leases, due scheduled jobs, recovery of expired leases, the idle hints."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from aioworker.scripts import EnqueueItem
from tests.scriptkit import LEASE_MS, PAYLOAD, Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def _expire_lease(kit: Kit, job_id: str, deadline_ms: int) -> None:
    """Move a lease deadline into the past, as if its worker stopped renewing it."""
    assert await kit.r.zadd(kit.k.active, {job_id: deadline_ms}, xx=True, ch=True) == 1


async def test_leases_at_most_n_jobs_in_queue_order(kit: Kit) -> None:
    await kit.enqueue("a", "b", "c", "d", "e")
    records = await kit.hash(kit.k.jobs)

    reply = await kit.fetch(3, "w1:1")

    assert [j.id for j in reply.jobs] == ["a", "b", "c"]
    assert [j.attempt for j in reply.jobs] == [1, 1, 1]
    assert [j.record for j in reply.jobs] == [records["a"], records["b"], records["c"]]
    assert [j.state for j in reply.jobs] == [b"", b"", b""]
    assert reply.recovered == []
    assert await kit.ready() == ["d", "e"]
    deadline = reply.now_ms + LEASE_MS
    assert await kit.zset(kit.k.active) == {"a": deadline, "b": deadline, "c": deadline}
    assert await kit.hash(kit.k.leases) == {"a": b"w1:1", "b": b"w1:1", "c": b"w1:1"}
    assert await kit.hash(kit.k.attempts) == {"a": b"1", "b": b"1", "c": b"1"}
    # the record stays until the job finishes: a crashed worker's job can be run again
    assert set(await kit.hash(kit.k.jobs)) == {"a", "b", "c", "d", "e"}
    assert reply.pending == 5
    assert reply.next_due_ms == deadline


async def test_fetch_of_an_empty_queue_leases_nothing_and_reports_drained(kit: Kit) -> None:
    before = await kit.now_ms()
    reply = await kit.fetch(10, "w1:1")
    after = await kit.now_ms()
    assert reply.jobs == [] and reply.recovered == []
    assert reply.pending == 0
    assert reply.next_due_ms == -1
    assert before <= reply.now_ms <= after
    assert await kit.snapshot() == {}


async def test_attempts_count_on_from_the_stored_number_and_state_is_handed_over(
    kit: Kit,
) -> None:
    await kit.enqueue("a")
    await kit.r.hset(kit.k.attempts, "a", 2)
    await kit.r.hset(kit.k.state, "a", b"checkpoint-blob")

    (job,) = (await kit.fetch(1, "w1:1")).jobs

    assert job.attempt == 3
    assert job.state == b"checkpoint-blob"
    assert await kit.hash(kit.k.attempts) == {"a": b"3"}


async def test_due_scheduled_jobs_join_the_end_of_the_queue_and_future_ones_wait(
    kit: Kit,
) -> None:
    now = await kit.now_ms()
    await kit.enqueue("ready1")
    await kit.schedule("due1", now - 2_000)
    await kit.schedule("due2", now - 1_000)
    await kit.schedule("later", now + 60_000)

    reply = await kit.fetch(10, "w1:1")

    assert [j.id for j in reply.jobs] == ["ready1", "due1", "due2"]
    assert await kit.zset(kit.k.scheduled) == {"later": now + 60_000}
    assert await kit.ready() == []
    assert reply.pending == 4  # three active, one scheduled
    # the idle sleep ends at the earliest of the next run time and the next lease deadline
    assert reply.next_due_ms == min(now + 60_000, reply.now_ms + LEASE_MS)


async def test_next_due_is_the_next_scheduled_run_when_no_lease_is_earlier(kit: Kit) -> None:
    now = await kit.now_ms()
    await kit.schedule("b", now + 9_000)
    await kit.schedule("a", now + 5_000)
    reply = await kit.fetch(10, "w1:1")
    assert reply.jobs == []
    assert reply.next_due_ms == now + 5_000
    assert reply.pending == 2


async def test_expired_leases_return_to_the_front_and_are_reported(kit: Kit) -> None:
    await kit.lease("x", "y", token="dead-worker:1")
    await kit.enqueue("r1", "r2")
    now = await kit.now_ms()
    await _expire_lease(kit, "y", now - 5_000)
    await _expire_lease(kit, "x", now - 1_000)

    # max_jobs 0: only promote and recover, as an idle pass would
    reply = await kit.fetch(0, "w2:1")

    assert reply.jobs == []
    assert reply.recovered == ["y", "x"]  # oldest deadline first
    assert await kit.ready() == ["y", "x", "r1", "r2"]
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.leases) == {}
    # recovery itself is not an attempt: the next lease counts it
    assert await kit.hash(kit.k.attempts) == {"x": b"1", "y": b"1"}
    assert reply.pending == 4


async def test_recovered_job_is_leased_again_to_the_new_worker_only(kit: Kit) -> None:
    await kit.lease("a", token="dead-worker:1")
    await kit.enqueue("b")
    await _expire_lease(kit, "a", await kit.now_ms() - 1)

    reply = await kit.fetch(1, "w2:7")

    assert reply.recovered == ["a"]
    assert [(j.id, j.attempt) for j in reply.jobs] == [("a", 2)]
    assert await kit.hash(kit.k.leases) == {"a": b"w2:7"}
    assert await kit.zset(kit.k.active) == {"a": reply.now_ms + LEASE_MS}
    assert await kit.ready() == ["b"]
    # the worker that lost the lease can no longer write the job's outcome
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "dead-worker:1", b"1")]) == [False]
    assert await kit.zset(kit.k.active) == {"a": reply.now_ms + LEASE_MS}


async def test_a_short_lease_really_expires_on_redis_time(kit: Kit) -> None:
    await kit.enqueue("a")
    assert [j.id for j in (await kit.fetch(1, "w1:1", lease_ms=1_000)).jobs] == ["a"]
    assert (await kit.fetch(1, "w2:1")).recovered == []  # still held
    await asyncio.sleep(1.2)
    reply = await kit.fetch(1, "w2:2")
    assert reply.recovered == ["a"]
    assert [(j.id, j.attempt) for j in reply.jobs] == [("a", 2)]


async def test_ids_whose_record_was_deleted_are_dropped_not_leased(kit: Kit) -> None:
    await kit.enqueue("a", "b", "c")
    await kit.r.hdel(kit.k.jobs, "b")

    reply = await kit.fetch(3, "w1:1")

    assert [j.id for j in reply.jobs] == ["a", "c"]
    assert await kit.ready() == []
    assert set(await kit.zset(kit.k.active)) == {"a", "c"}
    assert set(await kit.hash(kit.k.leases)) == {"a", "c"}
    assert set(await kit.hash(kit.k.attempts)) == {"a", "c"}
    assert reply.pending == 2


async def test_paused_queue_leases_nothing_but_still_promotes_and_recovers(kit: Kit) -> None:
    now = await kit.now_ms()
    await kit.lease("c", token="dead-worker:1")
    await _expire_lease(kit, "c", now - 1)
    await kit.enqueue("a")
    await kit.schedule("b", now - 1)
    await kit.r.set(kit.k.paused, b"1")

    reply = await kit.fetch(10, "w1:1")

    assert reply.jobs == []
    assert reply.recovered == ["c"]
    assert await kit.ready() == ["c", "a", "b"]
    assert await kit.zset(kit.k.scheduled) == {}
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.hash(kit.k.attempts) == {"c": b"1"}
    assert reply.pending == 3

    await kit.r.delete(kit.k.paused)
    reply = await kit.fetch(10, "w1:2")
    assert [(j.id, j.attempt) for j in reply.jobs] == [("c", 2), ("a", 1), ("b", 1)]


async def test_a_large_backlog_of_due_jobs_is_promoted_in_bounded_steps(kit: Kit) -> None:
    now = await kit.now_ms()
    ids = [f"j{i:04d}" for i in range(1_005)]
    async with kit.r.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hset(kit.k.jobs, job_id, b"1|" + PAYLOAD)
        pipe.zadd(kit.k.scheduled, dict.fromkeys(ids, now - 10))
        await pipe.execute()

    reply = await kit.fetch(0, "w1:1")
    assert await kit.r.llen(kit.k.ready) == 1_000
    assert await kit.r.zcard(kit.k.scheduled) == 5
    assert reply.pending == 1_005

    await kit.fetch(0, "w1:2")
    assert await kit.ready() == ids  # equal scores: ordered by id
    assert await kit.r.zcard(kit.k.scheduled) == 0


# -- fair-share groups -----------------------------------------------------------------------


async def enqueue_grouped(kit: Kit, *jobs: tuple[str, str]) -> None:
    """Enqueue ``(id, group)`` pairs ('' = ungrouped) and drop the wake tokens."""
    items = [EnqueueItem(job_id, PAYLOAD, group=group) for job_id, group in jobs]
    assert await kit.scripts.enqueue_items(kit.k, items) == [True] * len(jobs)
    await kit.r.delete(kit.k.wake)


async def leased(kit: Kit, n: int, token: str = "w1:1") -> list[str]:
    return [j.id for j in (await kit.fetch(n, token)).jobs]


async def test_groups_take_turns_whatever_their_backlog(kit: Kit) -> None:
    await enqueue_grouped(kit, *((f"a{i}", "A") for i in range(5)))
    await enqueue_grouped(kit, ("b0", "B"), ("b1", "B"))

    assert await leased(kit, 10) == ["a0", "b0", "a1", "b1", "a2", "a3", "a4"]
    groups = await kit.hash(kit.k.groups)
    assert (groups["r:A"], groups["r:B"]) == (b"5", b"2")
    assert groups["floor"] == b"4"
    assert await kit.zset(kit.k.fair) == {}
    # completion moves a job from running to done; without caps it wakes nobody
    assert await kit.scripts.complete(kit.k, 60_000, [("b0", "w1:1", b"1")]) == [True]
    groups = await kit.hash(kit.k.groups)
    assert (groups["r:B"], groups["d:B"]) == (b"1", b"1")
    assert await kit.hash(kit.k.group_of) == {f"a{i}": b"A" for i in range(5)} | {"b1": b"B"}
    assert await kit.wake_tokens() == 0


async def test_ungrouped_jobs_count_as_one_more_group(kit: Kit) -> None:
    await enqueue_grouped(kit, ("p0", ""), ("p1", ""), ("p2", ""))
    await enqueue_grouped(kit, ("a0", "A"), ("a1", "A"), ("a2", "A"), ("a3", "A"))
    assert await leased(kit, 3) == ["p0", "a0", "p1"]
    assert await leased(kit, 10) == ["a1", "p2", "a2", "a3"]
    assert await kit.ready() == []


async def test_a_group_arriving_late_starts_level_with_the_backlog(kit: Kit) -> None:
    await enqueue_grouped(kit, *((f"a{i}", "A") for i in range(10)))
    assert await leased(kit, 4) == ["a0", "a1", "a2", "a3"]
    await enqueue_grouped(kit, ("b0", "B"), ("b1", "B"))
    # b0 at the floor (3), then a4 and b1 share position 4 (ties go by id)
    assert await leased(kit, 3) == ["b0", "a4", "b1"]


async def test_a_group_at_its_cap_is_passed_over_until_a_job_of_it_ends(kit: Kit) -> None:
    await kit.r.hset(kit.k.groups, mapping={"cap": 2, "c:B": 1})
    await enqueue_grouped(kit, *((f"a{i}", "A") for i in range(4)))
    await enqueue_grouped(kit, ("b0", "B"), ("b1", "B"), ("p0", ""))

    reply = await kit.fetch(10, "w1:1")
    assert [j.id for j in reply.jobs] == ["p0", "a0", "b0", "a1"]
    assert reply.next_due_ms == reply.now_ms + 250  # idle workers look again soon
    assert set(await kit.zset(kit.k.fair)) == {"a2", "a3", "b1"}
    assert await leased(kit, 10, "w1:2") == []

    await kit.r.delete(kit.k.wake)
    assert await kit.scripts.complete(kit.k, 60_000, [("a0", "w1:1", b"1")]) == [True]
    assert await kit.wake_tokens() == 1  # a slot of a capped group wakes an idle worker
    assert await leased(kit, 10, "w1:3") == ["a2"]
    assert await kit.scripts.retry(kit.k, "b0", "w1:1", 60_000, b"{}")
    assert await leased(kit, 10, "w1:4") == ["b1"]
    groups = await kit.hash(kit.k.groups)
    assert (groups["r:A"], groups["r:B"], groups["d:A"]) == (b"2", b"1", b"1")


async def test_a_capped_grouped_job_back_in_the_list_waits_in_the_fair_set(kit: Kit) -> None:
    await kit.r.hset(kit.k.groups, "c:A", 2)
    await enqueue_grouped(kit, ("a0", "A"), ("a1", "A"), ("a2", "A"))
    assert await leased(kit, 2) == ["a0", "a1"]
    assert await kit.scripts.dead(kit.k, "a1", "w1:1", b"{}", b"{}", 60_000, 100, LEASE_MS)
    assert await leased(kit, 5, "w1:2") == ["a2"]
    # a1 revived into the ready LIST while its group is full: it is parked, not leased
    assert await kit.scripts.revive(kit.k, ["a1"]) == 1
    reply = await kit.fetch(5, "w1:3")
    assert reply.jobs == []
    assert await kit.ready() == []
    assert set(await kit.zset(kit.k.fair)) == {"a1"}

    await kit.scripts.complete(kit.k, 60_000, [("a0", "w1:1", b"1")])
    assert await leased(kit, 5, "w1:4") == ["a1"]
    groups = await kit.hash(kit.k.groups)
    assert (groups["r:A"], groups["d:A"], groups["x:A"]) == (b"2", b"1", b"0")


async def test_due_grouped_jobs_join_their_group_at_its_next_position(kit: Kit) -> None:
    now = await kit.now_ms()
    await enqueue_grouped(kit, ("a0", "A"), ("a1", "A"))
    items = [EnqueueItem("late", PAYLOAD, 0, 60_000, "A"), EnqueueItem("p", PAYLOAD, 0, 60_000)]
    await kit.scripts.enqueue_items(kit.k, items)
    await kit.r.zadd(kit.k.scheduled, {"late": now - 1, "p": now - 1})

    reply = await kit.fetch(0, "w1:1")
    assert reply.pending == 4
    assert await kit.zset(kit.k.fair) == {"a0": 0, "a1": 1, "late": 2}
    assert await kit.ready() == ["p"]


async def test_a_recovered_grouped_job_stops_counting_as_running(kit: Kit) -> None:
    await enqueue_grouped(kit, ("a0", "A"), ("a1", "A"))
    assert await leased(kit, 1, "dead-worker:1") == ["a0"]
    await _expire_lease(kit, "a0", await kit.now_ms() - 1)

    reply = await kit.fetch(0, "w2:1")

    assert reply.recovered == ["a0"]
    assert await kit.ready() == ["a0"]  # to the front, like any recovered job
    assert (await kit.hash(kit.k.groups))["r:A"] == b"0"
    assert await leased(kit, 5, "w2:2") == ["a0", "a1"]


async def test_paused_queue_leases_no_grouped_job(kit: Kit) -> None:
    await enqueue_grouped(kit, ("a0", "A"))
    await kit.r.set(kit.k.paused, b"1")
    assert await leased(kit, 5) == []
    assert await kit.zset(kit.k.fair) == {"a0": 0}


async def test_grouped_ids_whose_record_was_deleted_are_dropped(kit: Kit) -> None:
    await enqueue_grouped(kit, ("a0", "A"), ("a1", "A"))
    await kit.r.hdel(kit.k.jobs, "a0")
    assert await leased(kit, 5) == ["a1"]
    assert await kit.zset(kit.k.fair) == {}


async def test_a_token_in_the_halt_list_stops_the_fetch_from_leasing(kit: Kit) -> None:
    await kit.enqueue("a", "b")
    halt = kit.k.halt("w1")
    await kit.r.rpush(halt, 1)

    reply = await kit.scripts.fetch(kit.k, 10, LEASE_MS, "w1:1", halt=halt)

    assert reply.jobs == []
    assert reply.pending == 2  # still there for the other workers
    assert await kit.ready() == ["a", "b"]
    assert await kit.hash(kit.k.attempts) == {}
    assert await kit.hash(kit.k.leases) == {}


async def test_a_fetch_that_waits_first_leases_what_the_waking_enqueue_added(kit: Kit) -> None:
    halt = kit.k.halt("w1")
    waiting = asyncio.create_task(
        kit.scripts.fetch(kit.k, 10, LEASE_MS, "w1:1", halt=halt, wait_s=5.0)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()  # blocked: nothing to fetch and no token yet

    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [True]
    reply = await asyncio.wait_for(waiting, 5.0)

    assert [j.id for j in reply.jobs] == ["a"]
    assert await kit.hash(kit.k.leases) == {"a": b"w1:1"}


async def test_halt_wakes_a_waiting_fetch_which_then_leases_nothing(kit: Kit) -> None:
    halt = kit.k.halt("w1")
    waiting = asyncio.create_task(
        kit.scripts.fetch(kit.k, 10, LEASE_MS, "w1:1", halt=halt, wait_s=30.0)
    )
    await asyncio.sleep(0.2)
    # a job is ready (its wake token went to another worker), then this worker stops
    await kit.r.hset(kit.k.jobs, "a", b"1|" + PAYLOAD)
    await kit.r.rpush(kit.k.ready, "a")
    await kit.broker.halt(halt)

    reply = await asyncio.wait_for(waiting, 5.0)

    assert reply.jobs == []
    assert await kit.ready() == ["a"]
    assert await kit.hash(kit.k.attempts) == {}
    assert 0 < await kit.r.pttl(halt) <= 60_000  # the halt list goes away by itself


async def test_a_waiting_fetch_whose_wait_times_out_still_fetches(kit: Kit) -> None:
    # a job enqueued without a token (e.g. the token was taken by a worker that then
    # found nothing) is still leased when the wait ends
    await kit.enqueue("a")
    reply = await kit.scripts.fetch(kit.k, 10, LEASE_MS, "w1:1", halt=kit.k.halt("w1"), wait_s=0.05)
    assert [j.id for j in reply.jobs] == ["a"]


async def test_a_waiting_fetch_loads_its_script_when_redis_lost_it(kit: Kit) -> None:
    await kit.enqueue("a")
    await kit.r.script_flush()
    reply = await kit.scripts.fetch(kit.k, 10, LEASE_MS, "w1:1", halt=kit.k.halt("w1"), wait_s=0.05)
    assert [j.id for j in reply.jobs] == ["a"]
