"""The batch scripts' atomic contracts: idempotent outcomes, exactly-once callbacks, claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aioworker.batch_scripts import BatchEvent, BatchScripts
from aioworker.cancellation import cancel, cancel_done
from aioworker.keys import BatchKeys
from tests.scriptkit import Kit, open_kit, text

SPEC = b'{"t":"cb","q":"q","a":[],"k":{},"r":null,"o":null,"d":0}'


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


def _bs(kit: Kit) -> BatchScripts:
    return BatchScripts(kit.scripts)


async def _state(kit: Kit, b: BatchKeys) -> dict[str, Any]:
    """Everything the batch keeps, for exact comparisons."""
    meta = {text(k): text(v) for k, v in (await kit.r.hgetall(b.meta)).items()}
    children = {text(k): text(v) for k, v in (await kit.r.hgetall(b.children)).items()}
    failed = sorted(text(m) for m in await kit.r.smembers(b.failed))
    return {"meta": meta, "children": children, "failed": failed, "done": await kit.r.llen(b.done)}


def _counts(state: dict[str, Any]) -> dict[str, int]:
    m = state["meta"]
    return {k: int(m[k]) for k in ("total", "pending", "succeeded", "failed", "skipped")}


async def _batch(
    kit: Kit, *children: str, complete: bool = True, success: bool = True
) -> BatchKeys:
    b = BatchKeys(kit.k.prefix, "b1")
    bs = _bs(kit)
    created, _ = await bs.batch_create(
        b, "test", 600_000, SPEC if complete else b"", SPEC if success else b""
    )
    assert created
    if children:
        assert await bs.batch_add(b, "", list(children)) == len(children)
    return b


def _ev(event: str, job: str = "", queue: str = "q") -> BatchEvent:
    return BatchEvent(event, job, queue)


async def test_outcomes_move_each_child_once_and_replays_change_nothing(kit: Kit) -> None:
    b = await _batch(kit, "a", "b", "c")
    bs = _bs(kit)
    reply = await bs.batch_apply(b, [_ev("ok", "a"), _ev("failed", "b")])
    assert reply.results == [1, 1] and reply.due == []
    after = await _state(kit, b)
    assert _counts(after) == {"total": 3, "pending": 1, "succeeded": 1, "failed": 1, "skipped": 0}
    assert after["children"] == {"a": "s", "b": "f", "c": "p"}
    assert after["failed"] == ["q|b"]

    replay = await bs.batch_apply(b, [_ev("ok", "a"), _ev("failed", "b"), _ev("failed", "a")])
    assert replay.results == [0, 0, 0]
    assert await _state(kit, b) == after


async def test_a_failed_child_that_succeeds_later_counts_as_succeeded(kit: Kit) -> None:
    b = await _batch(kit, "a")
    bs = _bs(kit)
    await bs.batch_apply(b, [_ev("failed", "a")])
    assert (await bs.batch_apply(b, [_ev("ok", "a")])).results == [1]
    state = await _state(kit, b)
    assert _counts(state) == {"total": 1, "pending": 0, "succeeded": 1, "failed": 0, "skipped": 0}
    assert state["failed"] == []
    # an old failure entry applied late does not undo the success
    assert (await bs.batch_apply(b, [_ev("failed", "a")])).results == [0]
    assert _counts(await _state(kit, b))["succeeded"] == 1


async def test_callbacks_are_due_only_once_sealed_and_reserved_for_one_caller(kit: Kit) -> None:
    b = await _batch(kit, "a", "b")
    bs = _bs(kit)
    assert (await bs.batch_apply(b, [_ev("ok", "a"), _ev("ok", "b")])).due == []
    first = await bs.batch_apply(b, [_ev("seal")])
    assert [d.name for d in first.due] == ["complete", "success"]
    assert all(d.spec == SPEC for d in first.due)
    total, succeeded, failed, skipped, finished_ms = map(int, first.due[0].snapshot.split("|"))
    assert (total, succeeded, failed, skipped) == (2, 2, 0, 0) and finished_ms > 0
    assert (await _state(kit, b))["done"] == 1
    # reserved: a concurrent caller (another drainer, a replay) gets nothing to send
    assert (await bs.batch_apply(b, [_ev("seal"), _ev("ok", "a")])).due == []
    sent = await bs.batch_apply(b, [_ev("sent", "complete"), _ev("sent", "success")])
    assert sent.results == [1, 1] and sent.due == []
    assert (await bs.batch_apply(b, [_ev("sent", "complete")])).results == [0]
    assert (await _state(kit, b))["done"] == 1


async def test_a_reservation_whose_caller_died_is_handed_out_again(kit: Kit) -> None:
    b = await _batch(kit, success=False)
    bs = _bs(kit)
    first = await bs.batch_apply(b, [_ev("seal")], claim_ms=50)
    assert [d.name for d in first.due] == ["complete"]
    await asyncio.sleep(0.1)
    again = await bs.batch_apply(b, [_ev("seal")], claim_ms=50)
    assert [(d.name, d.snapshot) for d in again.due] == [("complete", first.due[0].snapshot)]
    await bs.batch_apply(b, [_ev("sent", "complete")])
    await asyncio.sleep(0.1)
    assert (await bs.batch_apply(b, [_ev("seal")], claim_ms=50)).due == []


async def test_on_success_waits_until_no_child_has_failed(kit: Kit) -> None:
    b = await _batch(kit, "a", "b")
    bs = _bs(kit)
    reply = await bs.batch_apply(b, [_ev("ok", "a"), _ev("failed", "b"), _ev("seal")])
    assert [d.name for d in reply.due] == ["complete"]
    assert reply.due[0].snapshot.split("|")[:4] == ["2", "1", "1", "0"]
    await bs.batch_apply(b, [_ev("sent", "complete")])
    later = await bs.batch_apply(b, [_ev("ok", "b")])
    assert [d.name for d in later.due] == ["success"]
    assert later.due[0].snapshot.split("|")[:4] == ["2", "2", "0", "0"]


async def test_children_finished_before_registration_are_counted_when_registered(
    kit: Kit,
) -> None:
    b = await _batch(kit)
    bs = _bs(kit)
    early = await bs.batch_apply(b, [_ev("ok", "a"), _ev("failed", "b", "q2")])
    assert early.results == [0, 0]
    state = await _state(kit, b)
    assert _counts(state)["total"] == 0 and state["children"] == {"a": "S", "b": "F|q2"}
    assert await bs.batch_add(b, "", ["a", "b", "c"]) == 3
    state = await _state(kit, b)
    assert _counts(state) == {"total": 3, "pending": 1, "succeeded": 1, "failed": 1, "skipped": 0}
    assert state["children"] == {"a": "s", "b": "f", "c": "p"}
    assert state["failed"] == ["q2|b"]
    assert await bs.batch_add(b, "", ["a", "b", "c"]) == 0
    assert await _state(kit, b) == state


async def test_sealed_batch_takes_new_children_only_from_a_pending_child(kit: Kit) -> None:
    b = await _batch(kit, "a", "b")
    bs = _bs(kit)
    await bs.batch_apply(b, [_ev("ok", "b"), _ev("seal")])
    before = await _state(kit, b)
    assert await bs.batch_add(b, "", ["new"]) == -3
    assert await bs.batch_add(b, "b", ["new"]) == -3  # b has finished
    assert await bs.batch_add(b, "", ["a"]) == 0  # known ids are always fine
    assert await bs.batch_add(b, "a", ["new"], check=True) == 1
    assert await _state(kit, b) == before
    assert await bs.batch_add(b, "a", ["new", "new"]) == 1
    assert _counts(await _state(kit, b))["pending"] == 2
    # a child whose own registration has not landed yet may add too
    assert await bs.batch_add(b, "unregistered", ["new2"]) == 1


async def test_missing_and_cancelled_batches_refuse_children(kit: Kit) -> None:
    b = await _batch(kit, "a")
    bs = _bs(kit)
    assert await bs.batch_add(BatchKeys(kit.k.prefix, "nope"), "", ["x"]) == -1
    assert (await bs.batch_apply(BatchKeys(kit.k.prefix, "nope"), [_ev("ok", "x")])).results == []
    assert (await bs.batch_apply(b, [_ev("cancel")])).results == [1]
    assert (await bs.batch_apply(b, [_ev("cancel")])).results == [0]
    assert await bs.batch_add(b, "", ["x"]) == -2


async def test_skip_check_answers_without_writing_until_the_batch_is_cancelled(kit: Kit) -> None:
    b = await _batch(kit, "a", "b", "c")
    bs = _bs(kit)
    await bs.batch_apply(b, [_ev("failed", "b"), _ev("seal")])
    before = await _state(kit, b)
    assert (await bs.batch_apply(b, [_ev("skip", "a"), _ev("check")])).results == [0, 0]
    assert await _state(kit, b) == before

    await bs.batch_apply(b, [_ev("cancel")])
    cancelled = await _state(kit, b)
    assert (await bs.batch_apply(b, [_ev("check")])).results == [1]
    assert await _state(kit, b) == cancelled
    reply = await bs.batch_apply(b, [_ev("skip", "a"), _ev("skip", "b"), _ev("skip", "a")])
    assert reply.results == [1, 1, 1] and reply.due == []
    state = await _state(kit, b)
    assert _counts(state) == {"total": 3, "pending": 1, "succeeded": 0, "failed": 0, "skipped": 2}
    assert state["children"] == {"a": "x", "b": "x", "c": "p"}
    # the skipped child's own completion (it completes without running) changes nothing
    await bs.batch_apply(b, [_ev("ok", "a"), _ev("ok", "b")])
    assert _counts(await _state(kit, b)) == _counts(state)
    # the last one finishes: the batch is done, but a cancelled batch fires no callback
    final = await bs.batch_apply(b, [_ev("ok", "c")])
    assert final.due == []
    state = await _state(kit, b)
    assert state["meta"]["done"] != "0" and "due:complete" not in state["meta"]


async def test_outbox_claims_hand_each_entry_to_one_drainer_until_it_expires(kit: Kit) -> None:
    bs = _bs(kit)
    assert await bs.batch_outbox_push(kit.k, ["b1|a|ok", "b1|b|failed", "b1||seal"]) == 3
    first = await bs.batch_outbox_claim(kit.k, 2, 60_000)
    second = await bs.batch_outbox_claim(kit.k, 2, 60_000)
    assert first == ["b1|a|ok", "b1|b|failed"] and second == ["b1||seal"]
    assert await bs.batch_outbox_claim(kit.k, 2, 60_000) == []
    # reporting entries handled drops their claims
    assert await bs.batch_outbox_claim(kit.k, 0, 60_000, second) == []
    assert set(await kit.zset(kit.k.batch_claims)) == set(first)
    await kit.r.zadd(kit.k.batch_claims, dict.fromkeys(first, 0))  # their drainer died
    assert sorted(await bs.batch_outbox_claim(kit.k, 10, 60_000)) == sorted(first)
    assert await bs.batch_outbox_claim(kit.k, 10, 60_000, first) == []
    assert await kit.r.exists(kit.k.batch_outbox, kit.k.batch_claims) == 0


async def test_a_child_cancelled_by_an_operator_counts_as_skipped(kit: Kit) -> None:
    b = await _batch(kit, "a", "b")
    bs = _bs(kit)
    reply = await bs.batch_apply(b, [_ev("skipped", "a"), _ev("ok", "b"), _ev("seal")])
    assert reply.results == [1, 1, 1]
    # every child finished, one without succeeding: on_complete only
    assert [d.name for d in reply.due] == ["complete"]
    assert reply.due[0].snapshot.split("|")[:4] == ["2", "1", "0", "1"]
    assert (await _state(kit, b))["children"] == {"a": "x", "b": "s"}


async def test_the_cancel_scripts_append_skipped_to_the_outbox_for_batch_children(
    kit: Kit,
) -> None:
    child = b'{"t":"tests.task","a":[1],"k":{},"b":"b1"}'
    await kit.enqueue("queued", payload=child)
    await kit.enqueue("plain")
    assert await cancel(kit.scripts, kit.k, "queued", 60_000) == ("cancelled", "queued")
    assert await cancel(kit.scripts, kit.k, "plain", 60_000) == ("cancelled", "queued")
    assert await kit.r.lrange(kit.k.batch_outbox, 0, -1) == [b"b1|queued|skipped"]

    await kit.enqueue("running", payload=child)
    (job,) = (await kit.fetch(1, "w1:1")).jobs
    assert job.id == "running"
    assert await cancel_done(kit.scripts, kit.k, "running", "w1:1", b"{}", 60_000)
    assert await kit.r.lrange(kit.k.batch_outbox, 0, -1) == [
        b"b1|queued|skipped",
        b"b1|running|skipped",
    ]
