"""Batches end to end, with three real worker processes, on one Redis and on a cluster.

Each backend gets one pool of three workers (``python -m aioworker run``) for the module;
every test makes its own batches, with job ids of its own, and asserts exactly which job
ran how many times and exactly which callbacks ran with which counts.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis.asyncio

from aioworker import BatchCancelled, BatchNotFound, BatchSealed, Worker
from aioworker.admin import Admin
from aioworker.batches import Batch
from tests.apps.batch_app import Book, build
from tests.redis_procs import HOST, node_command
from tests.worker_procs import WorkerSpawner

pytestmark = pytest.mark.slow

APP = "tests.apps.batch_app:worker"


@dataclass
class Pool:
    """Three workers serving queues ``qa`` and ``qb`` of one prefix, and a producer."""

    worker: Worker
    book: Book
    qa: str
    qb: str
    cluster: bool
    spawner: WorkerSpawner
    env: dict[str, str]

    async def cli(self, *argv: str) -> tuple[int, str]:
        """Run ``python -m aioworker <argv>`` against this pool's app; (status, output)."""
        proc = self.spawner.spawn([sys.executable, "-m", "aioworker", *argv], env=self.env)
        code = await self.spawner.wait_exit(proc, timeout_s=30)
        return code, self.spawner.output(proc)

    def task(self, name: str) -> Any:
        return self.worker.tasks[name]

    async def callbacks(self, batch: Batch) -> list[dict[str, Any]]:
        return [r for r in await self.book.callback_records() if r.get("batch") == batch.id]

    async def wait_callbacks(self, batch: Batch, n: int, timeout_s: float = 20) -> None:
        """Wait until ``n`` callback runs are recorded for the batch, then a little more, so
        that a duplicate would have had time to show."""
        deadline = time.monotonic() + timeout_s
        while len(await self.callbacks(batch)) < n:
            assert time.monotonic() < deadline, await self.callbacks(batch)
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)


