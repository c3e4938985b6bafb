"""The requeue script: an interrupted job goes back to the front, its attempt given back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


async def test_requeue_puts_the_job_first_with_its_checkpoint_and_attempt_back(
    kit: Kit,
) -> None:
    await kit.lease("a")
    await kit.enqueue("b", "c")

    assert await kit.scripts.requeue(kit.k, "a", "w1:1", b"final-cp") is True

    assert await kit.ready() == ["a", "b", "c"]
    assert await kit.zset(kit.k.active) == {}
    assert await kit.hash(kit.k.leases) == {}
    assert await kit.hash(kit.k.attempts) == {"a": b"0"}
    assert await kit.hash(kit.k.state) == {"a": b"final-cp"}
    assert "a" in await kit.hash(kit.k.jobs)
    assert await kit.wake_tokens() == 1
    assert await kit.r.exists(kit.k.result("a"), kit.k.done("a")) == 0

    # the next worker resumes it from the checkpoint, as the same attempt
    (job,) = (await kit.fetch(1, "w2:1")).jobs
    assert (job.id, job.attempt, job.state) == ("a", 1, b"final-cp")


async def test_empty_state_keeps_the_last_checkpoint(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"step-2")
    assert await kit.scripts.requeue(kit.k, "a", "w1:1") is True
    assert await kit.hash(kit.k.state) == {"a": b"step-2"}


async def test_empty_state_without_a_checkpoint_stores_none(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.requeue(kit.k, "a", "w1:1") is True
    assert await kit.hash(kit.k.state) == {}


async def test_a_job_interrupted_many_times_never_uses_up_its_attempts(kit: Kit) -> None:
    await kit.enqueue("a")
    for n in range(5):
        (job,) = (await kit.fetch(1, f"w{n}:1")).jobs
        assert job.attempt == 1
        assert await kit.scripts.requeue(kit.k, "a", f"w{n}:1") is True


@pytest.mark.parametrize("token", ["w2:1", ""], ids=["other-worker", "empty"])
async def test_stale_token_returns_0_and_changes_nothing(kit: Kit, token: str) -> None:
    await kit.lease("a")
    await kit.enqueue("b")
    before = await kit.snapshot()
    assert await kit.scripts.requeue(kit.k, "a", token, b"cp") is False
    assert await kit.scripts.requeue(kit.k, "a", token) is False
    assert await kit.snapshot() == before


async def test_requeue_after_the_job_was_recovered_elsewhere_changes_nothing(kit: Kit) -> None:
    await kit.lease("a", token="w1:1")
    await kit.r.zadd(kit.k.active, {"a": await kit.now_ms() - 1})
    (job,) = (await kit.fetch(1, "w2:1")).jobs
    assert (job.id, job.attempt) == ("a", 2)
    before = await kit.snapshot()

    # the first worker comes back from a long pause and tries to hand the job back
    assert await kit.scripts.requeue(kit.k, "a", "w1:1", b"stale-cp") is False

    assert await kit.snapshot() == before


async def test_second_requeue_of_the_same_lease_is_refused(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.requeue(kit.k, "a", "w1:1") is True
    before = await kit.snapshot()
    assert await kit.scripts.requeue(kit.k, "a", "w1:1") is False
    assert await kit.snapshot() == before
    assert await kit.ready() == ["a"]
