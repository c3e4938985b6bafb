"""The status script: where one job is, with everything stored about it, read atomically."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.scripts import StatusReply
from tests.scriptkit import PAYLOAD, Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


ERROR = b'{"type":"ValueError","message":"boom","traceback":""}'


async def _record(kit: Kit, job_id: str) -> bytes:
    return (await kit.hash(kit.k.jobs))[job_id]


async def test_unknown_job_is_missing_with_empty_fields(kit: Kit) -> None:
    before = await kit.snapshot()
    assert await kit.scripts.status(kit.k, "nope") == StatusReply(
        "missing", b"", b"", b"", b"", b"", b""
    )
    assert await kit.snapshot() == before


async def test_queued_job(kit: Kit) -> None:
    await kit.enqueue("a")
    reply = await kit.scripts.status(kit.k, "a")
    assert reply == StatusReply("queued", b"", await _record(kit, "a"), b"", b"", b"", b"")
    assert reply.record.endswith(b"|" + PAYLOAD)


async def test_scheduled_job_reports_its_run_time(kit: Kit) -> None:
    run_at = await kit.now_ms() + 60_000
    await kit.schedule("a", run_at)
    reply = await kit.scripts.status(kit.k, "a")
    assert reply.where == "scheduled"
    assert int(float(reply.score)) == run_at
    assert reply.record == await _record(kit, "a")


async def test_retried_job_waiting_for_its_backoff_reports_error_and_attempts(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.retry(kit.k, "a", "w1:1", 60_000, ERROR)
    reply = await kit.scripts.status(kit.k, "a")
    assert (reply.where, reply.attempts, reply.error) == ("scheduled", b"1", ERROR)


async def test_running_job_reports_its_lease_deadline_attempts_and_state(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.checkpoint(kit.k, "a", "w1:1", b"cp")
    deadline = (await kit.zset(kit.k.active))["a"]

    reply = await kit.scripts.status(kit.k, "a")

    assert reply == StatusReply(
        "active", b"", await _record(kit, "a"), b"1", b"", b"cp", reply.score
    )
    assert int(float(reply.score)) == deadline


async def test_dead_job_without_a_stored_result(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.dead(kit.k, "a", "w1:1", ERROR, b"{}", 0, 100, 86_400_000)
    died_at = (await kit.zset(kit.k.dead))["a"]

    reply = await kit.scripts.status(kit.k, "a")

    assert (reply.where, reply.attempts, reply.error, reply.result) == ("dead", b"1", ERROR, b"")
    assert int(float(reply.score)) == died_at


async def test_a_stored_result_wins_over_every_other_location(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.dead(kit.k, "a", "w1:1", ERROR, b'{"s":"dead"}', 60_000, 100, 10**9)
    result = await kit.get(kit.k.result("a"))

    reply = await kit.scripts.status(kit.k, "a")

    # a dead job's result holds its failure, so result() can report it without the dead set
    assert (reply.where, reply.result, reply.score) == ("result", result, b"")
    assert reply.error == ERROR


async def test_completed_job_has_only_its_result(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 60_000, [("a", "w1:1", b'{"v":1}')]) == [True]
    result = await kit.get(kit.k.result("a"))
    assert result.endswith(b'|{"v":1}')

    assert await kit.scripts.status(kit.k, "a") == StatusReply(
        "result", result, b"", b"", b"", b"", b""
    )


async def test_completed_job_without_a_kept_result_is_missing(kit: Kit) -> None:
    await kit.lease("a")
    assert await kit.scripts.complete(kit.k, 0, [("a", "w1:1", b"1")]) == [True]
    assert (await kit.scripts.status(kit.k, "a")).where == "missing"
