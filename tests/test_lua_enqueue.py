"""The enqueue script: new jobs land ready or scheduled, an existing id is never touched."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aioworker.scripts import EnqueueItem
from tests.scriptkit import LEASE_MS, PAYLOAD, Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_new_job_is_ready_with_a_stamped_record_and_wakes_one_worker(kit: Kit) -> None:
    before = await kit.now_ms()
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [True]
    after = await kit.now_ms()

    assert await kit.ready() == ["a"]
    assert await kit.zset(kit.k.scheduled) == {}
    stamp, sep, body = (await kit.hash(kit.k.jobs))["a"].partition(b"|")
    assert sep == b"|" and body == PAYLOAD
    assert before <= int(stamp) <= after
    assert await kit.wake_tokens() == 1
    # nothing counts as an attempt, a lease or a result yet
    assert await kit.hash(kit.k.attempts) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a")) == 0


async def test_ready_jobs_keep_enqueue_order_within_and_across_calls(kit: Kit) -> None:
    flags = await kit.scripts.enqueue(kit.k, [(i, PAYLOAD, 0, 0) for i in ("a", "b", "c")])
    assert flags == [True, True, True]
    assert await kit.scripts.enqueue(kit.k, [("d", PAYLOAD, 0, 0)]) == [True]
    assert await kit.ready() == ["a", "b", "c", "d"]


async def test_delayed_job_is_scheduled_relative_to_redis_time(kit: Kit) -> None:
    before = await kit.now_ms()
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 5_000)]) == [True]
    after = await kit.now_ms()

    assert await kit.ready() == []
    score = (await kit.zset(kit.k.scheduled))["a"]
    assert before + 5_000 <= score <= after + 5_000
    assert "a" in await kit.hash(kit.k.jobs)
    # a delayed job wakes a worker too, so it can shorten its sleep to the new due time
    assert await kit.wake_tokens() == 1


async def test_job_at_a_future_time_is_scheduled_at_exactly_that_time(kit: Kit) -> None:
    at_ms = await kit.now_ms() + 3_600_000
    # at_ms wins over delay_ms when both are given
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, at_ms, 10)]) == [True]
    assert await kit.zset(kit.k.scheduled) == {"a": at_ms}
    assert await kit.ready() == []


async def test_job_at_a_past_time_is_ready_at_once(kit: Kit) -> None:
    at_ms = await kit.now_ms() - 60_000
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, at_ms, 0)]) == [True]
    assert await kit.ready() == ["a"]
    assert await kit.zset(kit.k.scheduled) == {}


@pytest.mark.parametrize("where", ["ready", "scheduled", "active", "dead"])
async def test_existing_id_returns_0_and_changes_nothing(kit: Kit, where: str) -> None:
    other_payload = b'{"t":"tests.other","a":[],"k":{}}'
    if where == "ready":
        await kit.enqueue("a")
    elif where == "scheduled":
        await kit.schedule("a", await kit.now_ms() + 60_000)
    else:
        await kit.lease("a")
        if where == "dead":
            ok = await kit.scripts.dead(kit.k, "a", "w1:1", b"{}", b"{}", 0, 100, LEASE_MS)
            assert ok
            await kit.r.delete(kit.k.wake, kit.k.done("a"))
    before = await kit.snapshot()

    for at_ms, delay_ms in ((0, 0), (0, 10_000)):
        assert await kit.scripts.enqueue(kit.k, [("a", other_payload, at_ms, delay_ms)]) == [False]

    assert await kit.snapshot() == before


async def test_id_with_only_a_result_left_is_not_enqueued_again(kit: Kit) -> None:
    # the job finished and its record is gone; its result must not be shadowed by a rerun
    await kit.r.set(kit.k.result("a"), b"1|{}", px=60_000)
    before = await kit.snapshot()

    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [False]

    assert await kit.snapshot() == before
    assert await kit.wake_tokens() == 0


async def test_batch_reports_each_job_and_a_repeated_id_is_created_once(kit: Kit) -> None:
    await kit.enqueue("old")
    flags = await kit.scripts.enqueue(
        kit.k,
        [
            ("a", PAYLOAD, 0, 0),
            ("old", PAYLOAD, 0, 0),
            ("a", b"second", 0, 0),
            ("b", PAYLOAD, 0, 0),
        ],
    )
    assert flags == [True, False, False, True]
    assert await kit.ready() == ["old", "a", "b"]
    jobs = await kit.hash(kit.k.jobs)
    assert jobs["a"].endswith(b"|" + PAYLOAD)
    assert await kit.wake_tokens() == 2


async def test_wake_tokens_are_one_per_new_job_up_to_16_and_the_list_is_capped(kit: Kit) -> None:
    assert (
        await kit.scripts.enqueue(kit.k, [(f"a{i}", PAYLOAD, 0, 0) for i in range(20)])
        == [True] * 20
    )
    assert await kit.wake_tokens() == 16
    for batch in range(4):
        await kit.scripts.enqueue(kit.k, [(f"b{batch}-{i}", PAYLOAD, 0, 0) for i in range(20)])
    # idle workers need only a few tokens: the list never grows past 64
    assert await kit.wake_tokens() == 64
    assert await kit.r.llen(kit.k.ready) == 100


async def test_nothing_created_pushes_no_wake_token(kit: Kit) -> None:
    await kit.enqueue("a")
    assert await kit.scripts.enqueue(kit.k, [("a", PAYLOAD, 0, 0)]) == [False]
    assert await kit.wake_tokens() == 0


# -- unique locks, debounce, throttle and fair-share groups --------------------------------

OTHER = b'{"t":"tests.task","a":[2],"k":{}}'


def item(job_id: str, payload: bytes = PAYLOAD, **options: Any) -> EnqueueItem:
    return EnqueueItem(job_id, payload, **options)


def unique(job_id: str, mode: str, payload: bytes = PAYLOAD, **options: Any) -> EnqueueItem:
    options.setdefault("lock_ttl_ms", 60_000)
    return EnqueueItem(job_id, payload, unique_mode=mode, unique_key="k1", **options)


@pytest.mark.parametrize("mode", ["start", "success", "throttle"])
async def test_a_held_unique_key_returns_the_holder_and_changes_nothing(
    kit: Kit, mode: str
) -> None:
    assert await kit.scripts.enqueue_items(kit.k, [unique("a", mode)]) == [True]
    lock = await kit.get(kit.k.unique("k1"))
    assert lock == f"{mode}|a".encode()
    assert 59_000 < await kit.r.pttl(kit.k.unique("k1")) <= 60_000
    await kit.r.delete(kit.k.wake)
    before = await kit.snapshot()

    assert await kit.scripts.enqueue_items(kit.k, [unique("b", mode, OTHER)]) == ["a"]

    assert await kit.snapshot() == before
    assert await kit.ready() == ["a"]


async def test_the_same_key_twice_in_one_call_creates_the_first_job_only(kit: Kit) -> None:
    reply = await kit.scripts.enqueue_items(
        kit.k, [unique("a", "success"), item("x"), unique("b", "success")]
    )
    assert reply == [True, True, "a"]
    assert await kit.ready() == ["a", "x"]
    assert set(await kit.hash(kit.k.jobs)) == {"a", "x"}


async def test_an_existing_id_wins_over_the_unique_lock(kit: Kit) -> None:
    await kit.enqueue("a")
    assert await kit.scripts.enqueue_items(kit.k, [unique("a", "success")]) == [False]
    assert await kit.r.exists(kit.k.unique("k1")) == 0


async def test_until_started_is_released_by_the_fetch_that_leases_the_holder(kit: Kit) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "start")])
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "start")]) == ["a"]
    assert [j.id for j in (await kit.fetch(1, "w1:1")).jobs] == ["a"]

    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "start")]) == [True]
    assert await kit.get(kit.k.unique("k1")) == b"start|b"


async def test_until_succeeded_binds_through_retries_and_is_released_by_complete(
    kit: Kit,
) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "success")])
    await kit.fetch(1, "w1:1")
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == ["a"]  # running
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 60_000, b"{}")
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == ["a"]  # retrying

    await kit.r.zadd(kit.k.scheduled, {"a": 0})
    assert [j.id for j in (await kit.fetch(1, "w1:2")).jobs] == ["a"]
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:2", b"1")]) == [True]

    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == [True]


async def test_until_succeeded_is_released_by_the_dead_letter(kit: Kit) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "success")])
    await kit.fetch(1, "w1:1")
    assert await kit.scripts.dead(kit.k, "a", "w1:1", b"{}", b"{}", 60_000, 100, LEASE_MS)
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == [True]


async def test_a_lock_lapses_after_its_ttl_whatever_its_holder_does(kit: Kit) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "success", lock_ttl_ms=100)])
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == ["a"]
    await asyncio.sleep(0.2)
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "success")]) == [True]
    assert await kit.ready() == ["a", "b"]  # the lost holder itself is not touched


async def test_throttle_binds_until_its_window_even_after_the_job_finished(kit: Kit) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "throttle", lock_ttl_ms=300)])
    await kit.fetch(1, "w1:1")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b"1")]) == [True]
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "throttle")]) == ["a"]
    await asyncio.sleep(0.4)
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "throttle")]) == [True]


async def test_debounce_replaces_the_payload_and_pushes_the_run_time_back(kit: Kit) -> None:
    first = unique("a", "debounce", delay_ms=1_000, extend=True)
    assert await kit.scripts.enqueue_items(kit.k, [first]) == [True]
    stamp = (await kit.hash(kit.k.jobs))["a"].partition(b"|")[0]
    before = (await kit.zset(kit.k.scheduled))["a"]
    await asyncio.sleep(0.05)

    again = unique("b", "debounce", OTHER, delay_ms=1_000, extend=True)
    assert await kit.scripts.enqueue_items(kit.k, [again]) == ["a"]

    assert (await kit.hash(kit.k.jobs))["a"] == stamp + b"|" + OTHER  # first enqueue time kept
    assert (await kit.zset(kit.k.scheduled))["a"] >= before + 40
    assert "b" not in await kit.hash(kit.k.jobs)
    # the lock outlives the new run time
    assert await kit.r.pttl(kit.k.unique("k1")) > 60_000


async def test_debounce_without_extend_keeps_the_run_time_and_max_wait_bounds_it(
    kit: Kit,
) -> None:
    keep = unique("a", "debounce", delay_ms=1_000)
    await kit.scripts.enqueue_items(kit.k, [keep])
    at = (await kit.zset(kit.k.scheduled))["a"]
    await asyncio.sleep(0.02)
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "debounce", OTHER)]) == ["a"]
    assert (await kit.zset(kit.k.scheduled))["a"] == at

    capped = [EnqueueItem("c", PAYLOAD, 0, 1_000, "", "debounce", "k2", 60_000, True, 1_200)]
    await kit.scripts.enqueue_items(kit.k, capped)
    stamp = int((await kit.hash(kit.k.jobs))["c"].partition(b"|")[0])
    await asyncio.sleep(0.3)
    again = [EnqueueItem("d", OTHER, 0, 1_000, "", "debounce", "k2", 60_000, True, 1_200)]
    assert await kit.scripts.enqueue_items(kit.k, again) == ["c"]
    assert (await kit.zset(kit.k.scheduled))["c"] == stamp + 1_200


async def test_debounce_after_the_holder_started_creates_a_new_job(kit: Kit) -> None:
    await kit.scripts.enqueue_items(kit.k, [unique("a", "debounce", delay_ms=1)])
    await asyncio.sleep(0.01)
    assert [j.id for j in (await kit.fetch(1, "w1:1")).jobs] == ["a"]
    assert await kit.scripts.enqueue_items(kit.k, [unique("b", "debounce", OTHER)]) == [True]
    assert (await kit.hash(kit.k.jobs))["a"].endswith(b"|" + PAYLOAD)  # the running one kept


async def test_ready_grouped_jobs_wait_in_the_fair_set_at_their_group_positions(
    kit: Kit,
) -> None:
    reply = await kit.scripts.enqueue_items(
        kit.k,
        [item("a0", group="A"), item("a1", group="A"), item("b0", group="B"), item("p")],
    )
    assert reply == [True] * 4
    assert await kit.ready() == ["p"]
    assert await kit.zset(kit.k.fair) == {"a0": 0, "a1": 1, "b0": 0}
    assert await kit.hash(kit.k.group_of) == {"a0": b"A", "a1": b"A", "b0": b"B"}
    groups = await kit.hash(kit.k.groups)
    assert groups == {"s:A": b"2", "s:B": b"1", "t:A": b"2", "t:B": b"1"}

    # a group arriving later starts at the floor, not behind the others' backlog
    await kit.r.hset(kit.k.groups, "floor", 7)
    await kit.scripts.enqueue_items(kit.k, [item("c0", group="C"), item("a2", group="A")])
    fair = await kit.zset(kit.k.fair)
    assert fair["c0"] == 7 and fair["a2"] == 7


async def test_a_delayed_grouped_job_is_scheduled_and_counted(kit: Kit) -> None:
    assert await kit.scripts.enqueue_items(kit.k, [item("a", group="A", delay_ms=60_000)]) == [True]
    assert set(await kit.zset(kit.k.scheduled)) == {"a"}
    assert await kit.zset(kit.k.fair) == {}
    assert (await kit.hash(kit.k.groups))["t:A"] == b"1"


# -- jobs with generated ids, written in bulk ---------------------------------------------


def fresh(job_id: str, payload: bytes = PAYLOAD, **options: Any) -> EnqueueItem:
    return EnqueueItem(job_id, payload, fresh=True, **options)


async def test_generated_id_jobs_keep_their_order_among_jobs_written_one_by_one(
    kit: Kit,
) -> None:
    await kit.enqueue("old")
    at_ms = await kit.now_ms() + 3_600_000
    reply = await kit.scripts.enqueue_items(
        kit.k,
        [
            fresh("f1"),
            item("old"),  # a chosen id that exists: nothing happens
            fresh("f2", delay_ms=60_000),
            item("c1"),
            fresh("f3", at_ms=at_ms),
            fresh("g1", group="A"),
            unique("u1", "success"),
            unique("u2", "success"),  # held by u1
            fresh("f4"),
        ],
    )
    assert reply == [True, False, True, True, True, True, True, "u1", True]
    assert await kit.ready() == ["old", "f1", "c1", "u1", "f4"]
    scheduled = await kit.zset(kit.k.scheduled)
    assert set(scheduled) == {"f2", "f3"} and scheduled["f3"] == at_ms
    assert await kit.zset(kit.k.fair) == {"g1": 0}
    jobs = await kit.hash(kit.k.jobs)
    assert set(jobs) == {"old", "f1", "f2", "c1", "f3", "g1", "u1", "f4"}
    stamps = {jobs[i].partition(b"|")[0] for i in ("f1", "c1", "f4")}
    assert len(stamps) == 1  # one Redis time for the whole call
    assert await kit.wake_tokens() == 7


async def test_many_generated_id_jobs_in_one_call_are_all_written_in_order(kit: Kit) -> None:
    ids = [f"f{i}" for i in range(2_500)]  # more than one bulk write of 1000
    payloads = [b'{"t":"tests.task","a":[%d],"k":{}}' % i for i in range(2_500)]
    reply = await kit.scripts.enqueue_items(
        kit.k, [fresh(i, p) for i, p in zip(ids, payloads, strict=True)]
    )
    assert reply == [True] * 2_500
    assert await kit.ready() == ids
    jobs = await kit.hash(kit.k.jobs)
    assert [jobs[i].partition(b"|")[2] for i in ids] == payloads
    assert await kit.wake_tokens() == 16


async def test_ids_and_payloads_of_any_bytes_arrive_whole(kit: Kit) -> None:
    odd = ["id with spaces 1 2", "ünïcødé-✓", "a|b", "0"]
    payload = '{"t":"tests.task","a":["ü 1 2 ✓|"],"k":{}}'.encode()
    reply = await kit.scripts.enqueue_items(kit.k, [item(i, payload) for i in odd])
    assert reply == [True] * 4
    assert await kit.ready() == odd
    jobs = await kit.hash(kit.k.jobs)
    assert [jobs[i].partition(b"|")[2] for i in odd] == [payload] * 4


async def test_an_empty_call_changes_nothing(kit: Kit) -> None:
    before = await kit.snapshot()
    assert await kit.scripts.enqueue_items(kit.k, []) == []
    assert await kit.snapshot() == before


async def test_a_chosen_id_repeated_in_one_call_is_created_once_across_bulk_writes(
    kit: Kit,
) -> None:
    ids = [f"c{i}" for i in range(1_500)]  # the bulk is written after the first 1000
    items = [item(i) for i in ids]
    items += [item("c10"), item("c1200"), unique("u", "start"), item("c1499"), fresh("f")]
    reply = await kit.scripts.enqueue_items(kit.k, items)
    assert reply == [True] * 1_500 + [False, False, True, False, True]
    assert await kit.ready() == [*ids, "u", "f"]
    assert len(await kit.hash(kit.k.jobs)) == 1_502


async def test_chosen_ids_are_looked_up_against_jobs_results_and_the_call_itself(
    kit: Kit,
) -> None:
    await kit.enqueue("queued")
    await kit.r.set(kit.k.result("finished"), b"1|{}", px=60_000)
    assert await kit.scripts.enqueue_items(kit.k, [unique("holder", "success")]) == [True]
    reply = await kit.scripts.enqueue_items(
        kit.k,
        [
            item("finished"),
            item("new1"),
            item("queued"),
            unique("x", "success"),  # its key is held: x is not created ...
            item("x"),  # ... so this x is
            item("new1"),
            fresh("f"),
        ],
    )
    assert reply == [False, True, False, "holder", True, False, True]
    assert await kit.ready() == ["queued", "holder", "new1", "x", "f"]
    assert await kit.r.exists(kit.k.jobs) and not await kit.r.hexists(kit.k.jobs, "finished")