async def _delete_cluster_keys(url: str, prefix: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    ports = {int(entry[2][1]) for entry in node_command(port, "CLUSTER", "SLOTS")}
    for p in ports:
        async with redis.asyncio.Redis(host=HOST, port=p) as node:
            async for key in node.scan_iter(match=f"{prefix}:*", count=1000):
                await node.delete(key)


@pytest.fixture(
    scope="module",
    params=["single", pytest.param("cluster", marks=pytest.mark.cluster)],
)
async def pool(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Pool]:
    cluster = request.param == "cluster"
    url: str = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")
    prefix = "t" + uuid.uuid4().hex[:10]
    qa, qb = f"{prefix}-a", f"{prefix}-b"
    spawner = WorkerSpawner(tmp_path_factory.mktemp("batch-workers"))
    env = {
        "AIOWORKER_REDIS_URL": url,
        "TEST_PREFIX": prefix,
        "TEST_QUEUES": f"{qa},{qb}",
        "TEST_CLUSTER": "1" if cluster else "0",
    }
    procs = [spawner(APP, env=env) for _ in range(3)]
    worker, book = build(url, prefix, [qa, qb], cluster=cluster)
    try:
        for proc in procs:
            await spawner.wait_for_output_async(proc, "serving", timeout_s=20)
        yield Pool(worker, book, qa, qb, cluster, spawner, env)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert await spawner.wait_exit(proc, timeout_s=20) == 0, spawner.output(proc)
            output = spawner.output(proc)
            assert "internal error" not in output and "drain failed" not in output, output
    finally:
        spawner.close()
        await worker.close()
        await book.close()
        if cluster:
            await _delete_cluster_keys(url, prefix)


async def test_batch_with_failures_fires_on_complete_once_and_on_success_after_reruns(
    pool: Pool,
) -> None:
    n = 400 if pool.cluster else 2000
    child, report = pool.task("child"), pool.task("report")
    tag = uuid.uuid4().hex[:6]
    failing = {i for i in range(n) if i % 20 == 0}  # 5 %
    batch = pool.worker.batch(
        on_complete=report.call("complete"), on_success=report.call("success"), description=tag
    )
    added = await batch.add(
        child.options(job_id=f"{tag}-{i}", queue=pool.qa if i % 2 else pool.qb).call(
            i, fail=i in failing
        )
        for i in range(n)
    )
    assert added == n
    await batch.seal()

    progress = await batch.wait(timeout=90)
    assert (progress.total, progress.pending) == (n, 0)
    assert (progress.succeeded, progress.failed, progress.skipped) == (
        n - len(failing),
        len(failing),
        0,
    )
    assert progress.state == "complete" and progress.finished_at is not None
    await pool.wait_callbacks(batch, 1)
    assert await pool.callbacks(batch) == [
        {
            "tag": "complete",
            "job": f"{batch.id}:on_complete",
            "attempt": 1,
            "batch": batch.id,
            "event": "complete",
            "total": n,
            "succeeded": n - len(failing),
            "failed": len(failing),
            "skipped": 0,
        }
    ]
    runs = await pool.book.run_counts()
    assert {i: runs.get(f"{tag}-{i}") for i in range(n)} == dict.fromkeys(range(n), 1)
    failed = [x async for x in batch.failed()]
    assert sorted(failed) == sorted((pool.qa if i % 2 else pool.qb, f"{tag}-{i}") for i in failing)
    assert (await batch.progress()).on_success == "waiting"

    # the failed ones are re-run from the dead-letter sets, and now succeed
    await pool.book.client.set(pool.book.fixed, 1)
    assert await batch.retry_failed() == len(failing)
    await pool.wait_callbacks(batch, 2)
    records = await pool.callbacks(batch)
    assert records[1] == {
        "tag": "success",
        "job": f"{batch.id}:on_success",
        "attempt": 1,
        "batch": batch.id,
        "event": "success",
        "total": n,
        "succeeded": n,
        "failed": 0,
        "skipped": 0,
    }
    assert [r["tag"] for r in records] == ["complete", "success"]
    runs = await pool.book.run_counts()
    assert {i: runs.get(f"{tag}-{i}") for i in range(n)} == {
        i: 2 if i in failing else 1 for i in range(n)
    }
    final = await batch.progress()
    assert (final.succeeded, final.failed, final.pending) == (n, 0, 0)
    assert (final.on_complete, final.on_success) == ("sent", "sent")
    assert [x async for x in batch.failed()] == []
    await pool.book.client.delete(pool.book.fixed)


async def test_children_added_incrementally_and_from_inside_the_batch(pool: Pool) -> None:
    child, parent, flaky, report = (
        pool.task("child"),
        pool.task("parent"),
        pool.task("flaky"),
        pool.task("report"),
    )
    tag = uuid.uuid4().hex[:6]
    batch = pool.worker.batch(on_complete=report.call("complete"), on_success=report.call("ok"))
    first = [
        parent.options(job_id=f"{tag}-p1").call(1, fanout=4),
        parent.options(job_id=f"{tag}-p2").call(2, fanout=4),
        child.options(job_id=f"{tag}-c1").call(1),
    ]
    assert await batch.add(first) == 3
    assert await batch.add(first) == 0  # the same ids again: nothing new
    assert await batch.add([flaky.options(job_id=f"{tag}-f", queue=pool.qb).call(7)]) == 1
    assert await batch.add([child.options(job_id=f"{tag}-c2", queue=pool.qb).call(2)]) == 1
    await batch.seal()
    with pytest.raises(BatchSealed):
        await batch.add([child.options(job_id=f"{tag}-late").call(3)])
    assert await batch.add(first) == 0  # known ids are still fine after the seal

    progress = await batch.wait(timeout=60)
    assert (progress.total, progress.succeeded, progress.failed) == (13, 13, 0)
    await pool.wait_callbacks(batch, 2)
    records = await pool.callbacks(batch)
    assert sorted((r["event"], r["total"], r["succeeded"], r["failed"]) for r in records) == [
        ("complete", 13, 13, 0),
        ("success", 13, 13, 0),
    ]
    runs = await pool.book.run_counts()
    grandchildren = {f"{tag}-p{p}.{i}" for p in (1, 2) for i in range(4)}
    mine = {k: v for k, v in runs.items() if k.startswith(tag)}
    assert mine == {f"{tag}-p1": 1, f"{tag}-p2": 1, f"{tag}-c1": 1, f"{tag}-c2": 1} | {
        f"{tag}-f": 3
    } | dict.fromkeys(grandchildren, 1)
    assert f"{tag}-late" not in runs


async def test_a_batch_with_no_children_completes_when_sealed(pool: Pool) -> None:
    report = pool.task("report")
    batch = pool.worker.batch(on_complete=report.call("complete"), on_success=report.call("ok"))
    await batch.seal()
    progress = await batch.wait(timeout=5)
    assert (progress.total, progress.pending, progress.state) == (0, 0, "complete")
    await pool.wait_callbacks(batch, 2)
    assert sorted((r["event"], r["total"], r["job"]) for r in await pool.callbacks(batch)) == [
        ("complete", 0, f"{batch.id}:on_complete"),
        ("success", 0, f"{batch.id}:on_success"),
    ]
    await batch.seal()  # sealing again fires nothing more
    await asyncio.sleep(1.0)
    assert len(await pool.callbacks(batch)) == 2


async def test_a_failing_callback_is_retried_not_lost(pool: Pool) -> None:
    child, report_flaky = pool.task("child"), pool.task("report_flaky")
    tag = uuid.uuid4().hex[:6]
    batch = pool.worker.batch(on_complete=report_flaky.call("complete"))
    await batch.add(child.options(job_id=f"{tag}-{i}").call(i) for i in range(5))
    await batch.seal()
    await batch.wait(timeout=30)
    await pool.wait_callbacks(batch, 2)
    records = await pool.callbacks(batch)
    assert [(r["job"], r["attempt"]) for r in records] == [
        (f"{batch.id}:on_complete", 1),
        (f"{batch.id}:on_complete", 2),
    ]
    handle = pool.worker.job(f"{batch.id}:on_complete", pool.qb)
    assert await handle.result(timeout=5) is None


async def test_cancel_skips_children_that_have_not_started(pool: Pool) -> None:
    child, slow, report = pool.task("child"), pool.task("slow"), pool.task("report")
    tag = uuid.uuid4().hex[:6]
    batch = pool.worker.batch(on_complete=report.call("complete"), on_success=report.call("ok"))
    await batch.add(slow.options(job_id=f"{tag}-s{i}").call(i, 1.0) for i in range(3))
    await batch.add(
        child.options(job_id=f"{tag}-d{i}", delay=2.0, queue=pool.qb).call(i) for i in range(20)
    )
    await batch.seal()
    deadline = time.monotonic() + 10
    while len([k for k in await pool.book.run_counts() if k.startswith(f"{tag}-s")]) < 3:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await batch.cancel() is True
    assert await batch.cancel() is False
    assert (await batch.wait(timeout=1)).cancelled
    with pytest.raises(BatchCancelled):
        await batch.add([child.options(job_id=f"{tag}-late").call(1)])

    deadline = time.monotonic() + 20
    while (progress := await batch.progress()).pending:
        assert time.monotonic() < deadline, progress
        await asyncio.sleep(0.1)
    assert (progress.total, progress.succeeded, progress.skipped, progress.failed) == (23, 3, 20, 0)
    assert progress.state == "cancelled"
    await asyncio.sleep(1.5)
    assert await pool.callbacks(batch) == []
    runs = await pool.book.run_counts()
    assert {k: v for k, v in runs.items() if k.startswith(tag)} == {
        f"{tag}-s{i}": 1 for i in range(3)
    }


async def test_unknown_batch_ids_are_reported(pool: Pool) -> None:
    missing = pool.worker.batches.get("no-such-batch")
    with pytest.raises(BatchNotFound):
        await missing.progress()
    with pytest.raises(BatchNotFound):
        await missing.add([pool.task("child").call(1)])
    with pytest.raises(ValueError, match="not allowed"):
        pool.worker.batch(batch_id="a|b")


async def test_cli_lists_shows_retries_and_cancels_batches(pool: Pool) -> None:
    child = pool.task("child")
    tag = uuid.uuid4().hex[:6]
    batch = pool.worker.batch(description=f"cli {tag}")
    await batch.add(child.options(job_id=f"{tag}-{i}").call(i, fail=i < 2) for i in range(4))
    await batch.seal()
    await batch.wait(timeout=30)

    code, text = await pool.cli("batch", "show", APP, batch.id)
    assert code == 0, text
    assert f"batch {batch.id}: complete (cli {tag})" in text
    assert "4 total, 0 pending, 2 succeeded, 2 failed, 0 skipped" in text
    assert f"{pool.qa}  {tag}-0" in text and f"{pool.qa}  {tag}-1" in text
    assert f"aioworker batch retry {APP} {batch.id}" in text

    code, text = await pool.cli("batch", "list", APP, "--json")
    assert code == 0, text
    listed = {b["id"]: b for b in orjson.loads(text)}
    assert (listed[batch.id]["failed"], listed[batch.id]["description"]) == (2, f"cli {tag}")

    code, text = await pool.cli("batch", "retry", APP, batch.id, "--yes")
    assert code == 0 and "2 failed child(ren) put back" in text, text
    deadline = time.monotonic() + 20
    while [(await pool.book.run_counts()).get(f"{tag}-{i}") for i in range(4)] != [2, 2, 1, 1]:
        assert time.monotonic() < deadline, await pool.book.run_counts()
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    again = await batch.progress()  # they failed again: the fix flag is not set
    assert (again.succeeded, again.failed, again.pending) == (2, 2, 0)

    later = pool.worker.batch()
    await later.add([child.options(job_id=f"{tag}-later", delay=3600).call(9)])
    await later.seal()
    code, text = await pool.cli("batch", "cancel", APP, later.id, "--yes")
    assert code == 0 and "1 pending child(ren) will be skipped" in text, text
    assert (await later.progress()).state == "cancelled"
    code, text = await pool.cli("batch", "cancel", APP, later.id)
    assert code == 2 and "Refusing without --yes" in text, text

    code, text = await pool.cli("batch", "show", APP, f"{tag}-missing")
    assert code == 1 and "no batch" in text, text


async def test_children_cancelled_by_an_operator_count_as_skipped(pool: Pool) -> None:
    child, slow, report = pool.task("child"), pool.task("slow"), pool.task("report")
    tag = uuid.uuid4().hex[:6]
    batch = pool.worker.batch(on_complete=report.call("complete"), on_success=report.call("ok"))
    await batch.add(
        [
            slow.options(job_id=f"{tag}-running").call(1, 30.0),
            child.options(job_id=f"{tag}-delayed", delay=3600).call(2),
            child.options(job_id=f"{tag}-plain").call(3),
        ]
    )
    await batch.seal()
    deadline = time.monotonic() + 10
    while f"{tag}-running" not in await pool.book.run_counts():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    admin = Admin(pool.worker)
    assert (await admin.cancel(pool.qa, f"{tag}-delayed")).outcome == "cancelled"
    assert (await admin.cancel(pool.qa, f"{tag}-running")).outcome == "requested"

    progress = await batch.wait(timeout=20)
    assert (progress.total, progress.succeeded, progress.failed, progress.skipped) == (3, 1, 0, 2)
    await pool.wait_callbacks(batch, 1)
    assert [(r["event"], r["skipped"]) for r in await pool.callbacks(batch)] == [("complete", 2)]
    runs = await pool.book.run_counts()
    assert {k: v for k, v in runs.items() if k.startswith(tag)} == {
        f"{tag}-running": 1,
        f"{tag}-plain": 1,
    }
